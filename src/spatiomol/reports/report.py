"""`spatiomol report RESULTS`: Markdown + CSV tables and PNG figures of a results folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.experiments.store import ResultsStore
from spatiomol.reports import figures, stats, tables

STAT_COLUMNS = [
    "split_type",
    "model",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "sd_diff",
    "effect_dz",
    "rank_biserial",
    "wilcoxon_p",
    "signflip_p",
    "wilcoxon_p_bh",
    "signflip_p_bh",
]


def _best_model(summary: pd.DataFrame, dataset: str, split_type: str, candidates=None) -> str | None:
    s = summary[
        (summary["dataset"] == dataset)
        & (summary["split_type"] == split_type)
        & (summary["input"] == "true")
        & (summary["metric"] == "pearson")
        & (summary["stratum"] == "all")
    ]
    if candidates is not None:
        s = s[s["model"].isin(candidates)]
    if s.empty:
        return None
    return str(s.loc[s["mean"].idxmax(), "model"])


def _connectome_figure(
    store: ResultsStore, df: pd.DataFrame, summary: pd.DataFrame, dataset: str, split_type: str, out: Path
) -> tuple[Path, str] | None:
    """True / predicted / null-predicted test connectomes of the first split of the best model."""
    runs = df[(df["dataset"] == dataset) & (df["split_type"] == split_type)][
        ["run_id", "model", "input", "repeat", "fold"]
    ].drop_duplicates()
    with_null = set(runs.loc[runs["input"] == "null", "model"])
    model = _best_model(summary, dataset, split_type, candidates=with_null) or _best_model(summary, dataset, split_type)
    if model is None:
        return None
    first = runs[(runs["model"] == model)].sort_values(["repeat", "fold"]).iloc[0]
    pick = runs[(runs["model"] == model) & (runs["repeat"] == first["repeat"]) & (runs["fold"] == first["fold"])]
    panels: dict[str, dict[str, np.ndarray]] = {}
    for inp in ("true", "null"):
        row = pick[pick["input"] == inp]
        if row.empty:
            continue
        try:
            p = store.load_predictions(str(row["run_id"].iloc[0]))
        except FileNotFoundError:
            continue
        if not panels:
            panels["observed (test edges)"] = {"i": p["i"], "j": p["j"], "values": p["y_true"]}
        panels[f"predicted, {inp} expression"] = {"i": p["i"], "j": p["j"], "values": p["y_pred"]}
    if not panels:
        return None
    name = tables.display(model)
    caption = (
        f"{dataset}, {split_type} split, repeat {first['repeat']} fold {first['fold']}: "
        f"{name}, observed vs predicted test connectome (test regions in index order)"
    )
    path = figures.plot_test_connectomes(panels, caption, out / f"connectomes_{_slug(dataset)}_{split_type}.png")
    return path, caption


def _cge_figure(store: ResultsStore, manifest: dict[str, Any], dataset: str, out: Path) -> Path | None:
    """Fig. 3-style CGE–distance curves of the true brain and its cached nulls (nulls stage's figure)."""
    from spatiomol.experiments.runner import load_source
    from spatiomol.nulls import NullSet
    from spatiomol.reports.cge_figure import plot_cge_curves

    nulls_rel = manifest.get("datasets", {}).get(dataset, {}).get("nulls_file")
    if not nulls_rel or not (store.root / nulls_rel).exists():
        return None
    config = manifest.get("grid_config") or manifest.get("config", {})
    brain = load_source(dataset, config.get("gene_order", "as_given"))
    return plot_cge_curves(brain, NullSet.load(store.root / nulls_rel), out / f"cge_distance_{_slug(dataset)}.png")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(text).name)[:40]


#: columns that identify one cell of the report (one value per metric and stratum)
CELL_COLUMNS = ["dataset", "model", "split_type", "input", "repeat", "fold"]


def current_ids(manifest: dict[str, Any]) -> set[str] | None:
    """Run ids of the folder's latest settings: the grid's ``run_ids`` and transfer's ids.

    ``None`` when the manifest records none (a folder from before the manifest listed them).
    """
    grid = manifest.get("run_ids")
    transfer = manifest.get("transfer_run_ids")
    if grid is None and transfer is None:
        return None
    ids = set(grid or [])
    for values in (transfer or {}).values():
        ids.update(values)
    return ids


def current_runs(df: pd.DataFrame, manifest: dict[str, Any], source: str = "manifest.json") -> pd.DataFrame:
    """The rows of the runs the manifest lists as current; one run per report cell.

    A results folder keeps the parts of every configuration ever run into it (runs are
    append-only); the report must not average a cell over old and new settings. Rows
    whose ``run_id`` is not in the manifest's ``run_ids`` (written by every
    `spatiomol.experiments.runner.run_experiment`) or ``transfer_run_ids`` are dropped.

    Raises
    ------
    ValueError
        When a (dataset, model, split_type, input, repeat, fold) cell still has more than
        one run (two settings at once), naming the cell and its run ids.
    """
    ids = current_ids(manifest)
    if ids is not None:
        df = df[df["run_id"].isin(ids)].reset_index(drop=True)
    runs = df[[*CELL_COLUMNS, "run_id"]].drop_duplicates()
    counts = runs.groupby(CELL_COLUMNS, sort=False)["run_id"].nunique()
    mixed = counts[counts > 1]
    if not mixed.empty:
        cell = dict(zip(CELL_COLUMNS, mixed.index[0]))
        rids = sorted(runs.merge(pd.DataFrame([cell]), on=CELL_COLUMNS)["run_id"])
        raise ValueError(
            f"{source}: {len(mixed)} report cell(s) hold runs of different settings, e.g. {cell} has runs "
            f"{rids}; expected one run per (dataset, model, split_type, input, repeat, fold) — "
            "report a results folder written by one configuration (use a new folder per configuration)"
        )
    return df


def write_report(
    results_dir: str | Path, out_dir: str | Path | None = None, n_permutations: int = 10000, seed: int = 0
) -> Path:
    """Write ``report.md``, ``tables/*.csv`` and ``figures/*.png`` for a results folder.

    Parameters
    ----------
    results_dir : path of a `ResultsStore`.
    out_dir : where to write (default: ``results_dir``).
    n_permutations, seed : sign-flip test settings (`spatiomol.reports.stats`).

    Returns
    -------
    Path of ``report.md``.
    """
    store = ResultsStore(results_dir)
    out = Path(out_dir) if out_dir is not None else store.root
    df = store.load()
    if df.empty:
        raise ValueError(f"{store.root}: no finished runs in {store.parts_dir} (run `spatiomol run` first)")
    manifest = store.read_manifest()
    # the latest grid's configuration ("config" keeps the folder's first one)
    config = manifest.get("grid_config") or manifest.get("config", {})
    df = current_runs(df, manifest, str(store.manifest_path))
    if df.empty:
        raise ValueError(
            f"{store.manifest_path}: none of the runs listed in field 'run_ids' has finished "
            f"(no part in {store.parts_dir}); run `spatiomol run` first"
        )
    ids = current_ids(manifest)
    tdir, fdir = out / "tables", out / "figures"
    tdir.mkdir(parents=True, exist_ok=True)
    fdir.mkdir(parents=True, exist_ok=True)

    summary = tables.split_summary(df)
    summary.to_csv(tdir / "summary.csv", index=False)
    df.to_csv(tdir / "results.csv", index=False)

    md: list[str] = [f"# Results: {config.get('name', store.root.name)}", ""]
    if config.get("notes"):
        md += [f"> {config['notes'].strip()}", ""]
    n_runs = df["run_id"].nunique()
    if "transfer" in config and "repeats" not in config:
        md += [
            f"- runs: {n_runs} finished; transfer settings: {json.dumps(config['transfer'])}",
            f"- versions: {json.dumps(manifest.get('versions', {}))}",
            "",
        ]
    else:
        md += [
            f"- runs: {n_runs} finished (of {manifest.get('planned_runs', '?')} planned); "
            f"splits: {config.get('repeats', '?')} repeat(s) × {config.get('folds', '?')} folds; "
            f"hyperparameters: {'nested inner-CV selection' if config.get('tuning', True) else 'default configuration'}"
            + (
                f" (default configuration for {', '.join(config['untuned_models'])})"
                if config.get("tuning", True) and config.get("untuned_models")
                else ""
            ),
            "- every cell: mean ± SD (ddof=1) over splits; targets on the dataset's scale; "
            "MSE in squared target units; geodesic = affine-invariant Riemannian distance",
            f"- nulls: top {config.get('nulls', {}).get('top', '?')} of {config.get('nulls', {}).get('n', '?')} "
            f"spins by CGE match (one null per K-fold split: every fold of repeat r uses null r mod top)",
            f"- versions: {json.dumps(manifest.get('versions', {}))}",
            "",
        ]
    transfer = df[df["split_type"] == "transfer"]
    if not transfer.empty:
        from spatiomol.experiments.transfer import transfer_table

        table = transfer_table(transfer)
        table.to_csv(tdir / "transfer.csv", index=False)
        md += [
            "## Cross-dataset transfer (App. A.6)",
            "",
            "Trained on every edge of the source (shared genes), scored on every edge of the target; "
            "null = same model trained on a CGE-matched null of the source. gain_r = r(true) − r(null).",
            "",
            tables.to_markdown(table, index=False),
        ]
        df = df[df["split_type"] != "transfer"]
    datasets = list(dict.fromkeys(df["dataset"]))
    for dataset in datasets:
        info = manifest.get("datasets", {}).get(dataset, {})
        slug = _slug(dataset)
        md += [f"## {dataset}", ""]
        if info:
            md += [
                f"{info.get('n_regions')} regions, {info.get('n_genes')} genes; "
                f"X sha256 {info.get('X_sha256')}, Y sha256 {info.get('Y_sha256')}",
                "",
            ]
        nulls_rel = info.get("nulls_file")
        if nulls_rel and (store.root / nulls_rel).exists():
            from spatiomol.nulls import NullSet

            nullset = NullSet.load(store.root / nulls_rel)
            kept = (nullset.permutations == np.arange(nullset.permutations.shape[1])).mean(axis=1)
            floor = nullset.metadata.get("min_moved")
            rule = (
                f"selection required ≥ {floor:.0%} of regions moved"
                if floor
                else "no floor on regions moved (Algorithm 1 verbatim)"
            )
            md += [
                f"Null diagnostic: the {len(kept)} CGE-matched nulls leave "
                f"{kept.min():.0%}–{kept.max():.0%} (median {np.median(kept):.0%}) of regions with their own "
                f"expression ({rule}); a null that moves few regions is close to the true brain and shrinks "
                "true − null gaps.",
                "",
            ]
        t1, t1n = tables.table1(summary, dataset)
        t1n.to_csv(tdir / f"table1_{slug}.csv")
        md += ["### Table 1: global test performance", "", tables.to_markdown(t1)]
        t2, t2n = tables.table2(summary, dataset)
        t2n.to_csv(tdir / f"table2_{slug}.csv")
        md += ["### Table 2: stratified test Pearson r", "", tables.to_markdown(t2)]
        for split_type in config.get("variant_splits") or ["random"]:
            t3, t3n = tables.table3(summary, dataset, split_type=split_type, variants=config.get("variants") or None)
            if not t3.empty:
                t3n.to_csv(tdir / f"table3_{slug}_{split_type}.csv", index=False)
                md += [
                    f"### Table 3: null models with varying feature access ({split_type} splits)",
                    "",
                    "SM = CGE-matched spatiomolecular null expression; permuted = uniform random shuffle of rows.",
                    "",
                    tables.to_markdown(t3, index=False),
                ]

        sub = df[df["dataset"] == dataset]
        tvn = stats.true_vs_null(sub, n_permutations=n_permutations, seed=seed)
        if not tvn.empty:
            tvn.to_csv(tdir / f"stats_true_vs_null_{slug}.csv", index=False)
            view = tvn[STAT_COLUMNS].copy()
            view["model"] = view["model"].map(tables.display)
            md += [
                "### True vs null expression, paired over splits (test Pearson r)",
                "",
                "a = true, b = null; d_z = mean/SD of differences; BH = Benjamini–Hochberg over this table. "
                "Splits of repeated CV overlap, so p-values are descriptive.",
                "",
                tables.to_markdown(view, index=False),
            ]
        vbl = stats.versus_best_linear(sub, n_permutations=n_permutations, seed=seed)
        if not vbl.empty:
            vbl.to_csv(tdir / f"stats_vs_best_linear_{slug}.csv", index=False)
            view = vbl[["reference", *STAT_COLUMNS]].copy()
            view["model"] = view["model"].map(tables.display)
            view["reference"] = view["reference"].map(tables.display)
            md += [
                "### Each model vs the best linear model (true expression, test Pearson r)",
                "",
                "a = model, b = reference (best bilinear model by mean r on that split type).",
                "",
                tables.to_markdown(view, index=False),
            ]

        md += ["### Figures", ""]
        for split_type in [k for k in ("random", "spatial") if k in set(sub["split_type"])]:
            made = _connectome_figure(store, df, summary, dataset, split_type, fdir)
            if made:
                path, caption = made
                md += [f"![{caption}]({path.relative_to(out).as_posix()})", "", f"_{caption}_", ""]
            nonlinear = [m for m in set(sub["model"]) if m not in stats.LINEAR_MODELS]
            best = _best_model(summary, dataset, split_type, candidates=nonlinear)
            reference = stats.best_linear_model(sub, dataset, split_type)
            if best and reference and best != reference:
                gain = tables.network_gain(summary, dataset, split_type, best, reference)
                if not gain.empty:
                    gain.to_csv(tdir / f"network_gain_{slug}_{split_type}.csv", index=False)
                    title = (
                        f"{dataset}, {split_type}: {tables.display(best)} − {tables.display(reference)} "
                        f"(mean test r per network)"
                    )
                    path = figures.plot_network_gain(gain, title, fdir / f"network_gain_{slug}_{split_type}.png")
                    md += [f"![{title}]({path.relative_to(out).as_posix()})", "", f"_Fig. 5B-style: {title}_", ""]
        params_split = "spatial" if "spatial" in set(sub["split_type"]) else sub["split_type"].iloc[0]
        s = summary[
            (summary["dataset"] == dataset)
            & (summary["split_type"] == params_split)
            & (summary["input"] == "true")
            & (summary["metric"] == "pearson")
            & (summary["stratum"] == "all")
        ]
        if not s.empty:
            points = pd.DataFrame(
                {
                    "label": s["model"].map(tables.display),
                    "n_parameters": s["n_parameters"],
                    "mean": s["mean"],
                    "sd": s["sd"],
                }
            )
            points.to_csv(tdir / f"parameters_{slug}.csv", index=False)
            title = f"{dataset}, {params_split} split: test r vs learned parameters"
            path = figures.plot_parameters(points, title, fdir / f"parameters_{slug}.png")
            md += [f"![{title}]({path.relative_to(out).as_posix()})", "", f"_Fig. 5C-style: {title}_", ""]
        try:
            cge = _cge_figure(store, manifest, dataset, fdir)
        except Exception as err:  # noqa: BLE001 — a figure must not sink the report
            cge = None
            md += [f"_CGE–distance figure not drawn: {type(err).__name__}: {err}_", ""]
        if cge is not None:
            md += [
                f"![CGE vs distance]({cge.relative_to(out).as_posix()})",
                "",
                f"_CGE–distance curves of {dataset}: true brain and its top nulls_",
                "",
            ]

    failures = sorted((store.root / "failures").glob("*.txt")) if (store.root / "failures").exists() else []
    if ids is not None:
        failures = [f for f in failures if f.stem in ids]
    if failures:
        md += ["## Failed runs", ""] + [f"- {f.read_text().splitlines()[0]}" for f in failures] + [""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
