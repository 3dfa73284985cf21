"""Anatomy baseline: gradient boosting on pair features of anatomy alone, no expression.

`AnatomyBaseline` answers the reviewer's question "does an expression model beat anatomy?",
not only "does it beat spatial nulls?". It sees what the regions table says about a pair —
centroid geometry (distance, per-axis offsets, mirrored ``|x_i + x_j|`` for homotopy),
hemisphere, structure class and whether the two regions are homologues — and fits
`sklearn.ensemble.HistGradientBoostingRegressor` to the training edges' targets. Expression
(``brain.X``) is never read, so a null or permuted expression input cannot change it.

Every feature is symmetric in ``(i, j)``, so predictions are symmetric by construction.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

from spatiomol.data.brain import Brain
from spatiomol.data.homology import homologue_partner
from spatiomol.models.base import ConnectivityModel
from spatiomol.models.rules import pair_distances

#: structure classes of `Brain.regions` (``structure`` column), in the one-hot order
STRUCTURES: tuple[str, ...] = ("cortex", "subcortex", "cerebellum")
#: unordered structure-class pairs, one one-hot column each (cortex–cortex, cortex–subcortex, ...)
STRUCTURE_PAIRS: tuple[tuple[str, str], ...] = tuple((a, b) for k, a in enumerate(STRUCTURES) for b in STRUCTURES[k:])
#: names of the pair features, in column order
FEATURES: tuple[str, ...] = (
    "distance_mm",
    "abs_dx_mm",
    "mirrored_x_mm",
    "abs_dy_mm",
    "abs_dz_mm",
    "same_hemisphere",
    "homologue",
    *(f"structure_{a}_{b}" for a, b in STRUCTURE_PAIRS),
)


def pair_features(brain: Brain, i: np.ndarray, j: np.ndarray, partner: np.ndarray | None = None) -> np.ndarray:
    """Anatomical features (n_pairs, len(FEATURES)) of pairs ``(i[k], j[k])``, symmetric in (i, j).

    Columns (`FEATURES`): Euclidean distance, ``|Δx|``, ``|x_i + x_j|`` (small for a region
    and the mirror image of the other: homotopy), ``|Δy|``, ``|Δz|`` (all mm), same
    hemisphere (0/1), homologue (0/1; ``partner`` from `homologue_partner`, computed when
    None) and the one-hot unordered structure-class pair.
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    partner = homologue_partner(brain) if partner is None else partner
    c = brain.coords
    distance = pair_distances(brain, i, j)
    hemisphere, structure = brain.hemisphere, brain.structure
    unknown = sorted(set(np.unique(structure)) - set(STRUCTURES))
    if unknown:
        raise ValueError(
            f"brain {brain.name!r}: regions table has structure class(es) {unknown}; expected {STRUCTURES}"
        )
    rank = {s: k for k, s in enumerate(STRUCTURES)}
    si = np.array([rank[s] for s in structure])[i]
    sj = np.array([rank[s] for s in structure])[j]
    lo, hi = np.minimum(si, sj), np.maximum(si, sj)
    onehot = [(lo == rank[a]) & (hi == rank[b]) for a, b in STRUCTURE_PAIRS]
    columns = [
        distance,
        np.abs(c[i, 0] - c[j, 0]),
        np.abs(c[i, 0] + c[j, 0]),
        np.abs(c[i, 1] - c[j, 1]),
        np.abs(c[i, 2] - c[j, 2]),
        hemisphere[i] == hemisphere[j],
        partner[i] == j,
        *onehot,
    ]
    return np.column_stack([np.asarray(col, dtype=np.float64) for col in columns])


class AnatomyBaseline(ConnectivityModel):
    """Gradient boosting on anatomical pair features (`pair_features`); reads no expression.

    Parameters
    ----------
    max_iter : int
        Boosting iterations (trees).
    learning_rate : float
        Shrinkage of each tree.
    max_leaf_nodes : int
        Leaves per tree.
    min_samples_leaf : int
        Training edges per leaf, at least.
    l2_regularization : float
        L2 penalty on the leaf values.
    seed : int
        ``random_state`` of the regressor (the runner sets it per run). With no early
        stopping and every feature used at every split, the fit does not depend on it.

    Attributes
    ----------
    regressor_ : sklearn.ensemble.HistGradientBoostingRegressor
    partner_ : (r,) int array
        Homologue of each region of the training brain (``-1`` if none).
    n_parameters_ : int
        Leaves over all trees (each leaf holds one fitted value), plus the baseline
        prediction.
    """

    config_name: ClassVar[str] = "anatomy"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "l2_regularization": [Interval(Real, 0, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.seed = seed

    def _reads_expression(self) -> bool:  # anatomy only
        return False

    def refit_uses_selection_fit(self) -> bool:  # no refit_params: a refit takes nothing from it
        return False

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        i, j, y = self.training_pairs(brain, train)
        self.partner_ = homologue_partner(brain)
        regressor = HistGradientBoostingRegressor(
            max_iter=int(self.max_iter),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=int(self.max_leaf_nodes),
            min_samples_leaf=int(self.min_samples_leaf),
            l2_regularization=float(self.l2_regularization),
            early_stopping=False,
            random_state=int(self.seed),
        )
        # one OpenMP thread: on a CPU shared with other fits (the runner's --jobs) more threads
        # mostly wait for one another, and a fixed count keeps the sums' rounding host-independent
        with threadpool_limits(limits=1, user_api="openmp"):
            self.regressor_ = regressor.fit(pair_features(brain, i, j, self.partner_), y)
        # leaf count from the fitted trees (scikit-learn has no public accessor for it)
        leaves = sum(tree.get_n_leaf_nodes() for trees in regressor._predictors for tree in trees)
        self.n_parameters_ = int(leaves) + 1

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        # homologues of the brain predicted on (another brain may pair its regions otherwise)
        with threadpool_limits(limits=1, user_api="openmp"):
            return self.regressor_.predict(pair_features(brain, i, j))
