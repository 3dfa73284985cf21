"""What runs read besides their model: brains, splits, nulls, and the folder's record of them.

A dataset string becomes a `Brain` only through `spatiomol.data.sources.resolve_source`
(bundled name, user YAML or ``synthetic:...``; cached per process by content). A `Brain`
object passed as a source (transfer pairs) is used as is.

Per-process caches (splits, nulls) are keyed by content (the source's
`spatiomol.data.sources.source_digest`, or a brain's array hashes), so an edited dataset
file is never served from a cache on a long-lived worker or in a notebook.

`prepare` readies a results folder for a grid: each dataset's fingerprint, region table
(`ResultsStore.write_regions`), nulls (`ensure_nulls`) and splits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spatiomol.data.brain import Brain
from spatiomol.data.sources import resolve_source, source_digest
from spatiomol.evaluation import make_splits, save_splits
from spatiomol.evaluation.splits import HELD_OUT_KINDS, Split, split_layout
from spatiomol.experiments.config import ExperimentConfig, null_family_label, null_run_settings, resolved_nulls
from spatiomol.experiments.grid import RunSpec, random_permutation
from spatiomol.experiments.store import ResultsStore
from spatiomol.hashing import array_digest, expression_sha256, to_jsonable
from spatiomol.models import registry
from spatiomol.nulls import NullSet, generate_nulls

# per-process caches (each joblib / Dask worker keeps its own), keyed by content
_SPLITS: dict[tuple, list[Split]] = {}
_NULLSETS: dict[tuple, NullSet] = {}


# --------------------------------------------------------------------- sources
def source_name(source: str | Brain) -> str:
    """The label of a source in run keys and file names: the string itself, or a brain's name."""
    return source.name if isinstance(source, Brain) else source


def _as_brain(source: str | Brain, gene_order: str) -> Brain:
    """A `Brain` source as is; a string through `resolve_source` (the one way it becomes a brain)."""
    return source if isinstance(source, Brain) else resolve_source(source, gene_order=gene_order)


def _content_key(source: str | Brain, gene_order: str) -> tuple[str, ...]:
    """Cache key of a source's data: its content digest (a brain's array hashes), not its name."""
    if isinstance(source, Brain):
        return ("brain", expression_sha256(source.X), array_digest(source.Y), array_digest(source.coords))
    return ("source", source_digest(source), gene_order)


def shared_gene_brains(source: Brain, target: Brain) -> tuple[Brain, Brain]:
    """Both brains restricted to the genes they share, in the source's order.

    Raises
    ------
    ValueError
        When the brains share no gene.
    """
    target_genes = set(target.genes)
    shared = [g for g in source.genes if g in target_genes]
    if not shared:
        raise ValueError(
            f"transfer {source.name!r} → {target.name!r}: no shared genes "
            f"(source has {source.n_genes}, target {target.n_genes})"
        )
    return source.select_genes(shared), target.select_genes(shared)


def dataset_fingerprint(brain: Brain) -> dict[str, Any]:
    """Hashes of a brain's arrays plus its provenance, for the manifest."""
    return {
        "name": brain.name,
        "n_regions": brain.n_regions,
        "n_genes": brain.n_genes,
        "X_sha256": array_digest(np.nan_to_num(brain.X, nan=-999.0)),
        "Y_sha256": array_digest(brain.Y),
        "coords_sha256": array_digest(brain.coords),
        "structural_sha256": None if brain.structural is None else array_digest(brain.structural),
        "target_kind": brain.target_kind,
        "target_scale": brain.target_scale,
        "provenance": to_jsonable(brain.provenance),
    }


def split_layouts(config: ExperimentConfig) -> dict[tuple[str, str], tuple[int, int]]:
    """(dataset, split type) → (repeats, folds) of every held-out protocol the config names
    (`spatiomol.evaluation.splits.split_layout`); loads only the datasets that need it.

    Raises
    ------
    ValueError
        A dataset whose brain cannot give the protocol (``network`` without network labels),
        naming the dataset.
    """
    kinds = [k for k in dict.fromkeys([*config.splits, *config.variant_splits]) if k in HELD_OUT_KINDS]
    layouts = {}
    for dataset in config.datasets if kinds else []:
        brain = _as_brain(dataset, config.gene_order)
        for kind in kinds:
            try:
                layouts[(dataset, kind)] = split_layout(brain, kind, config.repeats, config.folds)
            except ValueError as err:
                raise ValueError(
                    f"config field 'splits': dataset {dataset!r} cannot be split by {kind!r}: {err}"
                ) from None
    return layouts


def check_structural_inputs(config: ExperimentConfig) -> None:
    """Refuse, before any run, a model that reads structural connectivity on a dataset without it.

    Raises
    ------
    ValueError
        Naming the dataset, the models and how to give the dataset SC.
    """
    readers = [m for m in dict.fromkeys([*config.resolved_models(), *(v["model"] for v in config.variants)])]
    readers = [m for m in readers if registry.spec(m).reads_structural]
    for dataset in config.datasets if readers else []:
        if _as_brain(dataset, config.gene_order).structural is None:
            raise ValueError(
                f"config field 'models': {readers} read structural connectivity, but dataset {dataset!r} has none "
                "(bundled functional datasets carry it; a user dataset names it in its YAML as 'structural: sc.csv')"
            )


def get_split(brain: Brain, spec: RunSpec) -> Split:
    """Split (``spec.repeat``, ``spec.fold``) of ``spec.split_type`` for this brain."""
    settings = spec.settings_dict
    n_folds = int(settings["folds"])
    key = (
        _content_key(spec.dataset, settings["gene_order"]),
        spec.split_type,
        spec.repeat,
        n_folds,
        spec.seed,
    )
    if key not in _SPLITS:
        # repeat r of make_splits depends only on (seed, r): draw r + 1 repeats, keep r
        _SPLITS[key] = make_splits(brain, spec.split_type, n_repeats=spec.repeat + 1, n_folds=n_folds, seed=spec.seed)[
            spec.repeat * n_folds :
        ]
    for split in _SPLITS[key]:
        if split.repeat == spec.repeat and split.fold == spec.fold:
            return split
    raise ValueError(f"{spec.label()}: make_splits returned no split for repeat {spec.repeat}, fold {spec.fold}")


# ----------------------------------------------------------------------- nulls
def nulls_from_settings(brain: Brain, settings: dict[str, Any]) -> NullSet:
    """`spatiomol.nulls.generate_nulls` with one null family's settings (every `NULL_DEFAULTS` key)."""
    settings = resolved_nulls(settings)
    return generate_nulls(
        brain,
        n=int(settings["n"]),
        top=int(settings["top"]),
        seed=int(settings["seed"]),
        method=str(settings["method"]),
        min_moved=float(settings["min_moved"]),
        subcortex=str(settings["subcortex"]),
        cge_match=bool(settings["cge_match"]),
    )


def ensure_nulls(
    store: ResultsStore,
    dataset: str | Brain,
    nulls_settings: dict[str, Any],
    gene_order: str = "as_given",
    log: Callable[[str], None] = print,
) -> Path:
    """Generate (once) and cache the top-K nulls of one family of ``dataset``; return the file.

    ``nulls_settings`` are one family's settings (as `resolved_nulls` completes them; the
    file is `ResultsStore.nulls_path` of `null_run_settings` of them, one per family:
    ``neural_top`` does not change the nulls, so it does not name the file).
    Uses `spatiomol.nulls.generate_nulls` and `NullSet.save`; an existing file is reused
    only for the data it was made from: its region labels must match the brain's, and its
    ``metadata["expression_sha256"]`` the brain's current expression
    (`spatiomol.hashing.expression_sha256`), else a ValueError (nulls selected
    by CGE match on other expression are not matched nulls of this one).
    """
    name = source_name(dataset)
    nulls_settings = null_run_settings(nulls_settings)
    path = store.nulls_path(name, nulls_settings, gene_order)
    brain = _as_brain(dataset, gene_order)
    if path.exists():
        nullset = NullSet.load(path)
        nullset.check_brain(brain)
        check_nulls_expression(nullset, brain, path, name)
        if nullset.top < int(nulls_settings["top"]):
            raise ValueError(f"{path}: holds {nullset.top} nulls, expected {nulls_settings['top']}")
        return path
    family = null_family_label(nulls_settings)
    log(f"generating {nulls_settings['n']} {family} nulls for {name} (top {nulls_settings['top']}) ...")
    t0 = time.perf_counter()
    nulls_from_settings(brain, nulls_settings).save(path)  # atomic (tmp file + os.replace)
    log(f"{family} nulls for {name}: {time.perf_counter() - t0:.1f} s → {path}")
    return path


def check_nulls_expression(nullset: NullSet, brain: Brain, path: Path, dataset: str) -> None:
    """Raise ValueError unless ``nullset`` was generated from ``brain``'s current expression."""
    stored = nullset.metadata.get("expression_sha256")
    current = expression_sha256(brain.X)
    if stored != current:
        raise ValueError(
            f"{path}: cached nulls of dataset {dataset!r} were generated from different expression "
            f"(field 'expression_sha256' is {str(stored)[:16]}..., the dataset's expression now hashes to "
            f"{current[:16]}...); the dataset's contents changed since this results folder was made — "
            "use a new results folder"
        )


def _run_nulls(store: ResultsStore, spec: RunSpec, brain: Brain) -> NullSet:
    """The cached nulls of the run's family for its training dataset ``brain`` (generated by `ensure_nulls`)."""
    settings = spec.settings_dict
    name = source_name(spec.train_source)
    path = store.nulls_path(name, null_run_settings(settings["nulls"]), settings["gene_order"])
    key = (_content_key(spec.train_source, settings["gene_order"]), str(path))
    if key not in _NULLSETS:
        if not path.exists():
            raise FileNotFoundError(f"{path}: nulls for {name} not generated (run ensure_nulls first)")
        nullset = NullSet.load(path)
        check_nulls_expression(nullset, brain, path, name)
        _NULLSETS[key] = nullset
    return _NULLSETS[key]


def input_brain(brain: Brain, spec: RunSpec, store: ResultsStore, fit_brain: Brain | None = None) -> Brain:
    """The brain a run's model is fitted on: true, null (of the run's family) or randomly permuted expression.

    ``brain`` is the run's training dataset as resolved; ``fit_brain`` the brain to swap
    expression in (default ``brain``; a transfer run passes the source restricted to the
    shared genes, whose regions are the source's).
    """
    fit_brain = brain if fit_brain is None else fit_brain
    if spec.input == "true":
        return fit_brain
    if spec.input == "null":
        return _run_nulls(store, spec, brain).apply(fit_brain, spec.null_index)
    if spec.input == "permuted":
        perm = random_permutation(fit_brain.n_regions, spec.derived_seed("permutation"))
        return fit_brain.permute_expression(perm, note="uniform random permutation")
    raise ValueError(f"{spec.label()}: unknown input {spec.input!r}; expected true, null or permuted")


# ------------------------------------------------------------ folder record
def store_regions(store: ResultsStore, dataset: str | Brain, gene_order: str = "as_given") -> str:
    """Write ``dataset``'s region table into the folder (`ResultsStore.write_regions`); → its relative path."""
    return store.write_regions(source_name(dataset), _as_brain(dataset, gene_order).regions)


def prepare(
    config: ExperimentConfig, specs: list[RunSpec], store: ResultsStore, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Load every dataset once, store its region table, generate missing nulls, save the splits;
    → manifest datasets.

    Each dataset's entry records ``regions_file`` (the region table the runs used,
    relative to the results folder), ``nulls_files`` (family label → file, relative to the
    results folder) and ``nulls_file``, the first family's file.
    """
    fingerprints: dict[str, Any] = {}
    for dataset in config.datasets:
        brain = resolve_source(dataset, gene_order=config.gene_order)
        fingerprints[dataset] = {
            **dataset_fingerprint(brain),
            "gene_order": config.gene_order,
            "regions_file": store.write_regions(dataset, brain.regions),
        }
        used = {s.null_family for s in specs if s.dataset == dataset and s.input == "null"}
        files = {}
        for family, settings in config.null_families().items():
            if family in used:
                path = ensure_nulls(store, dataset, settings, config.gene_order, log=log)
                files[family] = store.relative(path)
        if files:
            fingerprints[dataset]["nulls_files"] = files
            fingerprints[dataset]["nulls_file"] = next(iter(files.values()))
        for kind in sorted({s.split_type for s in specs if s.dataset == dataset}):
            # every repeat the runs being prepared use (null runs share the true runs' splits,
            # so this is ``config.repeats`` for a whole grid, less for a slice of low repeats);
            # split (r, f) does not depend on how many repeats are drawn
            repeats = 1 + max(s.repeat for s in specs if s.dataset == dataset and s.split_type == kind)
            split_path = store.splits_path(
                dataset,
                kind,
                gene_order=config.gene_order,
                repeats=repeats,
                folds=config.folds,
                seed=config.seed,
            )
            if not split_path.exists():
                splits = make_splits(brain, kind, n_repeats=repeats, n_folds=config.folds, seed=config.seed)
                split_path.parent.mkdir(parents=True, exist_ok=True)
                save_splits(splits, split_path)
    return fingerprints


def check_datasets_unchanged(config: ExperimentConfig, store: ResultsStore) -> None:
    """Refuse to resume into a folder whose manifest recorded other data for a dataset.

    Finished runs are keyed by the dataset's *name*, so a changed expression or connectome
    file would otherwise be silently mixed with runs on the old contents. Compares the
    previous manifest's ``datasets[d]["X_sha256"]``, ``["Y_sha256"]`` and (when recorded)
    ``["structural_sha256"]`` with the data
    resolved now (content-keyed, so an edited file is re-read); raises ValueError on any
    difference.
    """
    old = store.read_manifest().get("datasets", {})
    for dataset in config.datasets:
        before = old.get(dataset)
        if not before or before.get("gene_order", "as_given") != config.gene_order:
            continue  # another gene order permutes X's columns legitimately (its runs have other keys)
        now = dataset_fingerprint(resolve_source(dataset, gene_order=config.gene_order))
        # a folder from before SC inputs has no structural_sha256: nothing to compare
        changed = [
            f
            for f in ("X_sha256", "Y_sha256", "structural_sha256")
            if before.get(f) is not None and before[f] != now[f]
        ]
        if changed:
            detail = ", ".join(f"{f} {before[f]} → {now[f]}" for f in changed)
            raise ValueError(
                f"{store.manifest_path}: dataset {dataset!r} changed since its runs in this folder were made "
                f"(field 'datasets.{dataset}': {detail}); refusing to resume — use a new results folder"
            )


__all__ = [
    "check_datasets_unchanged",
    "check_nulls_expression",
    "dataset_fingerprint",
    "ensure_nulls",
    "get_split",
    "input_brain",
    "nulls_from_settings",
    "prepare",
    "shared_gene_brains",
    "source_name",
    "store_regions",
]
