"""Step 1 of `generate_nulls`: draw ``n`` nulls of a brain with one family (`draw_nulls`).

Every random draw is made up front from ``numpy.random.default_rng(seed)``, so nothing
depends on batching or threads. The result, `NullDraws`, holds each null's permutation,
its reassignment cost and, for families that make new expression rows, the sampler that
makes them on demand.

Families (``method``, `NULL_METHODS`)
-------------------------------------
``"cge"``        cortical spins with Váša assignment + non-cortical nulls (``subcortex``),
                 CGE from the genes; CGE-matched by default.
``"pca-cge"``    the same nulls, CGE from the PCA scores of ``X`` keeping
                 ``pca_variance`` (default 95 %) of its variance; CGE-matched by default.
``"hungarian"``  cortical spins with the optimal one-to-one (Hungarian) assignment +
                 non-cortical nulls (``subcortex``); not matched by default.
``"moran"``      Moran spectral randomisation of all regions at once (cortex, subcortex,
                 cerebellum) on inverse-distance weights, one sign draw shared by all
                 genes (`spatiomol.nulls.spectral`); not matched by default.
``"variogram"``  variogram-matched surrogates (Burt et al. 2020) of the principal-component
                 scores of ``X`` (``pca_variance``), orthogonalised so that the gene–gene
                 covariance is kept (`spatiomol.nulls.variogram`); not matched by default.
``"anatomical"`` Moran randomisation within each structure class, homologous pairs
                 randomised together (homotopy kept), each class's values rank-remapped
                 (`spatiomol.nulls.anatomical`); not matched by default.
``"random"``     naive nulls: uniform permutations within each structure class, no
                 rotation (Table 3's "permuted"; `spatiomol.nulls.class_permutations`).
                 Their errors are reported, but they are *not* selected: a naive null
                 chosen for a realistic CGE curve would no longer be naive. Their cost is
                 Σ‖C[j] − C[π(j)]‖ over cortex in mm.

Every fact about a family (its draw function, whether it is CGE-matched by default, a
spin family, calibrated, what it preserves) lives in its spec, `spatiomol.nulls.families`;
`draw_nulls` calls ``FAMILIES[method].draw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatiomol.data.brain import Brain
from spatiomol.nulls.anatomical import AnatomicalPlan
from spatiomol.nulls.defaults import NULL_DEFAULTS, NULL_TUNING_DEFAULTS, SUBCORTEX_DEFAULT
from spatiomol.nulls.families import FAMILIES, NULL_METHODS
from spatiomol.nulls.spectral import MoranPlan
from spatiomol.nulls.spins import SUBCORTEX_NULLS
from spatiomol.nulls.variogram import PCAVariogramPlan

__all__ = ["NULL_METHODS", "SUBCORTEX_NULLS", "NullDraws", "draw_nulls"]


@dataclass(frozen=True, eq=False)
class NullDraws:
    """``n`` nulls of one brain drawn by one family, before scoring.

    Attributes
    ----------
    method : str
        The family (`NULL_METHODS`).
    permutations : (n, r) int64 array
        Null ``k`` gives region ``i`` the expression of region ``permutations[k, i]``; the
        identity at ``replaced``.
    costs : (n,) float array
        Reassignment cost of each null (cortical assignment cost of spins, cortical
        displacement in mm of naive nulls, 0 for families without one).
    replaced : (q,) int64 array
        Regions whose expression rows are replaced by ``sampler`` (empty: a pure
        permutation family).
    sampler : MoranPlan, PCAVariogramPlan, AnatomicalPlan or None
        Makes the replaced rows: ``sampler.rows(X, draws)`` → (len(draws), q, g).
    region_groups : dict
        How regions were grouped (for the metadata).
    settings : dict
        Family settings recorded in the metadata (``subcortex``, ``assignment``, ...).
    """

    method: str
    permutations: np.ndarray
    costs: np.ndarray
    replaced: np.ndarray
    sampler: MoranPlan | PCAVariogramPlan | AnatomicalPlan | None
    region_groups: dict
    settings: dict

    @property
    def n(self) -> int:
        return self.permutations.shape[0]

    def replaced_rows(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), q, g) new expression of the `replaced` regions (q may be 0)."""
        draws = np.asarray(draws, dtype=np.int64)
        if self.sampler is None:
            return np.zeros((draws.size, 0, X.shape[1]))
        return self.sampler.rows(X, draws)

    def expression(self, X: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """(len(draws), r, g) expression of nulls ``draws`` built from the true ``X``."""
        draws = np.asarray(draws, dtype=np.int64)
        if self.replaced.size == X.shape[0]:  # every row replaced (moran, variogram)
            rows = self.replaced_rows(X, draws)
            order = np.argsort(self.replaced)
            # already in region order for a single region group: skip a copy of the whole batch
            return rows if np.array_equal(order, np.arange(order.size)) else rows[:, order]
        out = np.asarray(X)[self.permutations[draws]]
        if self.replaced.size:
            out[:, self.replaced] = self.replaced_rows(X, draws)
        return out

    def moved_fraction(self) -> np.ndarray:
        """(n,) fraction of regions whose expression is not their own (replaced rows count as moved)."""
        moved = self.permutations != np.arange(self.permutations.shape[1])
        moved[:, self.replaced] = True
        return moved.mean(axis=1)

    def keys(self) -> list[bytes]:
        """One byte key per null; equal keys mean equal nulls."""
        extra = self.sampler.keys(np.arange(self.n)) if self.sampler is not None else [b""] * self.n
        return [p.tobytes() + e for p, e in zip(self.permutations, extra)]

    def identity(self) -> np.ndarray:
        """(n,) True where the null is the true expression."""
        same = (self.permutations == np.arange(self.permutations.shape[1])).all(axis=1)
        if self.sampler is not None:
            same &= self.sampler.identity(np.arange(self.n))
        return same


def _check_expression(brain: Brain, method: str) -> None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(brain.X, dtype=np.float64)).all(axis=1))
    if bad.size:
        names = ", ".join(str(brain.labels[k]) for k in bad[:10])
        raise ValueError(
            f"method {method!r}: brain {brain.name!r} expression (X): rows {bad[:10].tolist()} ({names}; "
            f"{bad.size} in all) contain NaN/inf expression; every null family needs complete rows: impute "
            "or drop them first (spatiomol.data.impute)"
        )


def draw_nulls(
    brain: Brain,
    n: int = NULL_DEFAULTS["n"],
    seed: int = NULL_DEFAULTS["seed"],
    method: str = NULL_DEFAULTS["method"],
    *,
    subcortex: str = SUBCORTEX_DEFAULT,
    pca_variance: float = NULL_TUNING_DEFAULTS["pca_variance"],
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> NullDraws:
    """Draw ``n`` nulls of ``brain`` with one family.

    Parameters
    ----------
    brain : Brain
        Expression without NaN rows; coordinates in mm.
    n : int
        Nulls drawn.
    seed : int
        Seed of the ``numpy.random.Generator`` that makes every draw, up front.
    method : str, one of `NULL_METHODS`
    subcortex : {"shuffle", "moran"}
        Non-cortical nulls of the spin families (see `spatiomol.nulls.spins`); ignored by
        the others (``moran`` and ``variogram`` treat all regions alike, ``random``
        shuffles within each structure class).
    pca_variance : float in (0, 1]
        Variance of ``X`` kept by the principal components of ``"variogram"``.
    batch_size : int
        Spins assigned together (bounds temporaries only).
    n_jobs : int or None
        Threads of the compiled loops (None: every core this process may use).

    Returns
    -------
    NullDraws
    """
    if method not in NULL_METHODS:
        raise ValueError(f"method must be one of {NULL_METHODS}, got {method!r}")
    if subcortex not in SUBCORTEX_NULLS:
        raise ValueError(f"subcortex must be one of {SUBCORTEX_NULLS}, got {subcortex!r}")
    _check_expression(brain, method)
    n = int(n)
    rng = np.random.default_rng(seed)
    fields = FAMILIES[method].draw(
        brain, n, rng, method, subcortex=subcortex, pca_variance=pca_variance, batch_size=batch_size, n_jobs=n_jobs
    )
    return NullDraws(method, *fields)
