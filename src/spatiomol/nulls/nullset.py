"""`NullSet`: the selected nulls of one brain, applied with `NullSet.apply`, stored as npz.

A null gives every region ``i`` either the expression of region ``permutations[k, i]``
(a permutation, the cheap special case) or, for the regions in ``replaced_regions``, a
new expression row ``expression[k]``. Spins and shuffles only permute; Moran and
variogram nulls replace every row; spins with ``subcortex="moran"`` permute the cortex and
replace the non-cortical rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.data.brain import Brain

#: 1: permutations only; 2: adds replaced_regions, expression and worst_expression
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

_REQUIRED = (
    "permutations",
    "errors",
    "parameter_names",
    "parameter_values",
    "costs",
    "true_parameter_names",
    "true_parameter_values",
    "curves",
    "true_curve",
    "bin_centres",
    "all_parameters",
    "all_errors",
    "worst_permutation",
    "worst_curve",
    "metadata_json",
)
_VERSION_2 = ("replaced_regions", "expression", "worst_expression")


@dataclass(frozen=True, eq=False)
class NullSet:
    """The selected nulls of one brain and everything needed to reuse them.

    Attributes
    ----------
    permutations : (top, r) int64 array
        Null ``k`` gives region ``i`` the expression of region ``permutations[k, i]``
        (the identity at ``replaced_regions``). Best (lowest error) first when selected.
    errors : (top,) float array
        Algorithm 1 error ``e_i`` (sum of absolute z-score differences), dimensionless.
    parameters : pandas.DataFrame, top rows
        ``SA_lambda`` (mm), ``SA_inf`` (r), ``a1`` (r/mm³), ``a2`` (r/mm²), ``a3`` (r/mm),
        ``a4`` (r), ``cost`` (unit-sphere chord length; mm for ``"random"``; 0 for
        families without one), plus ``draw`` (index of the null among the ``n`` drawn),
        ``error`` and ``moved_fraction``.
    costs : (top,) float array
        The ``cost`` column.
    true_parameters : dict
        The same quantities for the true brain (``cost`` = 0).
    curves : (top, n_bins) float array
        Binned mean CGE of each kept null (Pearson r).
    true_curve : (n_bins,) float array
    bin_centres : (n_bins,) float array, mm
        Centres of the non-empty distance bins.
    all_parameters : (n_scored, 7) float array
        Quantities of every scored null (all ``n`` draws, except for unselected families
        that replace rows, where only the kept ones are scored), columns as `QUANTITIES`.
    all_errors : (n_scored,) float array
    worst_permutation : (r,) int64 array
        The highest-error scored null (for figures).
    worst_curve : (n_bins,) float array
    metadata : dict
        ``dataset``, ``n``, ``top``, ``seed``, ``method``, ``cge_match``, ``subcortex``,
        ``bin_mm``, ``pca_variance``, ``pca_components``, ``labels`` (region order),
        ``n_genes``, ``genes`` (column order of ``expression``), ``expression_sha256``,
        ``region_groups``, ``constant_quantities``, ``n_unique``, ``n_scored``,
        ``format_version``.
    replaced_regions : (q,) int64 array
        Regions whose expression rows the nulls replace (empty for permutation nulls).
    expression : (top, q, g) float array or None
        The new rows of each kept null (None when ``q = 0``).
    worst_expression : (q, g) float array or None
    """

    permutations: np.ndarray
    errors: np.ndarray
    parameters: pd.DataFrame
    costs: np.ndarray
    true_parameters: dict[str, float]
    curves: np.ndarray
    true_curve: np.ndarray
    bin_centres: np.ndarray
    all_parameters: np.ndarray
    all_errors: np.ndarray
    worst_permutation: np.ndarray
    worst_curve: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    replaced_regions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    expression: np.ndarray | None = None
    worst_expression: np.ndarray | None = None

    # ----------------------------------------------------------------- use
    @property
    def top(self) -> int:
        return self.permutations.shape[0]

    @property
    def is_permutation(self) -> bool:
        """True when every null only permutes rows of ``X`` (no replaced rows)."""
        return self.replaced_regions.size == 0

    def check_brain(self, brain: Brain) -> None:
        """Raise ValueError unless ``brain`` has the regions (in order) these nulls were made for."""
        labels = [str(x) for x in brain.labels]
        if labels != list(self.metadata.get("labels", [])):
            raise ValueError(
                f"null set for dataset {self.metadata.get('dataset')!r} was generated for a different "
                f"region list than brain {brain.name!r} ({len(self.metadata.get('labels', []))} vs "
                f"{len(labels)} regions, or a different order)"
            )
        self._gene_columns(brain)

    def _gene_columns(self, brain: Brain) -> np.ndarray | None:
        """Columns of ``expression`` for ``brain``'s genes (None for permutation nulls).

        A brain with a subset of the genes (e.g. the genes shared with a transfer target)
        takes those columns: every family's null of one gene depends on that gene alone.
        """
        if self.expression is None:
            return None
        genes = list(self.metadata.get("genes") or [])
        if list(brain.genes) == genes:
            return np.arange(len(genes))
        index = {g: k for k, g in enumerate(genes)}
        missing = [g for g in brain.genes if g not in index]
        if missing or not genes:
            raise ValueError(
                f"null set for dataset {self.metadata.get('dataset')!r} holds expression of "
                f"{self.expression.shape[2]} genes; brain {brain.name!r} has {brain.n_genes} genes, "
                f"{len(missing)} of them not among those (e.g. {missing[:3]}); expected the same genes or a subset"
            )
        return np.array([index[g] for g in brain.genes], dtype=np.int64)

    def null_expression(self, X: np.ndarray, k: int, columns: np.ndarray | None = None) -> np.ndarray:
        """(r, g) expression of null ``k`` built from the true expression ``X``.

        ``columns`` picks the genes of ``expression`` that ``X``'s columns are (default all).
        """
        out = np.asarray(X)[self.permutations[k]]
        if self.expression is not None:
            rows = self.expression[k] if columns is None else self.expression[k][:, columns]
            out[self.replaced_regions] = rows
        return out

    def worst_null_expression(self, X: np.ndarray) -> np.ndarray:
        """(r, g) expression of the highest-error scored null."""
        out = np.asarray(X)[self.worst_permutation]
        if self.worst_expression is not None:
            out[self.replaced_regions] = self.worst_expression
        return out

    def apply(self, brain: Brain, k: int = 0) -> Brain:
        """The ``k``-th null brain of ``brain``: its expression replaced, the rest unchanged.

        The null is recorded in ``provenance["expression_permutation"]`` (permutation
        nulls, as `Brain.permute_expression` does) or ``provenance["expression_null"]``.
        """
        self.check_brain(brain)
        if not 0 <= k < self.top:
            raise ValueError(f"null index k={k} out of range: this set holds {self.top} nulls")
        note = (
            f"{self.metadata.get('method')} null {k} of {self.top} (draw {int(self.parameters['draw'].iloc[k])} "
            f"of n={self.metadata.get('n')}, seed={self.metadata.get('seed')}, error={self.errors[k]:.3f})"
        )
        if self.is_permutation:
            return brain.permute_expression(self.permutations[k], note=note)
        X = self.null_expression(brain.X, k, self._gene_columns(brain))
        return brain.replace(X=X).with_note("expression_null", note)

    # ------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (npz, no pickles) atomically: a temporary file, then ``os.replace``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        q = self.replaced_regions.size
        g = 0 if self.expression is None else self.expression.shape[2]
        arrays = {
            "permutations": self.permutations.astype(np.int64),
            "errors": self.errors,
            "parameter_names": np.array(list(self.parameters.columns), dtype=str),
            "parameter_values": self.parameters.to_numpy(dtype=np.float64),
            "costs": self.costs,
            "true_parameter_names": np.array(list(self.true_parameters), dtype=str),
            "true_parameter_values": np.array(list(self.true_parameters.values()), dtype=np.float64),
            "curves": self.curves,
            "true_curve": self.true_curve,
            "bin_centres": self.bin_centres,
            "all_parameters": self.all_parameters,
            "all_errors": self.all_errors,
            "worst_permutation": self.worst_permutation.astype(np.int64),
            "worst_curve": self.worst_curve,
            "metadata_json": np.array(json.dumps(self.metadata)),
            "replaced_regions": self.replaced_regions.astype(np.int64),
            "expression": np.zeros((self.top, q, g)) if self.expression is None else self.expression,
            "worst_expression": np.zeros((q, g)) if self.worst_expression is None else self.worst_expression,
        }
        with atomic_path(path, suffix=".tmp.npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NullSet:
        """Read a file written by `save` (format 1 or 2); ValueError naming the file and field if it is not one."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"null set file {path} does not exist")
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception as err:  # zipfile / format errors
            raise ValueError(f"{path}: not a spatiomol null-set npz file ({err})") from err
        with archive:
            missing = [k for k in _REQUIRED if k not in archive.files]
            if missing:
                raise ValueError(f"{path}: missing fields {missing}; expected a file written by NullSet.save")
            data = {k: archive[k] for k in _REQUIRED + _VERSION_2 if k in archive.files}
        metadata = json.loads(str(data["metadata_json"]))
        version = metadata.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"{path}: field 'metadata.format_version' is {version!r}, expected one of {list(READABLE_VERSIONS)}"
            )
        if version >= 2:
            absent = [k for k in _VERSION_2 if k not in data]
            if absent:
                raise ValueError(f"{path}: missing fields {absent} of format version {version}")
        perms = data["permutations"]
        r = len(metadata.get("labels", []))
        if perms.ndim != 2 or perms.shape[1] != r:
            raise ValueError(f"{path}: field 'permutations' has shape {perms.shape}, expected (top, {r})")
        if not all(np.array_equal(np.sort(p), np.arange(r)) for p in perms):
            raise ValueError(f"{path}: field 'permutations' holds a row that is not a bijection of {r} regions")
        replaced = data.get("replaced_regions", np.zeros(0, dtype=np.int64)).astype(np.int64)
        expression = worst_expression = None
        if replaced.size:
            if replaced.min() < 0 or replaced.max() >= r or np.unique(replaced).size != replaced.size:
                raise ValueError(f"{path}: field 'replaced_regions' must hold distinct region indices below {r}")
            expression = data["expression"]
            if expression.ndim != 3 or expression.shape[:2] != (perms.shape[0], replaced.size):
                raise ValueError(
                    f"{path}: field 'expression' has shape {expression.shape}, "
                    f"expected ({perms.shape[0]}, {replaced.size}, genes)"
                )
            worst_expression = data["worst_expression"]
        parameters = pd.DataFrame(data["parameter_values"], columns=[str(c) for c in data["parameter_names"]])
        parameters["draw"] = parameters["draw"].astype(np.int64)
        true_parameters = {
            str(k): float(v) for k, v in zip(data["true_parameter_names"], data["true_parameter_values"])
        }
        return cls(
            permutations=perms.astype(np.int64),
            errors=data["errors"],
            parameters=parameters,
            costs=data["costs"],
            true_parameters=true_parameters,
            curves=data["curves"],
            true_curve=data["true_curve"],
            bin_centres=data["bin_centres"],
            all_parameters=data["all_parameters"],
            all_errors=data["all_errors"],
            worst_permutation=data["worst_permutation"].astype(np.int64),
            worst_curve=data["worst_curve"],
            metadata=metadata,
            replaced_regions=replaced,
            expression=expression,
            worst_expression=worst_expression,
        )
