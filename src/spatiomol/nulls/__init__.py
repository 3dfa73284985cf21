"""Spatiomolecular null maps (Algorithm 1): spins, symmetric shuffles, CGE-matched selection.

``generate_nulls(brain, n, top, seed, method)`` returns a `NullSet`; apply a null with
``null_set.apply(brain, k)`` or ``brain.permute_expression(null_set.permutations[k])``.
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
from spatiomol.nulls.select import METHODS, QUANTITIES, NullSet, generate_nulls, standardized_errors
from spatiomol.nulls.spins import (
    homologous_pairs,
    random_rotations,
    region_groups,
    sphere_coordinates,
    vasa_assignment,
)

__all__ = [
    "CURVE_PARAMETERS",
    "DistanceBins",
    "METHODS",
    "NullSet",
    "QUANTITIES",
    "correlated_gene_expression",
    "fit_cubic",
    "fit_curves",
    "fit_exponential",
    "generate_nulls",
    "homologous_pairs",
    "pca_scores",
    "random_rotations",
    "region_groups",
    "sphere_coordinates",
    "standardized_errors",
    "vasa_assignment",
]
