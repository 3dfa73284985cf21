"""The one estimator interface shared by every connectivity model.

A model is fitted on a `Brain` and a set of training regions; it learns from the
training edges only (all unordered pairs of training regions), and predicts any set of
region pairs of any brain with the same features. Predictions are symmetric in (i, j).

Hyperparameters live in ``__init__`` (scikit-learn style, so ``get_params``/``clone``
work); learned state lives in attributes ending in ``_``. Each model declares scikit-learn
constraints for its hyperparameters (``_parameter_constraints``), checked at the start of
every `ConnectivityModel.fit` together with the model's cross-parameter checks
(``_check_combinations``). Every model class declares the
name of its configuration file in ``models/configs/`` (a YAML file with ``default`` and
``grid``), so that search spaces are data, not code.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, ClassVar

import numpy as np
import yaml
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import validate_parameter_constraints

from spatiomol.data.brain import Brain, pairs_within

#: what a model's YAML file may hold: its search grid and, for a variant, the defaults it
#: changes (the defaults themselves live in the estimator's signature)
CONFIG_KEYS = ("grid", "overrides")


def load_config(name: str) -> dict[str, Any]:
    """Read ``models/configs/<name>.yaml`` → ``{"grid": {...}, "overrides": {...}}``."""
    path = resources.files("spatiomol.models").joinpath("configs", f"{name}.yaml")
    cfg = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(cfg) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"models/configs/{name}.yaml: unknown key(s) {unknown}; expected {list(CONFIG_KEYS)}")
    return {key: dict(cfg.get(key) or {}) for key in CONFIG_KEYS}


class ConnectivityModel(BaseEstimator):
    """Base class: ``fit(brain, train_regions, val_regions=None)`` → ``predict(brain, i, j)``.

    Subclasses implement `_fit` and `_predict_pairs` and set ``n_parameters_``; they
    declare ``_parameter_constraints`` (``__init__`` parameter → scikit-learn constraints,
    any one of which must hold) and may override `_check_combinations` for constraints
    between hyperparameters.
    """

    #: name of the YAML file in ``spatiomol/models/configs`` holding the search grid
    config_name: ClassVar[str] = ""
    #: scikit-learn's declarative constraints: hyperparameter → list of constraints (any one
    #: must hold); checked by `_validate_params` at the start of every fit
    _parameter_constraints: ClassVar[dict[str, list]] = {}

    # ---------------------------------------------------------------- config
    @classmethod
    def config(cls) -> dict[str, Any]:
        return load_config(cls.config_name)

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Every hyperparameter at its default: the ``__init__`` signature, their one home."""
        return {name: getattr(cls(), name) for name in cls._get_param_names()}

    # ------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        """scikit-learn's declarative check of every hyperparameter, then `_check_combinations`."""
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False), caller_name=type(self).__name__
        )
        self._check_combinations()

    def _check_combinations(self) -> None:
        """Constraints between hyperparameters (none by default); ValueError naming them."""

    # ------------------------------------------------------------- interface
    def fit(
        self,
        brain: Brain,
        train_regions: np.ndarray,
        val_regions: np.ndarray | None = None,
    ) -> ConnectivityModel:
        """Fit on all unordered pairs of ``train_regions``.

        ``val_regions`` (disjoint from training regions) may be used by iterative
        models for early stopping on the pairs within them; never for fitting.
        Hyperparameters are validated first (`_validate_params`).
        """
        self._validate_params()
        train_regions = np.unique(check_regions(brain, train_regions, "train_regions"))
        if len(train_regions) < 2:
            raise ValueError("need at least 2 training regions")
        if val_regions is not None:
            val_regions = np.unique(check_regions(brain, val_regions, "val_regions"))
            if np.intersect1d(train_regions, val_regions).size:
                raise ValueError("training and validation regions overlap")
        # the gene order predictions must be given in; models that reorder genes overwrite it
        self.genes_ = tuple(brain.genes)
        self._fit(brain, train_regions, val_regions)
        return self

    def predict(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Predicted connectivity for pairs ``(i[k], j[k])``; symmetric in (i, j)."""
        i = check_regions(brain, i, "i")
        j = check_regions(brain, j, "j")
        if i.shape != j.shape:
            raise ValueError("i and j must have the same shape")
        if self._reads_expression() and hasattr(self, "genes_"):
            brain = self._align_genes(brain)
        return np.asarray(self._predict_pairs(brain, i, j), dtype=np.float64)

    def _align_genes(self, brain: Brain) -> Brain:
        """``brain`` with its expression columns in the order the model was fitted on.

        Expression is read by column, so a brain whose genes come in another order (or a
        subset) would otherwise give silently wrong predictions.
        """
        if tuple(brain.genes) == tuple(self.genes_):
            return brain
        missing = sorted(set(self.genes_) - set(brain.genes))
        if missing:
            raise ValueError(
                f"brain {brain.name!r}: genes (brain.genes) lack {len(missing)} of the model's "
                f"{len(self.genes_)} genes, e.g. {missing[:5]}; expected the genes the model was fitted on"
            )
        return brain.select_genes(list(self.genes_))

    def predict_matrix(self, brain: Brain, regions: np.ndarray | None = None) -> np.ndarray:
        """Full (k, k) predicted connectome of ``regions`` (all when None); diagonal NaN."""
        regions = np.arange(brain.n_regions) if regions is None else np.asarray(regions)
        k = len(regions)
        a, b = np.triu_indices(k, k=1)
        out = np.full((k, k), np.nan)
        vals = self.predict(brain, regions[a], regions[b])
        out[a, b] = vals
        out[b, a] = vals
        return out

    def refit_uses_selection_fit(self) -> bool:
        """Whether a refit of this configuration takes anything from its selection fit.

        ``True`` unless a model knows otherwise (e.g. `refit_params` is empty whatever the
        fit); tuning skips the inner fit of a lone candidate that does not, since the refit
        would be the same without it.
        """
        return True

    def refit_params(self) -> dict[str, Any]:
        """Hyperparameters to carry into a refit on all training regions.

        After hyperparameter selection the chosen configuration is refitted without
        validation regions, so early stopping cannot act; iterative models return the
        epoch count their early stopping chose (e.g. ``{"epochs": best_epoch_ + 1}``).
        """
        return {}

    # ----------------------------------------------------- for subclasses
    def _reads_expression(self) -> bool:
        """Whether this instance reads ``brain.X`` (then `predict` matches genes by name).

        An instance-level fact (the MLP reads expression or not depending on
        ``use_expression``). What a registry variant reads is stated once, in
        `spatiomol.models.registry.ModelSpec`; a test checks that the two agree.
        """
        return True

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        raise NotImplementedError

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def training_pairs(brain: Brain, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(i, j, y)`` for every unordered pair within ``regions``; targets must be finite."""
        i, j = pairs_within(regions)
        y = brain.targets(i, j)
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            k = bad[0]
            raise ValueError(
                f"brain {brain.name!r}: connectome (Y) has {bad.size} non-finite training target(s), e.g. "
                f"between {brain.labels[i[k]]!r} and {brain.labels[j[k]]!r}; expected finite values"
            )
        return i, j, y


def check_regions(brain: Brain, regions: np.ndarray, field: str) -> np.ndarray:
    """``regions`` as int64 indices into ``brain.regions``, or a ValueError naming ``field``.

    Negative indices would silently wrap around and fractional ones truncate, so both
    are refused, as is anything outside ``0 .. n_regions - 1``.
    """
    arr = np.asarray(regions)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.array_equal(arr, np.round(arr))):
        raise ValueError(f"{field}: region indices must be integers, got {arr.dtype} values such as {arr.flat[0]}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= brain.n_regions):
        raise ValueError(
            f"{field}: region indices must lie in 0..{brain.n_regions - 1} for brain {brain.name!r}, "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr


def check_expression(brain: Brain, regions: np.ndarray, role: str) -> np.ndarray:
    """Expression rows of ``regions``; a clear error if any is missing (NaN).

    Returns
    -------
    (len(regions), n_genes) float64 array
    """
    X = np.asarray(brain.X[regions], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        labels = [str(brain.labels[regions[k]]) for k in bad[:5]]
        raise ValueError(
            f"brain {brain.name!r}: field X has missing (NaN/inf) expression for {bad.size} "
            f"{role} region(s), e.g. {labels}; expected complete rows "
            "(impute first, see spatiomol.data.impute)"
        )
    return X


def training_target_matrix(brain: Brain, train: np.ndarray) -> tuple[np.ndarray, float]:
    """Training block of ``Y`` with the diagonal filled by the mean off-diagonal target.

    Returns
    -------
    Y_train : (n_train, n_train) float64 array, symmetric
    mean_offdiag : float
        Mean target over the training edges (target units).
    """
    Y = np.asarray(brain.Y[np.ix_(train, train)], dtype=np.float64)
    iu = np.triu_indices(len(train), k=1)
    if not np.isfinite(Y[iu]).all():
        raise ValueError(
            f"brain {brain.name!r}: field Y has non-finite values among the training edges; "
            "expected finite connectivity values"
        )
    Y = 0.5 * (Y + Y.T)
    mean_offdiag = float(Y[iu].mean())
    np.fill_diagonal(Y, mean_offdiag)
    return Y, mean_offdiag
