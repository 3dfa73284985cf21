"""The ``"anatomical"`` null family: spatial nulls that keep the brain's anatomy, not only its space.

Whole-brain Moran nulls (`spatiomol.nulls.spectral`) keep each gene's spatial
autocorrelation but mix structure classes and hemispheres: on hcp-s100 they move the
cortex–subcortex contrast of expression to about 0 and homotopic CGE from 0.80 to 0.50
(docs/nulls.md), so a model can beat them with anatomy alone (false-positive rate 0.7–1.0
when the expression carries anatomy, docs/calibration.md). Nulls that keep anatomy by
construction but randomise in a basis that does not describe how the expression covaries
across regions fail the other way: two such designs (Moran within each structure class,
homologous pairs together; whole-brain Moran on mirror-averaged weights with the group
means fixed) were beaten by the true brain on 20–50% of simulated brains whose expression
was *only* spatial. What makes Moran randomisation calibrated on spatial fields is that its
basis nearly diagonalises their covariance, so flipping signs in it leaves their
distribution unchanged. This family makes that the design:

1. **Anatomy kept.** The means of every (structure class, hemisphere) group (the subspace
   ``F`` spanned by the groups' indicator vectors ``1_G``: the structure contrast and the
   hemispheric offsets) are kept exactly.
2. **A covariance model of space and homotopy** (`fit_covariance`). The region × region
   covariance ``R Rᵀ / g`` of the residual ``R = X − P_F X`` is fitted by non-negative
   least squares (both sides projected onto the complement of ``F``) with
   ``K = Σ_ℓ a_ℓ·exp(−d/ℓ) + Σ_ℓ b_ℓ·exp(−d_M/ℓ) + τ·I`` over the decay lengths
   `LENGTH_GRID_MM` (5–330 mm): ``d`` the centroid distances (mm), ``d_M`` the distances
   after mirroring every centroid onto one hemisphere (``x → −|x|``: homologous regions are
   near, the homotopy terms) and ``τ`` a nugget. A single length did not fit real
   expression (its best ℓ sat at the end of any grid). Each group's own effect beyond that
   model, ``c_G 1_G 1_Gᵀ``, is fitted to the group means' covariance (`fit_group_effects`).
   The fitted terms are recorded in the null set's metadata.
3. **Sign flips in the conditional covariance's eigenbasis.** Under ``K`` plus the group
   effects, the rest of ``X`` given the group means has expectation ``K_⊥F K_FF⁺ (Fᵀ X)``
   (kept) and covariance ``K_⊥⊥ − K_⊥F K_FF⁺ K_F⊥``; the remainder is sign-flipped in that
   covariance's eigenbasis, one sign per eigenvector shared by all genes, as Wagner &
   Dray's Moran randomisation. For Gaussian expression with that covariance the nulls have
   exactly the true brain's distribution, so the rank verdict is exact (tested on brains
   drawn from the model).
4. **Each gene's observed values**: within each (structure, hemisphere) group, each gene's
   null values are replaced by the group's true values of that gene in the same rank
   order (the amplitude adjustment of Theiler's AAFT surrogates, brainsmash's
   ``resample=True``): each group keeps each gene's values, mean, range and skew exactly.

Variants measured and rejected on the calibration's simulated brains (K = 19 nulls, 20–30
brains each; docs/calibration.md): a single-length kernel fitted to the whole covariance
with the conditional expectation kept made ``cge-pca`` beat its nulls on 60–75% of brains
generated from the real genes; the residual randomised in its own fitted basis without the
conditional expectation, 33–37% of purely spatial brains with ``cm`` and ``cm-pls``.

Exact: the group means and each group's values of every gene. Kept in distribution under
the fitted model rather than exactly: spatial autocorrelation, homotopy and gene–gene
covariance — measured on hcp-s100 in ``tests/nulls/test_anatomical.py`` and, for the
verdict, in ``benchmarks/studies/verdict_calibration.py``.

What we took from the libraries of the field: the sign-flip randomisation of Moran
spectral randomisation (brainspace ``MoranRandomization``, ``procedure="singleton"``;
reproduced exactly in `spectral.py`), brainsmash's idea of fitting the map's spatial
structure before drawing surrogates (its variogram fit; here a covariance fit with a
homotopy term), brainsmash's ``resample`` rank remapping, and from brainsmash's advice for
bilateral maps and neuromaps' reflected rotations the mirror-image relation of the two
hemispheres (here a kernel on mirrored coordinates, so that the measured left–right
asymmetry is kept rather than set to zero).

Fallbacks (recorded in the null set's metadata, never silent): a (structure, hemisphere)
group of one region keeps its row (its mean *is* its value); a brain in which nothing is
left to randomise (every group of one region) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from spatiomol.data.brain import Brain

__all__ = [
    "LENGTH_GRID_MM",
    "AnatomicalPlan",
    "CovarianceModel",
    "fit_covariance",
    "fit_group_effects",
    "mirrored_distances",
    "plan_anatomical",
    "rank_remap",
]


def rank_remap(null: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Give each column of each null the true column's values in the null's rank order.

    Parameters
    ----------
    null : (n, q, g) float array
        ``n`` null maps of ``q`` regions and ``g`` genes.
    true : (q, g) float array

    Returns
    -------
    (n, q, g) float array
        ``out[k, :, j]`` holds the values of ``true[:, j]``, ordered as ``null[k, :, j]``
        (ties broken by region order).
    """
    order = np.argsort(null, axis=1, kind="stable")
    out = np.empty_like(null)
    np.put_along_axis(out, order, np.broadcast_to(np.sort(true, axis=0)[None], null.shape), axis=1)
    return out


#: the decay lengths (mm) among which the covariance model's ``ℓ`` is chosen
LENGTH_GRID_MM = (5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 70.0, 100.0, 150.0, 220.0, 330.0)


def _group_indicators(structure: np.ndarray, hemisphere: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(r, m) orthonormal indicator vectors of the (structure, hemisphere) groups, and the groups."""
    groups = sorted(set(zip(structure.tolist(), hemisphere.tolist())))
    F = np.zeros((structure.size, len(groups)))
    for k, (s, h) in enumerate(groups):
        rows = (structure == s) & (hemisphere == h)
        F[rows, k] = 1.0 / np.sqrt(rows.sum())
    return F, groups


def mirrored_distances(coords: np.ndarray) -> np.ndarray:
    """(r, r) distances (mm) after mirroring every centroid onto the left (``x → −|x|``)."""
    mirrored = np.asarray(coords, dtype=np.float64).copy()
    mirrored[:, 0] = -np.abs(mirrored[:, 0])
    return np.linalg.norm(mirrored[:, None] - mirrored[None], axis=-1)


@dataclass(frozen=True)
class CovarianceModel:
    """``K = Σ_ℓ a_ℓ·exp(−d/ℓ) + Σ_ℓ b_ℓ·exp(−d_M/ℓ) + τ·I`` fitted to a brain's residual expression.

    A non-negative mixture over the decay lengths of `LENGTH_GRID_MM`, so that short- and
    long-range structure are both described; a sum of positive-definite kernels is one.

    Attributes
    ----------
    spatial, mirror : dict
        ``ℓ`` (mm) → ``a_ℓ`` / ``b_ℓ`` (expression units²), non-zero terms only.
    nugget : float
        ``τ``.
    matrix : (r, r) float array
        ``K``.
    """

    spatial: dict
    mirror: dict
    nugget: float
    matrix: np.ndarray

    def summary(self) -> dict:
        return {
            "spatial": {f"{k:g} mm": v for k, v in self.spatial.items()},
            "mirror": {f"{k:g} mm": v for k, v in self.mirror.items()},
            "nugget": self.nugget,
        }


def fit_covariance(
    residual: np.ndarray,
    distances: np.ndarray,
    mirror_distances: np.ndarray,
    projector: np.ndarray,
    lengths: tuple[float, ...] = LENGTH_GRID_MM,
) -> CovarianceModel:
    """Fit the covariance model to the region × region covariance of a residual's genes.

    Parameters
    ----------
    residual : (r, g) float array
        ``X − P_F X`` (each column already in the range of ``projector``).
    distances, mirror_distances : (r, r) float arrays, mm
    projector : (r, r) float array
        The orthogonal projector onto the complement of the kept subspace; the model's
        terms are projected with it, as the residual is.
    lengths : tuple of float, mm
        The decay lengths of the mixture.

    Returns
    -------
    CovarianceModel
        Coefficients from ``scipy.optimize.nnls`` on the upper triangle (diagonal
        included) of ``R Rᵀ / g`` against the projected terms.
    """
    r = residual.shape[0]
    empirical = residual @ residual.T / residual.shape[1]
    upper = np.triu_indices(r)
    terms = [np.exp(-distances / length) for length in lengths]
    terms += [np.exp(-mirror_distances / length) for length in lengths]
    terms.append(np.eye(r))
    design = np.stack([(projector @ t @ projector)[upper] for t in terms], axis=1)
    scale = np.linalg.norm(design, axis=0)
    coef, _ = nnls(design / scale, empirical[upper])
    coef = coef / scale
    matrix = np.zeros((r, r))
    for c, t in zip(coef, terms):
        matrix += c * t
    k = len(lengths)
    return CovarianceModel(
        spatial={length: float(c) for length, c in zip(lengths, coef[:k]) if c > 0},
        mirror={length: float(c) for length, c in zip(lengths, coef[k : 2 * k]) if c > 0},
        nugget=float(coef[-1]),
        matrix=matrix,
    )


@dataclass(frozen=True)
class AnatomicalPlan:
    """Sign draws of ``n`` anatomical nulls, and the bases they act in.

    Implements the sampler interface of `spatiomol.nulls.draw.NullDraws`: every region is
    replaced (`regions` is ``0 .. r − 1``, in order) and `rows` makes the new expression.

    Attributes
    ----------
    fixed : (r, m) float array
        Orthonormal indicators of the (structure, hemisphere) groups (their means are kept).
    complement : (r, r − m) float array
        Orthonormal basis of the rest.
    regression : (r − m, m) float array
        ``K_⊥F K_FF⁺``: the expectation of the rest given the group means (kept).
    vectors : (r − m, r − m) float array
        Eigenvectors of the Schur complement ``K_⊥⊥ − K_⊥F K_FF⁺ K_F⊥`` (``complement``
        coordinates), by descending eigenvalue: the randomised directions.
    signs : (n, r − m) int8 array of ±1
    groups : list of int arrays
        Regions of each (structure, hemisphere) group (the rank remapping's groups).
    """

    fixed: np.ndarray
    complement: np.ndarray
    regression: np.ndarray
    vectors: np.ndarray
    signs: np.ndarray
    groups: list[np.ndarray]

    @property
    def regions(self) -> np.ndarray:
        return np.arange(self.fixed.shape[0], dtype=np.int64)

    def rows(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), r, g) expression of nulls ``draws``, regions in order."""
        X = np.asarray(X, dtype=np.float64)
        draws = np.asarray(draws, dtype=np.int64)
        remainder = self.complement.T @ X - self.regression @ (self.fixed.T @ X)
        coefficients = self.vectors.T @ remainder  # (k, g)
        maps = self.complement @ self.vectors  # (r, k): the randomised directions in region space
        out = np.empty((draws.size, *X.shape))
        for n, s in enumerate(self.signs[draws]):
            negative = s < 0
            # flipping the chosen coefficients: X − 2 V₋ C₋ (X itself when every sign is +1)
            out[n] = X - 2.0 * (maps[:, negative] @ coefficients[negative])
        for rows in self.groups:
            if rows.size > 1:
                out[:, rows] = rank_remap(out[:, rows], X[rows])
        return out

    def keys(self, draws: np.ndarray) -> list[bytes]:
        """A byte key per draw (equal keys: equal nulls)."""
        return [self.signs[k].tobytes() for k in draws]

    def identity(self, draws: np.ndarray) -> np.ndarray:
        """(len(draws),) True where every sign is +1 (the null is the true expression)."""
        return (self.signs[np.asarray(draws, dtype=np.int64)] == 1).all(axis=1)


def _centred(k_ff: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """``K_FF`` with the constant map's direction removed (each gene's mean is kept, not modelled)."""
    constant = fixed.T @ np.ones(fixed.shape[0])
    constant /= np.linalg.norm(constant)
    centre = np.eye(k_ff.shape[0]) - np.outer(constant, constant)
    return centre @ k_ff @ centre


def fit_group_effects(X: np.ndarray, fixed: np.ndarray, spatial: np.ndarray) -> np.ndarray:
    """Variance ``c_G ≥ 0`` of each group's own effect: what the group means' covariance has beyond ``spatial``.

    The group means of a purely spatial brain covary as the spatial model says; a real
    structure contrast adds variance of its own (a gene's cortex mean differs from its
    subcortex mean by more than distance explains). ``c_G`` is fitted by non-negative
    least squares to ``Fᵀ J X Xᵀ J F / g − Fᵀ J K J F`` (``J``: centring over regions).

    Returns
    -------
    (m,) float array, expression units².
    """
    r = X.shape[0]
    centre = np.eye(r) - 1.0 / r
    centred = centre @ X
    empirical = fixed.T @ centred @ centred.T @ fixed / X.shape[1]
    target = empirical - fixed.T @ centre @ spatial @ centre @ fixed
    upper = np.triu_indices(fixed.shape[1])
    design = np.stack([(fixed.T @ centre @ np.outer(f > 0, f > 0) @ centre @ fixed)[upper] for f in fixed.T], axis=1)
    effects, _ = nnls(design, target[upper])
    return effects


def _complement(fixed: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the orthogonal complement of the orthonormal columns ``fixed``."""
    r = fixed.shape[0]
    rest = np.eye(r) - fixed @ fixed.T
    u, s, _ = np.linalg.svd(rest)
    return u[:, s > 0.5]


def plan_anatomical(brain: Brain, n: int, rng: np.random.Generator) -> tuple[AnatomicalPlan, dict]:
    """Fit the covariance model to ``brain``'s residual and draw ``n`` anatomical nulls.

    Parameters
    ----------
    brain : Brain
        Expression without NaN, regions with ``structure`` and ``hemisphere`` (L/R/B),
        centroids in mm.
    n : int
    rng : numpy.random.Generator
        Draws the ``n`` sign vectors, nothing else.

    Returns
    -------
    plan : AnatomicalPlan
    summary : dict
        ``groups`` (regions per (structure, hemisphere) group, whose means are kept),
        ``kept_regions`` (the regions of one-region groups, whose rows the nulls keep)
        and ``covariance`` (the fitted model, `CovarianceModel.summary`).

    Raises
    ------
    ValueError
        When nothing is left to randomise (every group has one region), naming the groups.
    """
    labels = np.asarray(brain.labels).astype(str)
    structure = brain.structure.astype(str)
    hemisphere = brain.hemisphere.astype(str)
    fixed, groups = _group_indicators(structure, hemisphere)
    members = [np.flatnonzero((structure == s) & (hemisphere == h)) for s, h in groups]
    sizes = {f"{s}/{h}": int(m.size) for (s, h), m in zip(groups, members)}
    if fixed.shape[1] >= brain.n_regions:
        listing = ", ".join(f"{g}: {k}" for g, k in sizes.items())
        raise ValueError(
            f"method 'anatomical': brain {brain.name!r} has nothing to randomise: the mean of every (structure, "
            f"hemisphere) group is kept and no group has 2 regions (regions per group: {listing})"
        )
    X = np.asarray(brain.X, dtype=np.float64)
    complement = _complement(fixed)
    projector = complement @ complement.T
    model = fit_covariance(projector @ X, brain.distances, mirrored_distances(brain.coords), projector)
    group_effects = fit_group_effects(X, fixed, model.matrix)
    K = model.matrix + sum(c * np.outer(f > 0, f > 0) for c, f in zip(group_effects, fixed.T))
    k_ff = fixed.T @ K @ fixed
    k_cf = complement.T @ K @ fixed
    regression = k_cf @ np.linalg.pinv(_centred(k_ff, fixed), rcond=1e-10)
    schur = complement.T @ K @ complement - regression @ k_cf.T
    _, vectors = np.linalg.eigh((schur + schur.T) / 2.0)
    vectors = vectors[:, ::-1]
    signs = (rng.integers(0, 2, size=(n, vectors.shape[1]), dtype=np.int8) * 2 - 1).astype(np.int8)
    summary = {
        "groups": sizes,
        "kept_regions": [str(labels[m[0]]) for m in members if m.size == 1],
        "covariance": {
            **model.summary(),
            "group_effects": {f"{s}/{h}": float(c) for (s, h), c in zip(groups, group_effects)},
        },
    }
    return AnatomicalPlan(fixed, complement, regression, vectors, signs, members), summary
