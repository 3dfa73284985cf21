"""The `Brain`: one object carrying everything a connectivity experiment needs.

Every stage downstream (splits, models, metrics, nulls, runner) takes a `Brain`.
A `Brain` is treated as immutable: imputing, reordering genes, subsetting regions or
applying a null permutation return a new `Brain`.

Conventions
-----------
- Regions are integer indices ``0..n_regions-1`` into ``brain.regions``.
- An edge is an unordered pair ``(i, j)`` with ``i < j``; the diagonal is never used.
- Distances are Euclidean in MNI space, in mm.
- ``Y`` is on the scale named by ``target_scale`` (``"r"`` for Pearson r, the default for
  functional connectivity; ``"fisher_z"``; ``"raw"`` for e.g. log streamline density).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

HEMISPHERES = ("L", "R", "B")  # B: bilateral / midline structure (e.g. vermis, brainstem)
STRUCTURES = ("cortex", "subcortex", "cerebellum")
TARGET_KINDS = ("fc", "sc")
TARGET_SCALES = ("r", "fisher_z", "raw")
REGION_COLUMNS = ("label", "hemisphere", "structure", "network", "x", "y", "z")
#: |r| above which an edge is "strong" (Pearson r of the group connectome): the threshold
#: of the edge-strength strata in evaluation and of the augmentation curriculum in models.
STRONG_EDGE_R = 0.3


def pairs_within(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs of a set of regions.

    Parameters
    ----------
    regions : (k,) int array
        Region indices (need not be sorted). Duplicates are dropped (``np.unique``), so
        ``k`` is the number of distinct regions and no pair ``(r, r)`` arises.

    Returns
    -------
    i, j : (k*(k-1)/2,) int arrays
        Region indices of every unordered pair of the distinct regions, with ``i < j``
        elementwise, in ``np.triu_indices`` order of the sorted regions.
    """
    regions = np.unique(np.asarray(regions, dtype=np.int64))
    a, b = np.triu_indices(len(regions), k=1)
    return regions[a], regions[b]


@dataclass(frozen=True, eq=False)
class Brain:
    """Regions, expression, connectome and provenance of one dataset.

    Attributes
    ----------
    name : str
        Dataset name (bundled name such as ``"hcp-s100"`` or a user-given name).
    regions : pandas.DataFrame, n_regions rows
        Columns ``label`` (unique str), ``hemisphere`` (L/R/B), ``structure``
        (cortex/subcortex/cerebellum), ``network`` (7-network name, ``Subcortex`` or
        ``Cerebellum``; free text for user atlases), ``x, y, z`` (MNI centroid, mm).
    X : (n_regions, n_genes) float64 array
        Regional gene expression. Rows are NaN only for regions with no samples
        before imputation (see `spatiomol.data.impute`).
    genes : tuple of str, n_genes
        Gene symbols, in the column order of ``X``.
    Y : (n_regions, n_regions) float64 array
        Symmetric group connectome; the diagonal is ignored downstream.
    target_kind : {"fc", "sc"}
    target_scale : {"r", "fisher_z", "raw"}
    subjects : (n_subjects, n_regions, n_regions) float array or None
        Optional stack of individual connectomes on the same scale as ``Y``.
    structural : (n_regions, n_regions) float array or None
        Optional structural connectivity as an *input* modality (issue 27): region
        features are derived from it (`spatiomol.data.structural`), never a target. The
        bundled functional datasets carry the HCP group SC (log streamline density).
    provenance : dict
        Source files and their SHA-256, and reports of every transformation applied
        (coordinate derivation, imputation, gene order, nulls).
    """

    name: str
    regions: pd.DataFrame
    X: np.ndarray
    genes: tuple[str, ...]
    Y: np.ndarray
    target_kind: str = "fc"
    target_scale: str = "r"
    subjects: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    structural: np.ndarray | None = None

    def __post_init__(self) -> None:
        missing = [c for c in REGION_COLUMNS if c not in self.regions.columns]
        if missing:
            raise ValueError(f"Brain {self.name!r}: regions table lacks columns {missing}")
        n = len(self.regions)
        if self.X.shape[0] != n:
            raise ValueError(f"Brain {self.name!r}: X has {self.X.shape[0]} rows, regions has {n}")
        if self.X.shape[1] != len(self.genes):
            raise ValueError(f"Brain {self.name!r}: X has {self.X.shape[1]} columns, genes has {len(self.genes)}")
        if self.Y.shape != (n, n):
            raise ValueError(f"Brain {self.name!r}: Y has shape {self.Y.shape}, expected {(n, n)}")
        if self.subjects is not None and self.subjects.shape[1:] != (n, n):
            raise ValueError(
                f"Brain {self.name!r}: subject stack has shape {self.subjects.shape}, expected (n_subjects, {n}, {n})"
            )
        if self.structural is not None and self.structural.shape != (n, n):
            raise ValueError(
                f"Brain {self.name!r}: structural connectivity has shape {self.structural.shape}, expected {(n, n)}"
            )
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"Brain {self.name!r}: target_kind must be one of {TARGET_KINDS}")
        if self.target_scale not in TARGET_SCALES:
            raise ValueError(f"Brain {self.name!r}: target_scale must be one of {TARGET_SCALES}")

    # ------------------------------------------------------------------ shapes
    @property
    def n_regions(self) -> int:
        return len(self.regions)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def labels(self) -> np.ndarray:
        return self.regions["label"].to_numpy()

    @property
    def hemisphere(self) -> np.ndarray:
        return self.regions["hemisphere"].to_numpy()

    @property
    def structure(self) -> np.ndarray:
        return self.regions["structure"].to_numpy()

    @property
    def network(self) -> np.ndarray:
        return self.regions["network"].to_numpy()

    @cached_property
    def coords(self) -> np.ndarray:
        """(n_regions, 3) MNI centroids in mm."""
        return self.regions[["x", "y", "z"]].to_numpy(dtype=np.float64)

    @cached_property
    def distances(self) -> np.ndarray:
        """(n_regions, n_regions) Euclidean distances between centroids, mm."""
        c = self.coords
        return np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))

    @property
    def missing_expression(self) -> np.ndarray:
        """Indices of regions whose expression row is entirely NaN."""
        return np.flatnonzero(np.isnan(self.X).all(axis=1))

    # ----------------------------------------------------------------- edges
    def pairs(self, regions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unordered pairs (i < j) within ``regions`` (all regions when None)."""
        if regions is None:
            regions = np.arange(self.n_regions)
        return pairs_within(regions)

    def targets(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Group connectome values ``Y[i, j]``."""
        return self.Y[np.asarray(i), np.asarray(j)]

    # ------------------------------------------------------- new brains from old
    def replace(self, **changes: Any) -> Brain:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_note(self, key: str, value: Any) -> Brain:
        """A copy whose provenance records ``key: value``."""
        prov = dict(self.provenance)
        prov[key] = value
        return self.replace(provenance=prov)

    def permute_expression(self, permutation: np.ndarray, note: str | None = None) -> Brain:
        """A null brain: region ``i`` receives the expression of region ``permutation[i]``.

        Coordinates, labels and targets stay put; only rows of ``X`` move.
        """
        perm = np.asarray(permutation, dtype=np.int64)
        if perm.shape != (self.n_regions,) or not np.array_equal(np.sort(perm), np.arange(self.n_regions)):
            raise ValueError(f"permutation must be a bijection of {self.n_regions} regions")
        out = self.replace(X=self.X[perm])
        return out.with_note("expression_permutation", note or "custom permutation")

    def select_genes(self, genes: list[str] | tuple[str, ...] | np.ndarray) -> Brain:
        """A copy with expression columns in the given gene order (a subset is allowed)."""
        index = {g: k for k, g in enumerate(self.genes)}
        unknown = [g for g in genes if g not in index]
        if unknown:
            raise KeyError(f"genes not in brain {self.name!r}: {unknown[:5]} ({len(unknown)} in all)")
        cols = np.array([index[g] for g in genes], dtype=np.int64)
        return self.replace(X=self.X[:, cols], genes=tuple(genes))

    def subset_regions(self, regions: np.ndarray) -> Brain:
        """A copy restricted to ``regions`` (in the given order), re-indexed from 0."""
        r = np.asarray(regions, dtype=np.int64)
        return self.replace(
            regions=self.regions.iloc[r].reset_index(drop=True),
            X=self.X[r],
            Y=self.Y[np.ix_(r, r)],
            subjects=None if self.subjects is None else self.subjects[:, r][:, :, r],
            structural=None if self.structural is None else self.structural[np.ix_(r, r)],
        )

    # --------------------------------------------------------------- summaries
    def summary(self) -> dict[str, Any]:
        """Plain-data summary (counts, target kind and value range) for printing."""
        iu = np.triu_indices(self.n_regions, k=1)
        y = self.Y[iu]
        return {
            "name": self.name,
            "regions": self.n_regions,
            "genes": self.n_genes,
            "hemispheres": self.regions["hemisphere"].value_counts().to_dict(),
            "structures": self.regions["structure"].value_counts().to_dict(),
            "networks": self.regions["network"].value_counts().to_dict(),
            "missing_expression_regions": [str(self.labels[k]) for k in self.missing_expression],
            "target_kind": self.target_kind,
            "target_scale": self.target_scale,
            "target_range": (float(np.nanmin(y)), float(np.nanmax(y))),
            "target_mean": float(np.nanmean(y)),
            "subjects": None if self.subjects is None else int(self.subjects.shape[0]),
            "structural": self.structural is not None,
        }
