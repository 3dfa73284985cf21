"""Rules-based baselines (paper §2.2, App. A.3): distance decay, Gaussian kernel, CGE.

The distance decay comes in two registry variants: ``exp-decay`` measures the distance as
the paper's text states it, ``exp-decay-mirrored`` after reflecting centroids onto one
hemisphere as the authors' code does (``ExponentialDecay(mirror_x=True)``).

Each has a fixed functional form with a handful of parameters fitted by least squares on
the training edges (all unordered pairs of training regions). Features for prediction
come from ``brain.coords`` / ``brain.X`` of any region, test regions included.

Fitting strategy for the two distance rules: both are linear in all parameters but one
length scale, so the length scale is first located on a log-spaced grid with the linear
parameters solved exactly at each grid point, then all parameters are refined jointly by
`scipy.optimize.least_squares` within their bounds. This avoids the local minima a cold
start of a nonlinear solver can fall into.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.optimize import least_squares
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from spatiomol.data.brain import Brain
from spatiomol.models.base import ConnectivityModel, check_expression

_GRID_POINTS = 60
#: the forms of `ExponentialDecay`
DECAY_FORMS: tuple[str, ...] = ("auto", "unit", "scaled")
_ANY_REAL = Interval(Real, None, None, closed="neither")
_POSITIVE_MM = Interval(Real, 0, None, closed="neither")


def pair_distances(brain: Brain, i: np.ndarray, j: np.ndarray, *, mirror_x: bool = False) -> np.ndarray:
    """Euclidean distances (mm) between the centroids of regions ``i[k]`` and ``j[k]``.

    With ``mirror_x`` every centroid is first reflected onto the left hemisphere,
    ``x → −|x|`` (MNI-like coordinates, midline at ``x = 0``), so that a region and its
    homologue in the other hemisphere are near.
    """
    c = brain.coords
    if not np.isfinite(c).all():
        raise ValueError(f"brain {brain.name!r}: regions table has non-finite x, y, z (mm)")
    if mirror_x:
        c = c.copy()
        c[:, 0] = -np.abs(c[:, 0])
    return np.linalg.norm(c[i] - c[j], axis=1)


def _check_bounds(low: float, high: float, what: str) -> None:
    if not low < high:
        raise ValueError(f"{what}: lower bound {low} must be below upper bound {high}")


class ExponentialDecay(ConnectivityModel):
    """Distance decay ``Y = SA∞ + (1 − SA∞) · exp(−d / SAλ)`` (Roberts et al.; App. A.3).

    ``d`` is the Euclidean centroid distance in mm, as the paper's text states it; with
    ``mirror_x=True`` it is measured after reflecting both centroids onto the left
    hemisphere (``x → −|x|``), as the authors' code does, so homotopic pairs count as near
    (registry ``exp-decay-mirrored``). The paper's form fixes ``Y(0) = 1``
    (perfect correlation at zero distance), which only makes sense for targets on the
    Pearson-r scale; on other scales (Fisher-z, log streamline density) it collapses to
    a constant at its bounds. ``form="scaled"`` fits ``Y = a + b · exp(−d / SAλ)`` instead
    (``SA∞ = a``, ``b`` the amplitude at zero distance); ``"auto"`` (default) takes the
    paper's form for ``brain.target_scale == "r"`` and the scaled form otherwise.

    Parameters
    ----------
    form : {"auto", "unit", "scaled"}
        ``"unit"``: the paper's ``Y(0) = 1`` form; ``"scaled"``: free amplitude.
    sa_inf_min, sa_inf_max : float
        Bounds of the asymptote ``SA∞`` (target units; ``"unit"`` form only).
    sa_lambda_min_mm, sa_lambda_max_mm : float
        Bounds of the decay length ``SAλ`` (mm).
    mirror_x : bool
        Measure ``d`` between centroids reflected to ``x ≤ 0`` (the midline must be at
        ``x = 0``, as in MNI space).

    Attributes
    ----------
    form_ : str
        The form fitted (``"unit"`` or ``"scaled"``).
    sa_inf_ : float
    amplitude_ : float
        ``1 − SA∞`` for the unit form, ``b`` for the scaled form.
    sa_lambda_ : float
        Decay length, mm.
    n_parameters_ : int
        2 (unit) or 3 (scaled).
    """

    config_name: ClassVar[str] = "exp-decay"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "form": [StrOptions(set(DECAY_FORMS))],
        "sa_inf_min": [_ANY_REAL],
        "sa_inf_max": [_ANY_REAL],
        "sa_lambda_min_mm": [_POSITIVE_MM],
        "sa_lambda_max_mm": [_POSITIVE_MM],
        "mirror_x": ["boolean"],
    }

    def __init__(
        self,
        *,
        form: str = "auto",
        sa_inf_min: float = -1.0,
        sa_inf_max: float = 1.0,
        sa_lambda_min_mm: float = 0.1,
        sa_lambda_max_mm: float = 1000.0,
        mirror_x: bool = False,
    ) -> None:
        self.form = form
        self.sa_inf_min = sa_inf_min
        self.sa_inf_max = sa_inf_max
        self.sa_lambda_min_mm = sa_lambda_min_mm
        self.sa_lambda_max_mm = sa_lambda_max_mm
        self.mirror_x = mirror_x

    def _reads_expression(self) -> bool:  # distance only
        return False

    def _check_combinations(self) -> None:
        _check_bounds(self.sa_inf_min, self.sa_inf_max, "sa_inf bounds")
        _check_bounds(self.sa_lambda_min_mm, self.sa_lambda_max_mm, "sa_lambda bounds (mm)")

    @staticmethod
    def curve(d: np.ndarray, sa_inf: float, sa_lambda: float) -> np.ndarray:
        """``SA∞ + (1 − SA∞) exp(−d / SAλ)`` for distances ``d`` (mm)."""
        return sa_inf + (1.0 - sa_inf) * np.exp(-np.asarray(d) / sa_lambda)

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        i, j, y = self.training_pairs(brain, train)
        d = pair_distances(brain, i, j, mirror_x=bool(self.mirror_x))
        form = self.form if self.form != "auto" else ("unit" if brain.target_scale == "r" else "scaled")
        self.form_ = form
        if form == "scaled":
            self._fit_scaled(d, y)
            return

        def best_offset(e: np.ndarray) -> float:
            # y - e = SA∞ (1 - e): one-parameter least squares, then clipped to the bounds
            w = 1.0 - e
            sa = float(w @ (y - e) / max(w @ w, 1e-300))
            return float(np.clip(sa, self.sa_inf_min, self.sa_inf_max))

        lengths = np.geomspace(self.sa_lambda_min_mm, self.sa_lambda_max_mm, _GRID_POINTS)
        starts = [(best_offset(np.exp(-d / lam)), lam) for lam in lengths]
        sse = [np.sum((self.curve(d, s, lam) - y) ** 2) for s, lam in starts]
        sa0, lam0 = starts[int(np.argmin(sse))]
        result = least_squares(
            lambda p: self.curve(d, p[0], np.exp(p[1])) - y,
            x0=[sa0, np.log(lam0)],
            bounds=([self.sa_inf_min, np.log(self.sa_lambda_min_mm)], [self.sa_inf_max, np.log(self.sa_lambda_max_mm)]),
            x_scale="jac",
        )
        self.sa_inf_ = float(result.x[0])
        self.amplitude_ = 1.0 - self.sa_inf_
        self.sa_lambda_ = float(np.exp(result.x[1]))
        self.n_parameters_ = 2

    def _fit_scaled(self, d: np.ndarray, y: np.ndarray) -> None:
        """``y ≈ a + b·exp(−d/λ)``: (a, b) by least squares on a λ grid, then joint refinement."""

        def linear(e: np.ndarray) -> tuple[np.ndarray, float]:
            design = np.column_stack([np.ones_like(e), e])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            return coef, float(np.sum((design @ coef - y) ** 2))

        lengths = np.geomspace(self.sa_lambda_min_mm, self.sa_lambda_max_mm, _GRID_POINTS)
        fits = [linear(np.exp(-d / lam)) for lam in lengths]
        best = int(np.argmin([sse for _, sse in fits]))
        (a0, b0), lam0 = fits[best][0], lengths[best]
        result = least_squares(
            lambda p: p[0] + p[1] * np.exp(-d / np.exp(p[2])) - y,
            x0=[a0, b0, np.log(lam0)],
            bounds=([-np.inf, -np.inf, np.log(self.sa_lambda_min_mm)], [np.inf, np.inf, np.log(self.sa_lambda_max_mm)]),
            x_scale="jac",
        )
        self.sa_inf_, self.amplitude_ = float(result.x[0]), float(result.x[1])
        self.sa_lambda_ = float(np.exp(result.x[2]))
        self.n_parameters_ = 3

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        d = pair_distances(brain, i, j, mirror_x=bool(self.mirror_x))
        return self.sa_inf_ + self.amplitude_ * np.exp(-d / self.sa_lambda_)


class GaussianKernel(ConnectivityModel):
    """Gaussian distance kernel ``Y = a + b · exp(−d² / 2σ²)`` with fitted ``a``, ``b``, ``σ``.

    Parameters
    ----------
    sigma_min_mm, sigma_max_mm : float
        Bounds of the kernel width ``σ`` (mm).

    Attributes
    ----------
    offset_ : float
        ``a`` (target units).
    scale_ : float
        ``b`` (target units).
    sigma_ : float
        ``σ`` (mm).
    n_parameters_ : int
        3.
    """

    config_name: ClassVar[str] = "gaussian-kernel"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "sigma_min_mm": [_POSITIVE_MM],
        "sigma_max_mm": [_POSITIVE_MM],
    }

    def __init__(self, *, sigma_min_mm: float = 1.0, sigma_max_mm: float = 500.0) -> None:
        self.sigma_min_mm = sigma_min_mm
        self.sigma_max_mm = sigma_max_mm

    def _reads_expression(self) -> bool:  # distance only
        return False

    def _check_combinations(self) -> None:
        _check_bounds(self.sigma_min_mm, self.sigma_max_mm, "sigma bounds (mm)")

    @staticmethod
    def kernel(d: np.ndarray, sigma: float) -> np.ndarray:
        """``exp(−d² / 2σ²)`` for distances ``d`` and width ``σ`` (both mm)."""
        return np.exp(-(np.asarray(d) ** 2) / (2.0 * sigma**2))

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        i, j, y = self.training_pairs(brain, train)
        d = pair_distances(brain, i, j)

        def linear_fit(sigma: float) -> tuple[np.ndarray, float]:
            design = np.column_stack([np.ones_like(d), self.kernel(d, sigma)])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            return coef, float(np.sum((design @ coef - y) ** 2))

        widths = np.geomspace(self.sigma_min_mm, self.sigma_max_mm, _GRID_POINTS)
        fits = [linear_fit(s) for s in widths]
        best = int(np.argmin([f[1] for f in fits]))
        (a0, b0), _ = fits[best]
        result = least_squares(
            lambda p: p[0] + p[1] * self.kernel(d, np.exp(p[2])) - y,
            x0=[a0, b0, np.log(widths[best])],
            bounds=([-np.inf, -np.inf, np.log(self.sigma_min_mm)], [np.inf, np.inf, np.log(self.sigma_max_mm)]),
            x_scale="jac",
        )
        self.offset_ = float(result.x[0])
        self.scale_ = float(result.x[1])
        self.sigma_ = float(np.exp(result.x[2]))
        self.n_parameters_ = 3

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.offset_ + self.scale_ * self.kernel(pair_distances(brain, i, j), self.sigma_)


class CGEModel(ConnectivityModel):
    """Correlated gene expression: ``Y_ij = a + b · corr(p_i, p_j)`` on PCA profiles ``p``.

    Expression is centred (and with ``standardize`` scaled to unit SD) with training-region
    statistics; PCA is fitted on the training regions only; a region's profile ``p`` is
    its vector of component scores, and ``corr`` is the Pearson correlation of two
    profiles across components. ``a`` and ``b`` map the similarity to the target scale by
    ordinary least squares on the training edges.

    Parameters
    ----------
    n_components : int or float
        Components (int ≥ 2, clipped to ``min(n_train, g)``) or a variance fraction (float
        in (0, 1); at least 2 components are kept).
    standardize : bool
        Scale each gene to unit training SD before PCA.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    n_components_ : int
    offset_, slope_ : float
        ``a`` and ``b`` (target units).
    n_parameters_ : int
        2 (the unsupervised PCA is not counted).
    """

    config_name: ClassVar[str] = "cge-pca"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_components": [Interval(Integral, 2, None, closed="left"), Interval(RealNotInt, 0, 1, closed="neither")],
        "standardize": ["boolean"],
    }

    def __init__(self, *, n_components: int | float = 10, standardize: bool = True) -> None:
        self.n_components = n_components
        self.standardize = standardize

    def profiles(self, brain: Brain, regions: np.ndarray) -> np.ndarray:
        """PCA profiles (k, n_components_) of any regions."""
        regions = np.asarray(regions, dtype=np.int64)
        X = check_expression(brain, regions, "prediction")
        return self.pca_.transform(self.scaler_.transform(X))

    @staticmethod
    def profile_correlation(Pi: np.ndarray, Pj: np.ndarray) -> np.ndarray:
        """Row-wise Pearson correlation between profiles ``Pi[k]`` and ``Pj[k]``."""
        a = Pi - Pi.mean(axis=1, keepdims=True)
        b = Pj - Pj.mean(axis=1, keepdims=True)
        denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, (a * b).sum(axis=1) / denom, 0.0)

    def _similarity(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        regions, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
        P = self.profiles(brain, regions)
        return self.profile_correlation(P[inverse[: i.size]], P[inverse[i.size :]])

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        X_train = check_expression(brain, train, "training")
        n, g = X_train.shape
        nc = self.n_components  # an int >= 2 or a float in (0, 1) (`_parameter_constraints`)
        arg: int | float = int(min(int(nc), n, g)) if isinstance(nc, Integral) else float(nc)
        self.scaler_ = StandardScaler(with_std=self.standardize).fit(X_train)
        Z = self.scaler_.transform(X_train)
        pca = PCA(n_components=arg, svd_solver="full").fit(Z)
        if pca.n_components_ < 2:  # a correlation needs at least two components
            pca = PCA(n_components=min(2, n, g), svd_solver="full").fit(Z)
        self.pca_ = pca
        self.n_components_ = int(pca.n_components_)
        i, j, y = self.training_pairs(brain, train)
        cge = self._similarity(brain, i, j)
        design = np.column_stack([np.ones_like(cge), cge])
        (self.offset_, self.slope_), *_ = np.linalg.lstsq(design, y, rcond=None)
        self.offset_, self.slope_ = float(self.offset_), float(self.slope_)
        self.n_parameters_ = 2

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.offset_ + self.slope_ * self._similarity(brain, i, j)
