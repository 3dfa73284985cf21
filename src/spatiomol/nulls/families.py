"""The one home of the facts about each null family: `NullFamily`, one spec per ``method``.

Every place that needs to know something about a family reads it from `FAMILIES`: which
function draws it (`draw_nulls` calls ``FAMILIES[method].draw``), whether it is
CGE-matched by default, whether it is a spin family (its ``subcortex`` setting then
applies), whether its CGE curve is taken from PCA scores, the words the report uses for it,
what it preserves, and whether its rank verdict was calibrated (docs/calibration.md).
`NULL_METHODS`, `CGE_MATCH_DEFAULT` and `CALIBRATED_METHODS` are derived from the specs
(and still importable from where they were: `spatiomol.nulls.draw`, `.select`,
`.defaults`).

A family's draw function takes ``(brain, n, rng, method, *, subcortex, pca_variance,
batch_size, n_jobs)`` and returns the fields of `spatiomol.nulls.draw.NullDraws` after
``method``: ``(permutations, costs, replaced, sampler, region_groups, settings)``; every
random draw comes from ``rng``, in the order written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatiomol.data.brain import Brain
from spatiomol.nulls import class_permutations, spins
from spatiomol.nulls.anatomical import plan_anatomical
from spatiomol.nulls.spectral import plan_moran
from spatiomol.nulls.variogram import plan_pca_variogram

__all__ = [
    "ANATOMY_PROPERTIES",
    "CALIBRATED_METHODS",
    "CGE_MATCH_DEFAULT",
    "FAMILIES",
    "NULL_METHODS",
    "SPIN_METHODS",
    "NullFamily",
    "family",
    "kept_and_lost",
]

#: the properties of the true expression a verdict's sentence says a family keeps or not
#: (`NullFamily.keeps`; the report's headline reads them in this order)
ANATOMY_PROPERTIES = (
    "spatial autocorrelation",
    "gene-gene covariance",
    "the structure contrast",
    "hemispheric homotopy",
    "each gene's values",
)


@dataclass(frozen=True)
class NullFamily:
    """Everything the package knows about one null family.

    Attributes
    ----------
    name : str
        The ``method`` name (config ``nulls.method``, ``generate_nulls(method=...)``).
    draw : callable
        Draws ``n`` nulls: ``draw(brain, n, rng, method, *, subcortex, pca_variance,
        batch_size, n_jobs)`` → the fields of `NullDraws` after ``method``.
    cge_match_default : bool
        Whether ``cge_match=None`` sends the family through Algorithm 1's selection.
    spin : bool
        A spin family: cortical rotations + an assignment; its ``subcortex`` setting
        decides the non-cortical null.
    assignment : str or None
        The spin assignment (``"vasa"`` or ``"hungarian"``); None for the other families.
    description : str
        What the family does, in a few words (the report's family lines).
    preserves : tuple of str
        What every null of the family keeps of the true brain, in plain language.
    calibrated : bool
        Whether its rank verdict kept its false-positive rate at about α (the ideal null's
        rate) in every scenario of the calibration: isotropic space, anatomy in doses and a
        model fitted to real expression, random and spatial splits (docs/calibration.md).
    cge_features : {"genes", "pca"}
        What its CGE–distance curve is computed from: the genes, or the PCA scores of
        ``X`` keeping ``pca_variance``.
    uses_pca_variance : bool
        Whether ``pca_variance`` changes its nulls or their scores (recorded in the metadata).
    naive : bool
        The naive null (Table 3's "permuted"): reported, never selected by default.
    keeps : frozenset of str
        Which of `ANATOMY_PROPERTIES` every null of the family keeps (exactly or closely;
        ``preserves`` says how): what a verdict against the family rules out.
    calibration : str
        How its rank verdict fared on simulated brains without a link to connectivity, in
        one phrase the report quotes (docs/calibration.md).
    """

    name: str
    draw: Callable[..., tuple]
    cge_match_default: bool
    spin: bool
    assignment: str | None
    description: str
    preserves: tuple[str, ...]
    calibrated: bool = False
    cge_features: str = "genes"
    uses_pca_variance: bool = False
    naive: bool = False
    keeps: frozenset[str] = frozenset()
    calibration: str = "not calibrated (docs/calibration.md)"

    def __post_init__(self) -> None:
        unknown = sorted(self.keeps - set(ANATOMY_PROPERTIES))
        if unknown:
            raise ValueError(f"null family {self.name!r}: keeps {unknown} not among {ANATOMY_PROPERTIES}")


# ---------------------------------------------------------------- draw functions
def draw_moran(
    brain: Brain, n: int, rng: np.random.Generator, method: str, *, subcortex, pca_variance, batch_size, n_jobs
) -> tuple:
    """Moran spectral randomisation of all regions at once: every row replaced, no permutation."""
    identity = np.tile(np.arange(brain.n_regions, dtype=np.int64), (n, 1))
    plan = plan_moran(brain.coords, [np.arange(brain.n_regions)], n, rng, brain.labels, what="method 'moran'")
    return identity, np.zeros(n), plan.regions, plan, {"moran_groups": 1}, {}


def draw_anatomical(
    brain: Brain, n: int, rng: np.random.Generator, method: str, *, subcortex, pca_variance, batch_size, n_jobs
) -> tuple:
    """Anatomical nulls (`spatiomol.nulls.anatomical`): every row replaced, no permutation."""
    identity = np.tile(np.arange(brain.n_regions, dtype=np.int64), (n, 1))
    plan, summary = plan_anatomical(brain, n, rng)
    settings = {"kept_means": "each (structure, hemisphere) group", "value_remap": "within each group"}
    return identity, np.zeros(n), plan.regions, plan, summary, settings


def draw_variogram(
    brain: Brain, n: int, rng: np.random.Generator, method: str, *, subcortex, pca_variance, batch_size, n_jobs
) -> tuple:
    """Variogram-matched surrogates of the PCA scores: every row replaced, no permutation."""
    identity = np.tile(np.arange(brain.n_regions, dtype=np.int64), (n, 1))
    plan = plan_pca_variogram(brain.X, brain.distances, n, rng, pca_variance)
    settings = {
        "pca_variance": float(pca_variance),
        "pca_components": int(plan.components.shape[0]),
        "smoothing_deltas": plan.deltas.tolist(),
    }
    return identity, np.zeros(n), plan.regions, plan, {}, settings


def draw_permutations(
    brain: Brain,
    n: int,
    rng: np.random.Generator,
    method: str,
    *,
    subcortex: str,
    pca_variance: float,
    batch_size: int,
    n_jobs: int | None,
) -> tuple:
    """Spins (the spin families, with their ``assignment``) or naive permutations (``random``).

    The plan (every random draw) is made first; the permutations and costs are then
    computed ``batch_size`` nulls at a time.
    """
    r = brain.n_regions
    spec = FAMILIES[method]
    if not spec.spin:
        plan = class_permutations.plan_random(brain, n, rng)
        make_batch = class_permutations.random_batch
        summary = {"structure_classes": [[str(brain.labels[k]) for k in c] for c in plan.classes]}
        settings: dict[str, Any] = {}
        sampler = None
    else:
        spins.check_spin_hemispheres(brain, method)
        plan = spins.plan_spins(brain, n, rng, assignment=spec.assignment, subcortex=subcortex)
        make_batch = spins.spin_batch
        summary = plan.groups.summary(brain.labels)
        settings = {"assignment": plan.assignment, "subcortex": subcortex}
        sampler = plan.replaced
        if sampler is not None:
            summary["moran_groups"] = [[str(brain.labels[k]) for k in g] for g in sampler.groups]
    perms = np.empty((n, r), dtype=np.int64)
    costs = np.empty(n)
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        perms[rows], costs[rows] = make_batch(plan, rows, r, n_jobs)
    replaced = sampler.regions if sampler is not None else np.zeros(0, dtype=np.int64)
    return perms, costs, replaced, sampler, summary, settings


# ---------------------------------------------------------------- the specs
_SPIN_PRESERVES = (
    "each cortical region's whole expression profile (rows move together)",
    "gene-gene covariance",
    "spatial autocorrelation of the cortex (a rotation of each hemisphere's sphere)",
    "each gene's cortical values",
    "hemisphere",
    "structure class",
)
_SPIN_SUBCORTEX = (
    "non-cortical regions: per `subcortex` (Moran within each class: each gene's mean, variance and "
    "Moran's I there; shuffle: each gene's values and bilateral symmetry)"
)

_SPINS_MISCALIBRATED = (
    "not calibrated: its rank verdict fired falsely on 16–78% of brains whose expression was only isotropic "
    "space (docs/calibration.md)"
)
_SPIN_KEEPS = frozenset(
    {"spatial autocorrelation", "gene-gene covariance", "the structure contrast", "hemispheric homotopy"}
)

#: the null families, in the order of `NULL_METHODS` (the config's and the CLI's order)
FAMILIES: dict[str, NullFamily] = {
    spec.name: spec
    for spec in (
        NullFamily(
            name="cge",
            draw=draw_permutations,
            cge_match_default=True,
            spin=True,
            assignment="vasa",
            description="spins (Váša assignment)",
            preserves=(*_SPIN_PRESERVES, _SPIN_SUBCORTEX),
            keeps=_SPIN_KEEPS,
            calibration=_SPINS_MISCALIBRATED,
        ),
        NullFamily(
            name="pca-cge",
            draw=draw_permutations,
            cge_match_default=True,
            spin=True,
            assignment="vasa",
            description="spins (Váša assignment), CGE of PCA scores",
            preserves=(*_SPIN_PRESERVES, _SPIN_SUBCORTEX),
            cge_features="pca",
            uses_pca_variance=True,
            keeps=_SPIN_KEEPS,
            calibration=_SPINS_MISCALIBRATED,
        ),
        NullFamily(
            name="random",
            draw=draw_permutations,
            cge_match_default=False,
            spin=False,
            assignment=None,
            description="uniform shuffle within structure classes (naive)",
            preserves=(
                "each region's whole expression profile (rows move together)",
                "gene-gene covariance",
                "each gene's values",
                "structure class",
            ),
            naive=True,
            keeps=frozenset({"gene-gene covariance", "the structure contrast", "each gene's values"}),
            calibration="not calibrated: the naive null, beaten by space alone on 40–100% of simulated brains",
        ),
        NullFamily(
            name="hungarian",
            draw=draw_permutations,
            cge_match_default=False,
            spin=True,
            assignment="hungarian",
            description="spins (Hungarian assignment)",
            preserves=(*_SPIN_PRESERVES, _SPIN_SUBCORTEX),
            keeps=_SPIN_KEEPS,
            calibration=_SPINS_MISCALIBRATED,
        ),
        NullFamily(
            name="moran",
            draw=draw_moran,
            cge_match_default=False,
            spin=False,
            assignment=None,
            description="Moran spectral randomisation of all regions",
            preserves=(
                "each gene's mean and variance",
                "spatial autocorrelation (each gene's Moran's I on inverse-distance weights, exactly)",
                "gene-gene covariance",
            ),
            keeps=frozenset({"spatial autocorrelation", "gene-gene covariance"}),
            calibration=(
                "calibrated on isotropic spatial expression only: its rank verdict fired falsely on 24–100% of "
                "brains whose expression also carried anatomy (homotopy, a structure contrast) or followed a "
                "model fitted to real expression (docs/calibration.md)"
            ),
        ),
        NullFamily(
            name="variogram",
            draw=draw_variogram,
            cge_match_default=False,
            spin=False,
            assignment=None,
            description="variogram-matched surrogates of the PC scores, all regions",
            preserves=(
                "each gene's mean",
                "gene-gene covariance of the kept principal components (`pca_variance`)",
                "spatial autocorrelation (each component's variogram, approximately)",
            ),
            uses_pca_variance=True,
            keeps=frozenset({"spatial autocorrelation", "gene-gene covariance"}),
            calibration="not calibrated: its rank verdict fired falsely on 0–66% of isotropic spatial brains",
        ),
        NullFamily(
            name="anatomical",
            draw=draw_anatomical,
            cge_match_default=False,
            spin=False,
            assignment=None,
            description="sign flips in a fitted space-and-anatomy covariance, group means and values kept",
            preserves=(
                "each (structure class, hemisphere) group's mean expression profile, exactly: the "
                "between-structure contrast",
                "each gene's values within each (structure class, hemisphere) group, exactly (rank-remapped)",
                "spatial autocorrelation, hemispheric homotopy and gene-gene covariance in distribution: the "
                "nulls are sign flips in the eigenbasis of a covariance model (distance decay, mirrored-distance "
                "decay, group effects) fitted to the expression",
            ),
            keeps=frozenset(ANATOMY_PROPERTIES),
            calibrated=True,
            calibration=(
                "approximately calibrated: its rank verdict fired falsely on 6.8% of simulated brains without a "
                "link to FC (the ideal null: 5.4%), across isotropic, anatomical and fitted-expression brains, "
                "random and spatial splits, hcp-s100 and hcp-s400, no cell significantly above the ideal null's; "
                "above 0.10 in three cells of 32 (isotropic brains with cge-pca 0.16, fitted brains with cm 0.12 "
                "and, on spatial splits, with cge-pca 0.15) (docs/calibration.md)"
            ),
        ),
    )
}

#: every null family `generate_nulls` (and the config's ``nulls.method``) accepts
NULL_METHODS = tuple(FAMILIES)
#: whether a family goes through the CGE-matched selection when ``cge_match`` is None
CGE_MATCH_DEFAULT = {name: spec.cge_match_default for name, spec in FAMILIES.items()}
#: families whose rank verdict kept its false-positive rate at about α in every scenario of
#: the calibration (docs/calibration.md)
CALIBRATED_METHODS = tuple(name for name, spec in FAMILIES.items() if spec.calibrated)
#: families whose ``subcortex`` setting decides the non-cortical null
SPIN_METHODS = tuple(name for name, spec in FAMILIES.items() if spec.spin)


def kept_and_lost(method: str) -> tuple[list[str], list[str]]:
    """(kept, not kept): `ANATOMY_PROPERTIES` split by ``FAMILIES[method].keeps``, in their order."""
    keeps = family(method).keeps
    return [p for p in ANATOMY_PROPERTIES if p in keeps], [p for p in ANATOMY_PROPERTIES if p not in keeps]


def family(method: str) -> NullFamily:
    """The spec of ``method``; ValueError listing `NULL_METHODS` for an unknown one."""
    if method not in FAMILIES:
        raise ValueError(f"method must be one of {NULL_METHODS}, got {method!r}")
    return FAMILIES[method]
