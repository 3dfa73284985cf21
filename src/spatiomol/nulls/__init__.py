"""Spatiomolecular null maps: several null families behind one interface, CGE-matched selection.

``generate_nulls(brain, n, top, seed, method)`` returns a `NullSet`; ``null_set.apply(brain, k)``
is the ``k``-th null brain. ``method`` is one of `NULL_METHODS` (spins with Váša or
Hungarian assignment, Moran spectral randomisation, variogram-matched surrogates, naive
permutations); the steps `draw_nulls`, `score_nulls` and `select_nulls` are public.
Defaults live in `NULL_DEFAULTS`; every fact about a family lives in its `NullFamily` spec
(`FAMILIES`, `spatiomol.nulls.families`).
"""

from spatiomol.nulls.cge import (
    CURVE_PARAMETERS,
    DistanceBins,
    correlated_gene_expression,
    fit_cubic,
    fit_curves,
    fit_exponential,
    pca_scores,
)
from spatiomol.nulls.defaults import CALIBRATED_METHODS, NULL_DEFAULTS, NULL_TUNING_DEFAULTS, SUBCORTEX_DEFAULT
from spatiomol.nulls.draw import NULL_METHODS, SUBCORTEX_NULLS, NullDraws, draw_nulls
from spatiomol.nulls.families import FAMILIES, SPIN_METHODS, NullFamily
from spatiomol.nulls.nullset import FORMAT_VERSION, NullSet
from spatiomol.nulls.score import QUANTITIES, NullScores, score_nulls, standardized_errors
from spatiomol.nulls.select import CGE_MATCH_DEFAULT, generate_nulls, select_nulls
from spatiomol.nulls.spectral import distance_weights, moran_eigenvectors, moran_surrogates, morans_i
from spatiomol.nulls.spins import (
    homologous_pairs,
    hungarian_assignment,
    random_rotations,
    region_groups,
    sphere_coordinates,
    vasa_assignment,
)
from spatiomol.nulls.variogram import VariogramModel

__all__ = [
    "CGE_MATCH_DEFAULT",
    "CURVE_PARAMETERS",
    "DistanceBins",
    "FAMILIES",
    "FORMAT_VERSION",
    "CALIBRATED_METHODS",
    "NULL_DEFAULTS",
    "NULL_METHODS",
    "NULL_TUNING_DEFAULTS",
    "NullDraws",
    "NullFamily",
    "NullScores",
    "NullSet",
    "QUANTITIES",
    "SUBCORTEX_DEFAULT",
    "SPIN_METHODS",
    "SUBCORTEX_NULLS",
    "VariogramModel",
    "correlated_gene_expression",
    "distance_weights",
    "draw_nulls",
    "fit_cubic",
    "fit_curves",
    "fit_exponential",
    "generate_nulls",
    "homologous_pairs",
    "hungarian_assignment",
    "moran_eigenvectors",
    "moran_surrogates",
    "morans_i",
    "pca_scores",
    "random_rotations",
    "region_groups",
    "score_nulls",
    "select_nulls",
    "sphere_coordinates",
    "standardized_errors",
    "vasa_assignment",
]
