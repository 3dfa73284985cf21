"""Bundled real datasets: fetch by hash, assemble regions, load as a `Brain`.

Datasets (files and hashes in ``registry.yaml``)
------------------------------------------------
``hcp-s100`` / ``hcp-s400``
    Schaefer-100 / -400 cortical parcels (7-network order) + 14 ENIGMA subcortical
    structures (114 / 414 regions); AHBA expression processed by abagen, genes with
    differential stability ≥ 0.6 (810 / 282 genes); HCP group-average resting-state
    functional connectivity. The files hold Fisher-z values with a zero diagonal; by
    default ``Y = tanh(z)`` (Pearson r) with the diagonal set to 1 on the r scale
    (``fc_scale="fisher_z"`` keeps the file's values, diagonal 0). Schaefer-400 has 49
    regions without an AHBA sample (filled by mirror-interpolate by default).
``hcp-s100-sc`` / ``hcp-s400-sc``
    The same regions and expression with HCP group structural connectivity as target:
    log streamline density as in the file (``target_scale="raw"``; 0 = no streamlines,
    negative values = density below 1; diagonal 0).

Regions
-------
Row order is the dataset's labels file (cortex LH then RH in 7-network order, then
``Laccumb, Lamyg, Lcaud, Lhippo, Lpal, Lput, Lthal, Raccumb, …, Rthal``).

- Cortical centroids, hemisphere and network come from the atlas table (``4S156`` for
  Schaefer-100, ``4S456`` for Schaefer-400), matched on ``label_7network``.
- Subcortical centroids are *derived*: the 14 ENIGMA structures are coarser than the
  CIT168 / thalamic / HCP parcels of the ``4S456`` table, so each structure's centroid
  is the unweighted mean of the centroids of its sub-parcels (the table has no parcel
  volumes, so a volume-weighted mean is not possible); see `SUBCORTICAL_PARCELS`.
  Both resolutions use the same 14 subcortical centroids.
- ``structure`` is ``cortex`` / ``subcortex``; ``network`` is the 7-network name (Vis,
  SomMot, DorsAttn, SalVentAttn, Limbic, Cont, Default) or ``Subcortex``.

Files are fetched and hash-checked by `spatiomol.data.bundled_files`.
"""

from __future__ import annotations

from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain
from spatiomol.data.bundled_files import dataset_entry, dataset_files, fetch, mirror_dir, registry
from spatiomol.data.genome import order_genes
from spatiomol.data.impute import fill_missing, measured_and_missing
from spatiomol.data.readers import read_connectome, read_expression

#: ENIGMA structure (label without the L/R prefix) → parcels of the 4S456 table
#: (label without the ``LH-``/``LH_`` prefix) whose centroids are averaged, unweighted.
SUBCORTICAL_PARCELS: dict[str, tuple[str, ...]] = {
    "accumb": ("NAC",),
    "amyg": ("Amygdala",),
    "caud": ("Ca",),
    "hippo": ("Hippocampus",),
    "pal": ("GPe", "GPi"),
    "put": ("Pu",),
    "thal": (
        "Pulvinar",
        "Anterior",
        "Medio_Dorsal",
        "Ventral_Latero_Dorsal",
        "Central_Lateral-Lateral_Posterior-Medial_Pulvinar",
        "Ventral_Anterior",
        "Ventral_Latero_Ventral",
    ),
}
SUBCORTICAL_METHOD = (
    "unweighted mean of the MNI centroids of the finer 4S456 sub-parcels (parcel volumes are not "
    "in the table): accumbens = NAC, amygdala = Amygdala, caudate = Ca, hippocampus = Hippocampus, "
    "pallidum = GPe + GPi, putamen = Pu, thalamus = 7 ThalamusHCP nuclei"
)
FC_SCALES = ("r", "fisher_z")


# --------------------------------------------------------------------------- regions
def read_labels(path: str | PathLike) -> list[str]:
    """Region labels of an ENIGMA ``*Labels_*.csv`` file (one comma-separated line)."""
    text = Path(path).read_text().strip()
    labels = [x.strip() for x in text.replace("\n", ",").split(",") if x.strip()]
    if not labels:
        raise ValueError(f"labels file {path}: no labels found; expected one comma-separated line")
    return labels


def _parcel_name(label: str) -> tuple[str, str]:
    """``'LH-Pu'`` / ``'LH_Hippocampus'`` → ``('L', 'Pu')`` / ``('L', 'Hippocampus')``."""
    return label[0], label[3:]


def subcortical_centroids(table: pd.DataFrame, source: str = "") -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Centroids of the 14 ENIGMA subcortical structures from finer atlas parcels.

    Parameters
    ----------
    table : DataFrame
        An atlas table (``4S456``) with columns ``label, hemisphere, structure, mni_x,
        mni_y, mni_z``.
    source : str
        File name for error messages.

    Returns
    -------
    centroids : DataFrame indexed by ENIGMA label (``Laccumb`` … ``Rthal``), columns
        ``hemisphere, x, y, z`` (mm), the unweighted mean of the sub-parcel centroids.
    parcels : dict ENIGMA label → atlas labels averaged.
    """
    sub = table[table["structure"] == "subcortex"]
    by_name = {}
    for label, _hemi, x, y, z in zip(sub["label"], sub["hemisphere"], sub["mni_x"], sub["mni_y"], sub["mni_z"]):
        if str(label).startswith(("LH", "RH")):
            by_name[_parcel_name(str(label))] = (str(label), float(x), float(y), float(z))
    rows, parcels = {}, {}
    for hemi in ("L", "R"):
        for structure, names in SUBCORTICAL_PARCELS.items():
            absent = [n for n in names if (hemi, n) not in by_name]
            if absent:
                raise ValueError(
                    f"atlas table {source}: subcortical parcels {[f'{hemi}H-{n}' for n in absent]} "
                    f"not found; needed for the centroid of {hemi}{structure}"
                )
            found = [by_name[(hemi, n)] for n in names]
            xyz = np.mean([f[1:] for f in found], axis=0)
            rows[f"{hemi}{structure}"] = {"hemisphere": hemi, "x": xyz[0], "y": xyz[1], "z": xyz[2]}
            parcels[f"{hemi}{structure}"] = [f[0] for f in found]
    return pd.DataFrame.from_dict(rows, orient="index"), parcels


def build_regions(
    labels: list[str],
    atlas: pd.DataFrame,
    subcortex_atlas: pd.DataFrame,
    atlas_name: str = "",
    subcortex_name: str = "",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Regions table for ENIGMA labels: Schaefer parcels from ``atlas``, subcortex derived.

    Returns
    -------
    regions : DataFrame with ``label, hemisphere, structure, network, x, y, z`` (mm).
    report : dict describing where the coordinates came from (for provenance).
    """
    cortex = atlas[atlas["structure"] == "cortex"].set_index("label_7network")
    centroids, parcels = subcortical_centroids(subcortex_atlas, subcortex_name)
    rows, unknown = [], []
    for label in labels:
        if label in cortex.index:
            r = cortex.loc[label]
            rows.append(
                (
                    label,
                    r["hemisphere"],
                    "cortex",
                    r["network_label"],
                    float(r["mni_x"]),
                    float(r["mni_y"]),
                    float(r["mni_z"]),
                )
            )
        elif label in centroids.index:
            r = centroids.loc[label]
            rows.append((label, r["hemisphere"], "subcortex", "Subcortex", r["x"], r["y"], r["z"]))
        else:
            unknown.append(label)
    if unknown:
        raise ValueError(
            f"atlas table {atlas_name}: labels {unknown[:5]} ({len(unknown)} in all) match neither "
            "a cortical 'label_7network' nor an ENIGMA subcortical structure"
        )
    regions = pd.DataFrame(rows, columns=["label", "hemisphere", "structure", "network", "x", "y", "z"])
    report = {
        "cortex": f"MNI centroids (mm) of {atlas_name}, matched on label_7network",
        "subcortex": f"derived from {subcortex_name}: {SUBCORTICAL_METHOD}",
        "subcortical_parcels": {k: parcels[k] for k in labels if k in parcels},
    }
    return regions, report


# --------------------------------------------------------------------------- loading
@lru_cache(maxsize=8)
def _raw_dataset(name: str, mirror: str | None, fc_scale: str) -> Brain:
    entry = dataset_entry(name)
    paths = fetch(name, mirror=mirror)
    keys = dataset_files(name)
    labels = read_labels(paths["labels"])
    regions, coord_report = build_regions(
        labels,
        pd.read_csv(paths["atlas"]),
        pd.read_csv(paths["subcortex_atlas"]),
        atlas_name=keys["atlas"],
        subcortex_name=keys["subcortex_atlas"],
    )
    expr_labels, genes, X = read_expression(paths["expression"])
    if expr_labels != labels:
        raise ValueError(f"expression file {keys['expression']}: region labels differ from {keys['labels']}")
    _, Y = read_connectome(paths["connectome"])
    if Y.shape != (len(labels), len(labels)):
        raise ValueError(f"connectome file {keys['connectome']}: shape {Y.shape}, expected {(len(labels),) * 2}")
    kind = entry["target_kind"]
    if kind == "fc" and fc_scale == "r":
        Y = np.tanh(Y)
        np.fill_diagonal(Y, 1.0)
        scale, transform = "r", "Pearson r = tanh(Fisher-z from file); diagonal set to 1"
    elif kind == "fc":
        scale, transform = "fisher_z", "Fisher-z as in the file; diagonal 0 (ignored downstream)"
    else:
        scale, transform = "raw", "log streamline density as in the file (0 = no streamlines); diagonal 0"
    files = registry()["files"]
    provenance = {
        "source": f"bundled dataset {name}",
        "description": entry["description"],
        "files": {
            role: {"key": key, "path": str(paths[role]), "sha256": files[key]["sha256"], "url": files[key]["url"]}
            for role, key in keys.items()
        },
        "coordinates": coord_report,
        "target_transform": transform,
    }
    return Brain(
        name=name,
        regions=regions,
        X=X,
        genes=tuple(genes),
        Y=Y,
        target_kind=kind,
        target_scale=scale,
        subjects=None,
        provenance=provenance,
    )


def load_dataset(
    name: str,
    *,
    missing: str | None = None,
    gene_order: str = "as_given",
    seed: int = 0,
    mirror: str | PathLike | None = None,
    fc_scale: str = "r",
    n_neighbors: int = 10,
) -> Brain:
    """Load a bundled dataset as a `Brain`.

    Parameters
    ----------
    name : str
        One of `list_datasets` (``hcp-s100``, ``hcp-s400``, ``hcp-s100-sc``, ``hcp-s400-sc``).
    missing : {None, "mirror-interpolate", "drop", "keep"}
        Remedy for regions without expression; None uses the dataset's default,
        ``"mirror-interpolate"`` (a no-op where every region has data).
    gene_order : {"as_given", "tss", "random", "mean_expression"}
        See `spatiomol.data.genome`.
    seed : int
        Seed for ``gene_order="random"``.
    mirror : path-like, optional
        Mirror folder of the data files (default ``$SPATIOMOL_DATA_MIRROR``).
    fc_scale : {"r", "fisher_z"}
        Scale of functional targets (ignored for ``sc``).
    n_neighbors : int
        Neighbours of the mirror-interpolate fallback.

    Returns
    -------
    Brain
        ``provenance`` holds files (key, path, SHA-256, URL), coordinate derivation,
        target transform, ``expression_missing`` (labels without AHBA samples),
        ``imputation`` and ``gene_order`` reports.
    """
    if fc_scale not in FC_SCALES:
        raise ValueError(f"fc_scale must be one of {FC_SCALES}, got {fc_scale!r}")
    folder = mirror_dir(mirror)
    cached = _raw_dataset(name, None if folder is None else str(folder.resolve()), fc_scale)
    # fresh arrays, so that a caller writing into them cannot alter the in-process cache
    brain = cached.replace(
        regions=cached.regions.copy(), X=cached.X.copy(), Y=cached.Y.copy(), provenance=dict(cached.provenance)
    )
    _, absent = measured_and_missing(brain)
    brain = brain.with_note("expression_missing", [str(brain.labels[k]) for k in absent])
    brain = fill_missing(brain, "mirror-interpolate" if missing is None else missing, n_neighbors=n_neighbors)
    return order_genes(brain, gene_order, seed=seed, mirror=folder)


def describe(brain: Brain) -> dict[str, Any]:
    """Summary for printing: `Brain.summary` plus missing expression, imputation and coordinates."""
    info = brain.summary()
    prov = brain.provenance
    imputation = prov.get("imputation", {})
    info["expression_missing_in_source"] = prov.get("expression_missing", info["missing_expression_regions"])
    info["imputation"] = {k: v for k, v in imputation.items() if k != "regions"}
    info["filled_regions"] = [(r["label"], r["method"], r["sources"]) for r in imputation.get("regions", [])]
    info["coordinates"] = prov.get("coordinates")
    info["target_transform"] = prov.get("target_transform")
    return info
