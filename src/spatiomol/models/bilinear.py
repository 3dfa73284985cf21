"""The Connectome Model: closed-form bilinear regression on region features (paper §2.2, App. A.3, A.4).

It predicts ``Y_ij`` from the expression of regions ``i`` and ``j`` through a bilinear
form ``f_iᵀ O f_j`` of region features ``f``: the standardized genes (registry ``cm``,
and ``cm-paper`` with the paper's printed closed form), their PCA scores (``cm-pca``) or
PLS x-scores (``cm-pls``, the paper's "PLS-based encoder-decoder"). The low-rank
bilinear model trained by gradient descent is `spatiomol.models.lowrank.BilinearLowRank`.

PLS features
------------
``features="pls"`` fits `sklearn.cross_decomposition.PLSRegression` on the training
regions: inputs the training expression (n_train × g), outputs the training block of the
connectome (n_train × n_train: each region's connectivity profile to the other training
regions, its diagonal filled with the mean off-diagonal training target). Region features
are the x-scores ``t = x̃ W*`` (``x̃``: expression centred and scaled with training
statistics, ``W*``: ``x_rotations_``), available for any region; ``standardize`` plays no
part (PLS always scales). The decoder is the same closed form as for genes or PCA.

Features and the offset
-----------------------
Expression is centred (and, with ``standardize=True``, divided by its SD) with statistics
of the *training regions only*; the same transform is applied to every region at
prediction time (expression of test regions is an input, never their targets).

Centred features cannot express a constant: ``1`` is orthogonal to every centred column.
With ``intercept=True`` (default) the features are augmented by a constant column, so the
model is ``ŷ_ij = b + a·f_i + a·f_j + f_iᵀ O f_j`` — exactly what ``XOXᵀ`` on *uncentred*
``X`` can express (an offset and per-region main effects), but with the offset ``b``
unpenalized. The constant column is given the root-mean-square singular value of the
training features, so its main effects are penalized like a typical feature direction.

The training diagonal
---------------------
The paper's objective ``‖Y − XOXᵀ‖²_F + λ‖O‖²_F`` runs over all ``i, j`` including
``i = j``, but the diagonal of a connectome carries no information (it is 1, or 0 in the
HCP files). ``diagonal="mean"`` (default) fills the training diagonal with the mean
off-diagonal training target, which makes it neutral for the offset; ``diagonal="em"``
iterates "fill the diagonal with the current prediction, refit" until the fill stops
changing, which converges to the minimiser of the objective over off-diagonal entries only.

Penalties
---------
``penalty="frobenius"`` (default) is the exact minimiser of the paper's stated objective
``‖Y − FOFᵀ‖²_F + λ‖O‖²_F`` (identical to the Kronecker ridge regression of
Kovács et al.). ``penalty="paper"`` is the closed form printed in App. A.4,
``O = (FᵀF + λI)⁻¹ FᵀYF (FᵀF + λI)⁻¹``; note that it does *not* minimise that objective
(its normal equations are ``(A+λI) O (A+λI) = M`` rather than ``A O A + λO = M``); it
minimises ``‖Y − FOFᵀ‖² + λ‖FO‖² + λ‖OFᵀ‖² + λ²‖O‖²``. It is kept to reproduce the
paper: registry ``cm-paper``, a Table 1 row beside ``cm``. Both are computed through the
thin SVD of the training features, so a g × g matrix is never inverted and never formed
(``interaction_matrix()`` forms it on request).

``alpha`` is relative to the data scale (``alpha_scale="relative"``): with ``s̄²`` the mean
squared singular value of the training features, ``λ = alpha · s̄⁴`` for the Frobenius
penalty and ``λ = alpha · s̄²`` for the paper's, so that ``alpha = 1`` shrinks a typical
direction pair by a factor 2 (resp. 4) whatever the number of genes or regions. With
``alpha_scale="absolute"``, ``λ = alpha``. The absolute value used is ``lambda_``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from spatiomol.data.brain import Brain
from spatiomol.data.structural import structural_features
from spatiomol.models.base import ConnectivityModel, check_expression, training_target_matrix

PENALTIES = ("frobenius", "paper")
DIAGONAL_FILLS = ("mean", "em")
ALPHA_SCALES = ("relative", "absolute")
FEATURE_KINDS = ("genes", "pca", "pls")


def _relative_lambda(alpha: float, alpha_scale: str, penalty: str, mean_sq: float) -> float:
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if alpha_scale == "absolute":
        return float(alpha)
    if alpha_scale not in ALPHA_SCALES:
        raise ValueError(f"alpha_scale must be one of {ALPHA_SCALES}, got {alpha_scale!r}")
    return float(alpha * (mean_sq**2 if penalty == "frobenius" else mean_sq))


class BilinearClosedForm:
    """Ridge-penalized bilinear regression ``Y ≈ F O Fᵀ`` solved through the SVD of ``F``.

    Not an estimator on a `Brain`: the numerical core of `ConnectomeModel`, whatever its
    features.

    Parameters
    ----------
    alpha : float
        Ridge strength (see the module docstring for its scale).
    penalty : {"frobenius", "paper"}
    alpha_scale : {"relative", "absolute"}
    intercept : bool
        Append a constant feature column (unpenalized offset, penalized main effects).
    diagonal : {"mean", "em"}
        How the diagonal of the training target enters the objective.
    max_iter, tol : int, float
        EM iterations and tolerance on the change of the diagonal fill (target units).
    rtol : float
        Singular values below ``rtol · s_max`` are treated as zero (rank truncation).

    Attributes
    ----------
    basis_ : (d, m) array
        Orthonormal right singular vectors of the (non-constant) training features.
    core_ : (m + intercept, m + intercept) array
        ``O`` in the basis ``[basis_, constant]``; ``O = B core_ Bᵀ``.
    lambda_ : float
        Absolute ridge strength used.
    intercept_value_ : float
        Value of the constant feature column.
    n_iter_ : int
        EM iterations run (0 for ``diagonal="mean"``).
    """

    def __init__(
        self,
        *,
        alpha: float = 1e-2,
        penalty: str = "frobenius",
        alpha_scale: str = "relative",
        intercept: bool = True,
        diagonal: str = "mean",
        max_iter: int = 500,
        tol: float = 1e-10,
        rtol: float = 1e-10,
    ) -> None:
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
        if diagonal not in DIAGONAL_FILLS:
            raise ValueError(f"diagonal must be one of {DIAGONAL_FILLS}, got {diagonal!r}")
        self.alpha = alpha
        self.penalty = penalty
        self.alpha_scale = alpha_scale
        self.intercept = intercept
        self.diagonal = diagonal
        self.max_iter = max_iter
        self.tol = tol
        self.rtol = rtol

    def fit(self, F: np.ndarray, Y: np.ndarray) -> BilinearClosedForm:
        """Fit on training features ``F`` (n, d), centred over rows, and targets ``Y`` (n, n).

        ``Y`` must be symmetric with its diagonal already filled (the starting fill for EM).
        """
        F = np.asarray(F, dtype=np.float64)
        Y = np.array(Y, dtype=np.float64)
        n = F.shape[0]
        if Y.shape != (n, n):
            raise ValueError(f"Y has shape {Y.shape}, expected ({n}, {n}) to match F")
        U, s, Vt = np.linalg.svd(F, full_matrices=False)
        keep = s > self.rtol * (s[0] if s.size and s[0] > 0 else 1.0)
        if not keep.any():
            raise ValueError("training features have rank 0 (all regions have identical features)")
        U, s, V = U[:, keep], s[keep], Vt[keep].T
        mean_sq = float(np.mean(s**2))
        self.lambda_ = _relative_lambda(self.alpha, self.alpha_scale, self.penalty, mean_sq)
        penalized = np.ones(s.size, dtype=bool)
        if self.intercept:
            # the constant column is orthogonal to centred features: an exact extra direction
            self.intercept_value_ = float(np.sqrt(mean_sq / n))
            U = np.column_stack([U, np.full(n, 1.0 / np.sqrt(n))])
            s = np.append(s, np.sqrt(mean_sq))
            penalized = np.append(penalized, False)
        else:
            self.intercept_value_ = 0.0
        self._shrink = self._shrinkage(s, penalized)
        self.basis_ = V
        self.core_ = self._solve(U, Y)
        self.n_iter_ = 0
        if self.diagonal == "em":
            for it in range(1, self.max_iter + 1):
                fitted_diag = np.einsum("ia,ab,ib->i", U * s, self.core_, U * s)
                change = np.max(np.abs(fitted_diag - np.diag(Y)))
                np.fill_diagonal(Y, fitted_diag)
                self.core_ = self._solve(U, Y)
                self.n_iter_ = it
                if change < self.tol:
                    break
        return self

    def _shrinkage(self, s: np.ndarray, penalized: np.ndarray) -> np.ndarray:
        lam = self.lambda_
        ss = np.outer(s, s)
        if self.penalty == "frobenius":
            # every entry is penalized except (constant, constant), the offset
            weight = penalized[:, None] | penalized[None, :]
            denom = ss**2 + lam * weight
        else:
            per_direction = s**2 + lam * penalized
            denom = np.outer(per_direction, per_direction)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(denom > 0, ss / denom, 0.0)
        return out

    def _solve(self, U: np.ndarray, Y: np.ndarray) -> np.ndarray:
        core = self._shrink * (U.T @ Y @ U)
        return 0.5 * (core + core.T)

    def project(self, F: np.ndarray) -> np.ndarray:
        """Coordinates of features ``F`` (k, d) in the fitted basis, (k, m + intercept)."""
        P = np.asarray(F, dtype=np.float64) @ self.basis_
        if self.intercept:
            P = np.column_stack([P, np.full(P.shape[0], self.intercept_value_)])
        return P

    def interaction_matrix(self) -> np.ndarray:
        """The full ``O`` ((d + intercept) × (d + intercept)); the constant feature comes last."""
        B = self.basis_
        if self.intercept:
            d, m = B.shape
            B = np.block([[B, np.zeros((d, 1))], [np.zeros((1, m)), np.full((1, 1), 1.0)]])
        return B @ self.core_ @ B.T


# --------------------------------------------------------------------- feature maps
class FeatureMap:
    """Region features learned on training regions: standardized genes, PCA or PLS scores.

    Parameters
    ----------
    kind : {"genes", "pca", "pls"}
    n_components : int or float
        For ``"pca"``: an int ``k`` ≥ 1, or a float in (0, 1) = fraction of variance to keep.
        For ``"pls"``: an int. Clipped to what the training data supports.
    standardize : bool
        Divide centred expression by its training SD (genes and PCA; PLS always scales).
    """

    def __init__(self, kind: str, n_components: int | float = 0.95, standardize: bool = True) -> None:
        if kind not in FEATURE_KINDS:
            raise ValueError(f"features must be 'genes', 'pca' or 'pls', got {kind!r}")
        self.kind = kind
        self.n_components = n_components
        self.standardize = standardize

    def fit(self, X_train: np.ndarray, Y_train: np.ndarray | None = None) -> FeatureMap:
        n, g = X_train.shape
        if self.kind == "pls":
            from sklearn.cross_decomposition import PLSRegression

            k = int(self.n_components)
            if k < 1 or k != self.n_components:
                raise ValueError(f"n_components for PLS must be a positive int, got {self.n_components!r}")
            k = min(k, n - 1, g)
            self.model_ = PLSRegression(n_components=k, scale=True, max_iter=1000).fit(X_train, Y_train)
            self.n_features_ = k
            self.n_supervised_parameters_ = g * k
            return self
        self.scaler_ = StandardScaler(with_std=self.standardize).fit(X_train)
        if self.kind == "genes":
            self.n_features_ = g
        else:
            nc = self.n_components
            if isinstance(nc, float) and 0 < nc < 1:
                arg: Any = nc
            elif int(nc) == nc and nc >= 1:
                arg = int(min(int(nc), n, g))
            else:
                raise ValueError(f"n_components must be an int >= 1 or a float in (0, 1), got {nc!r}")
            self.model_ = PCA(n_components=arg, svd_solver="full").fit(self.scaler_.transform(X_train))
            self.n_features_ = int(self.model_.n_components_)
        self.n_supervised_parameters_ = 0
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Features (k, n_features_) of expression rows ``X`` (k, g)."""
        if self.kind == "pls":
            return self.model_.transform(X)
        Z = self.scaler_.transform(X)
        return Z if self.kind == "genes" else self.model_.transform(Z)


#: what a Connectome Model's region features are computed from
REGION_INPUTS = ("expression", "structural", "both")


# -------------------------------------------------------------- Connectome Model
class ConnectomeModel(ConnectivityModel):
    """Bilinear Connectome Model ``Y ≈ b + F O Fᵀ`` in closed form (Kovács et al.; paper App. A.4).

    Parameters
    ----------
    features : {"genes", "pca", "pls"}
        Full standardized gene set, PCA scores or PLS x-scores (all fitted on training
        regions only).
    n_components : int or float
        PCA: components (int) or variance fraction (float in (0, 1), 0.95 in the paper);
        PLS: components. Ignored for ``"genes"``.
    alpha : float
        Ridge strength; see ``alpha_scale``.
    penalty : {"frobenius", "paper"}
        Exact ridge of ``‖Y − FOFᵀ‖² + λ‖O‖²`` or the paper's printed closed form.
    alpha_scale : {"relative", "absolute"}
    intercept : bool
        Add an unpenalized offset and penalized per-region main effects.
    diagonal : {"mean", "em"}
        Training-diagonal handling (module docstring).
    standardize : bool
        Divide expression by its training SD after centring.
    region_input : {"expression", "structural", "both"}
        What the region features are computed from: expression (the paper's CM), the
        structural-connectivity embedding of ``brain.structural`` (`spatiomol.data.structural`,
        from the whole SC matrix; issue 27), or both side by side.
    structural_components : int
        Components of that embedding.

    Attributes
    ----------
    feature_map_ : FeatureMap
    solver_ : BilinearClosedForm
    lambda_ : float
    n_parameters_ : int
        ``(d + intercept)²`` entries of the interaction matrix (``d`` = genes or
        components; the full matrix is counted, as in the paper), plus ``g · k`` PLS
        weights for ``"pls"``. Unsupervised preprocessing (centring, scaling, PCA) is not
        counted.
    """

    config_name: ClassVar[str] = "connectome-model"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "features": [StrOptions(set(FEATURE_KINDS))],
        # a component count or a variance fraction (PLS takes counts only: `FeatureMap`)
        "n_components": [Interval(Integral, 1, None, closed="left"), Interval(RealNotInt, 0, 1, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "penalty": [StrOptions(set(PENALTIES))],
        "alpha_scale": [StrOptions(set(ALPHA_SCALES))],
        "intercept": ["boolean"],
        "diagonal": [StrOptions(set(DIAGONAL_FILLS))],
        "standardize": ["boolean"],
        "region_input": [StrOptions(set(REGION_INPUTS))],
        "structural_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        features: str = "genes",
        n_components: int | float = 0.95,
        alpha: float = 1.0,
        penalty: str = "frobenius",
        alpha_scale: str = "relative",
        intercept: bool = True,
        diagonal: str = "mean",
        standardize: bool = True,
        region_input: str = "expression",
        structural_components: int = 10,
    ) -> None:
        self.region_input = region_input
        self.structural_components = structural_components
        self.features = features
        self.n_components = n_components
        self.alpha = alpha
        self.penalty = penalty
        self.alpha_scale = alpha_scale
        self.intercept = intercept
        self.diagonal = diagonal
        self.standardize = standardize

    def _reads_expression(self) -> bool:
        return self.region_input != "structural"

    def _inputs(self, brain: Brain, regions: np.ndarray, what: str) -> np.ndarray:
        """The rows of ``regions`` the feature map reads: expression, SC embedding or both."""
        parts = []
        if self.region_input != "structural":
            parts.append(check_expression(brain, regions, what))
        if self.region_input != "expression":
            parts.append(structural_features(brain, self.structural_components)[regions])
        return np.hstack(parts)

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        X_train = self._inputs(brain, train, "training")
        Y_train, _ = training_target_matrix(brain, train)
        self.feature_map_ = FeatureMap(self.features, self.n_components, self.standardize).fit(X_train, Y_train)
        F_train = self.feature_map_.transform(X_train)
        self.solver_ = BilinearClosedForm(
            alpha=self.alpha,
            penalty=self.penalty,
            alpha_scale=self.alpha_scale,
            intercept=self.intercept,
            diagonal=self.diagonal,
        ).fit(F_train, Y_train)
        self.lambda_ = self.solver_.lambda_
        d = self.feature_map_.n_features_ + int(self.intercept)
        self.n_parameters_ = d * d + self.feature_map_.n_supervised_parameters_

    def region_features(self, brain: Brain, regions: np.ndarray) -> np.ndarray:
        """Learned-transform features (k, d) of ``regions`` (any regions, test included)."""
        regions = np.asarray(regions, dtype=np.int64)
        return self.feature_map_.transform(self._inputs(brain, regions, "prediction"))

    def interaction_matrix(self) -> np.ndarray:
        """Fitted ``O`` over features (plus the constant last with ``intercept``); forms a d × d array."""
        return self.solver_.interaction_matrix()

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        regions, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
        P = self.solver_.project(self.region_features(brain, regions))
        Q = P @ self.solver_.core_  # per region, then one dot product per pair
        a, b = inverse[: i.size], inverse[i.size :]
        return np.einsum("kb,kb->k", Q[a], P[b])
