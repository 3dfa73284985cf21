"""Cross-dataset transfer (paper App. A.6, Fig. 4B / Fig. 12).

Train a model on *every* edge of a source dataset, then predict *every* edge of a target
dataset from the target's own expression and coordinates, using only the genes both
datasets share (in the source's gene order). The chance level is a model of the same
configuration trained on one of the source's top nulls (true coordinates, null
expression; one null run per null family when several are given) and applied to the
same target: transfer means beating it.

Each (pair, input) is a `RunSpec` (``split_type="transfer"``, ``dataset="SOURCE->TARGET"``)
executed by the runner (`spatiomol.experiments.runner.run_specs`), so transfer runs are
claimed, resumable, failure-capturing and run on joblib or Dask like any grid, and the
report reads them from the same `ResultsStore` (which also keeps each source's and
target's region table, manifest ``datasets[name]["regions_file"]``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from spatiomol.data.brain import Brain
from spatiomol.experiments.config import null_family_label, null_run_settings, resolved_nulls, validated_null_families
from spatiomol.experiments.grid import TRANSFER, TRANSFER_ARROW, RunSpec
from spatiomol.experiments.inputs import _as_brain, ensure_nulls, shared_gene_brains, source_name, store_regions
from spatiomol.experiments.runner import run_specs, summary_text
from spatiomol.experiments.store import ResultsStore
from spatiomol.hashing import canonical_json
from spatiomol.models import registry

#: null settings of a transfer: one family's mapping, a list of them, or None (the defaults)
NullsArgument = dict[str, Any] | list[dict[str, Any]] | None


def transfer_specs(
    pairs: Iterable[tuple[str | Brain, str | Brain]],
    model: str,
    *,
    model_params: dict[str, Any] | None = None,
    null_index: int = 0,
    nulls: NullsArgument = None,
    seed: int = 0,
    gene_order: str = "as_given",
) -> list[RunSpec]:
    """The true run and the null run of each family for each (source, target) pair.

    Arguments as in `run_transfer`. The settings recorded in each run's key are the
    model's fixed hyperparameters, the gene order, the number of shared genes, a digest of the
    model's search space (`registry.search_space_digest`) and (null runs) the null family's
    settings.
    """
    if registry.spec(model).reads_structural:  # unknown model: ValueError before any data is loaded
        raise ValueError(
            f"transfer: model {model!r} reads structural-connectivity features, whose Laplacian embedding of "
            "another brain's SC has an unrelated basis; transfer a model without SC"
        )
    families = checked_nulls(nulls, null_index)
    model_params = dict(model_params or {})
    specs = []
    for source_item, target_item in pairs:
        source = _as_brain(source_item, gene_order)
        src, _ = shared_gene_brains(source, _as_brain(target_item, gene_order))
        label = f"{source_name(source_item)}{TRANSFER_ARROW}{source_name(target_item)}"
        for inp, family in [("true", None)] + [("null", f) for f in families.values()]:
            settings = {
                "model_params": model_params,
                "gene_order": gene_order,
                "n_shared_genes": src.n_genes,
                "search_space": registry.search_space_digest(model),
            }
            if inp == "null":
                settings["nulls"] = null_run_settings(family)
            specs.append(
                RunSpec(
                    dataset=label,
                    model=model,
                    split_type=TRANSFER,
                    repeat=0,
                    fold=0,
                    input=inp,
                    null_index=null_index if inp == "null" else -1,
                    seed=seed,
                    settings=canonical_json(settings),
                    sources=(source_item, target_item),
                )
            )
    return specs


def checked_nulls(nulls: NullsArgument, null_index: int) -> dict[str, dict[str, Any]]:
    """Null family label → settings (completed from `NULL_DEFAULTS`, `resolved_nulls`), validated,
    with ``null_index`` below every family's ``top``."""

    def fail(field_name: str, expected: str, got: Any) -> None:
        raise ValueError(f"transfer: field {field_name!r} must be {expected}, got {got!r}")

    checked = validated_null_families({} if nulls is None else nulls, fail)
    families = {null_family_label(s): resolved_nulls(s) for s in (checked if isinstance(checked, list) else [checked])}
    top = min(s["top"] for s in families.values())
    if isinstance(null_index, bool) or not isinstance(null_index, int) or not 0 <= null_index < top:
        fail("null_index", f"an integer between 0 and nulls.top - 1 ({top - 1})", null_index)
    return families


def run_transfer(
    pairs: Iterable[tuple[str | Brain, str | Brain]],
    model: str,
    results_dir: str | os.PathLike,
    *,
    model_params: dict[str, Any] | None = None,
    null_index: int = 0,
    nulls: NullsArgument = None,
    seed: int = 0,
    gene_order: str = "as_given",
    jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Train on each full source, predict each full target, with true and null source expression.

    Parameters
    ----------
    pairs : iterable of (source, target)
        Dataset sources (bundled name, user YAML, ``synthetic:...``) or `Brain` objects.
    model : str
        Registry name; fitted at its default configuration plus ``model_params``
        (no tuning: the paper fixes defaults before seeing the target).
    results_dir : path of the `ResultsStore` (resumable).
    null_index : int
        Which of the source's top nulls trains the null model.
    nulls : dict, list of dict or None
        One null family's settings (keys of `spatiomol.nulls.NULL_DEFAULTS`, the rest
        from the defaults) for `spatiomol.nulls.generate_nulls`, or a list of families
        (one null run per family and pair); cached per source and family.
    seed : int
        Model seed (the same for the true and the null model).
    jobs, scheduler, progress, log
        As in `spatiomol.experiments.runner.run_experiment`.

    Returns
    -------
    DataFrame
        The store's rows for these pairs (``dataset = "SOURCE->TARGET"``,
        ``split_type = "transfer"``, ``input`` ``"true"``/``"null"``, ``null_family`` of
        null rows); metrics are over all target edges, on the target's scale.

    Raises
    ------
    RuntimeError
        When runs failed (after every other run was stored and the manifest written;
        tracebacks are in the results folder's ``failures/``).
    """
    pairs = list(pairs)
    families = checked_nulls(nulls, null_index)
    specs = transfer_specs(
        pairs,
        model,
        model_params=model_params,
        null_index=null_index,
        nulls=list(families.values()),
        seed=seed,
        gene_order=gene_order,
    )
    store = ResultsStore(results_dir)
    regions = _prepare_transfer(store, specs, pairs, families, gene_order, log)
    summary = run_specs(specs, store, jobs=jobs, scheduler=scheduler, progress=progress, log=log)
    transfer_settings = {
        "model": model,
        "model_params": dict(model_params or {}),
        "null_index": null_index,
        "nulls": families[next(iter(families))] if len(families) == 1 else list(families.values()),
        "null_families": families,
        "seed": seed,
    }
    names = _record_transfer(store, specs, transfer_settings, regions)
    if summary.failed:
        raise RuntimeError(f"transfer: {len(summary.failed)} of {len(specs)} runs failed\n{summary_text(summary)}")
    df = store.load()
    return df[df["dataset"].isin(names) & (df["model"] == model)].reset_index(drop=True)


def _prepare_transfer(
    store: ResultsStore,
    specs: list[RunSpec],
    pairs: list[tuple[str | Brain, str | Brain]],
    families: dict[str, dict[str, Any]],
    gene_order: str,
    log: Callable[[str], None],
) -> dict[str, str]:
    """Generate the sources' missing nulls and store every brain's region table; → name → table file."""
    sources = {source_name(s.train_source): s.train_source for s in specs if s.input == "null"}
    for source in sources.values():
        for settings in families.values():
            ensure_nulls(store, source, settings, gene_order, log=log)
    return {source_name(item): store_regions(store, item, gene_order) for pair in pairs for item in pair}


def _record_transfer(
    store: ResultsStore, specs: list[RunSpec], settings: dict[str, Any], regions: dict[str, str]
) -> list[str]:
    """Write a transfer's settings, current run ids and region tables into the manifest; → its pair labels.

    ``regions``: dataset name → its stored region table (`store_regions`), added to what a
    grid recorded of the dataset.
    """
    model = settings["model"]
    names = list(dict.fromkeys(s.dataset for s in specs))
    manifest = store.read_manifest()
    datasets = dict(manifest.get("datasets", {}))
    datasets = {name: {**datasets.get(name, {}), "regions_file": rel} for name, rel in regions.items()}
    # the report shows, per (pair, model), only the runs of the latest call's settings
    current_ids = dict(manifest.get("transfer_run_ids", {}))
    for label in names:
        current_ids[f"{label} {model}"] = sorted(s.run_id for s in specs if s.dataset == label)
    store.write_manifest(
        {"transfer": {**settings, "pairs": names}},
        datasets=datasets,
        extra={"transfer_run_ids": current_ids},
    )
    return names


def transfer_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (source → target, model, null family): Pearson r, MSE and geodesic distance
    of the true and the null model.

    ``gain_r`` = r(true) − r(null); positive means transfer beyond the source's null. The
    true model's columns repeat on the row of each null family (``null_family``; ``""``
    when the rows carry no family).
    """
    metrics = ("pearson", "mse", "geodesic")
    glob = df[(df["stratum"] == "all") & df["metric"].isin(metrics)]
    if "null_family" not in glob:
        glob = glob.assign(null_family="")
    index = ["dataset", "model"]
    true = glob[glob["input"] == "true"].pivot_table(index=index, columns="metric", values="value", aggfunc="first")
    null = glob[glob["input"] == "null"].pivot_table(
        index=[*index, "null_family"], columns="metric", values="value", aggfunc="first"
    )
    out = true.add_suffix("_true").reset_index()
    if not null.empty:
        out = out.merge(null.add_suffix("_null").reset_index(), on=index, how="outer")
    if "null_family" not in out:
        out["null_family"] = ""
    out["null_family"] = out["null_family"].fillna("")
    values = [f"{m}_{inp}" for m in metrics for inp in ("true", "null") if f"{m}_{inp}" in out]
    if {"pearson_true", "pearson_null"} <= set(out.columns):
        out["gain_r"] = out["pearson_true"] - out["pearson_null"]
        values.append("gain_r")
    out[["source", "target"]] = out["dataset"].str.split(TRANSFER_ARROW, n=1, expand=True)
    return out[["source", "target", "model", "null_family", *values]].reset_index(drop=True)


__all__ = ["checked_nulls", "run_transfer", "shared_gene_brains", "transfer_specs", "transfer_table"]
