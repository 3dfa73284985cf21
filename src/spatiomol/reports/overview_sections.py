"""The sections around the per-dataset results: header, dataset provenance, transfer table, failed runs.

Each takes the `ReportContext` (`spatiomol.reports.context`) and returns `document`
blocks; `transfer_section` also writes ``tables/transfer.csv`` and, per model with two or
more sources or targets, its transfer matrix (Fig. 12) as ``figures/transfer_matrix_<model>.png``.
"""

from __future__ import annotations

import json

import pandas as pd

from spatiomol.reports import figures, null_families, tables
from spatiomol.reports.context import ReportContext, family_settings, slug
from spatiomol.reports.document import Block, Bullets, Figure, Heading, Paragraph, Quote, Table


def header_section(ctx: ReportContext, n_runs: int) -> list[Block]:
    """Title, notes, run counts, protocol and package versions."""
    config, manifest = ctx.config, ctx.manifest
    blocks: list[Block] = [Heading(f"Results: {config.get('name', ctx.store.root.name)}", 1)]
    if config.get("notes"):
        blocks.append(Quote(config["notes"].strip()))
    versions = f"versions: {json.dumps(manifest.get('versions', {}))}"
    if "transfer" in config and "repeats" not in config:
        return [
            *blocks,
            Bullets((f"runs: {n_runs} finished; transfer settings: {json.dumps(config['transfer'])}", versions)),
        ]
    tuned = config.get("tuning", True)
    untuned = (
        f" (default configuration for {', '.join(config['untuned_models'])})"
        if tuned and config.get("untuned_models")
        else ""
    )
    items = [
        f"runs: {n_runs} finished (of {manifest.get('planned_runs', '?')} planned); "
        f"splits: {config.get('repeats', '?')} repeat(s) × {config.get('folds', '?')} folds; "
        f"hyperparameters: {'nested inner-CV selection' if tuned else 'default configuration'}{untuned}",
        "every cell: mean ± SD (ddof=1) over splits; targets on the dataset's scale; "
        "MSE in squared target units; geodesic = affine-invariant Riemannian distance",
    ]
    families = family_settings(ctx)
    if families and (ctx.rows["input"] == "null").any():
        items.append(
            f"nulls: {len(families)} famil{'y' if len(families) == 1 else 'ies'}, each with its own null runs "
            "(shared folds: every null is scored on every split of the true runs; closed-form models on the "
            "family's `top` nulls, neural models on the first min(`top`, `neural_top`))"
        )
        for label, settings in families.items():
            shown = " — shown in Tables 1–3" if label == ctx.family and len(families) > 1 else ""
            items.append(f"null family {null_families.describe_family(label, settings)}{shown}")
    items.append(versions)
    return [*blocks, Bullets(tuple(items))]


def provenance_section(ctx: ReportContext, dataset: str) -> list[Block]:
    """Dataset heading with its size and the SHA-256 of its expression and connectome."""
    info = ctx.manifest.get("datasets", {}).get(dataset, {})
    blocks: list[Block] = [Heading(dataset, 2)]
    if info:
        blocks.append(
            Paragraph(
                f"{info.get('n_regions')} regions, {info.get('n_genes')} genes; "
                f"X sha256 {info.get('X_sha256')}, Y sha256 {info.get('Y_sha256')}"
            )
        )
    return blocks


def transfer_section(ctx: ReportContext, transfer: pd.DataFrame) -> list[Block]:
    """Cross-dataset transfer table (App. A.6); writes ``tables/transfer.csv``."""
    if transfer.empty:
        return []
    from spatiomol.experiments.transfer import transfer_table

    table = transfer_table(transfer)
    table.to_csv(ctx.tables_dir / "transfer.csv", index=False)
    return [
        Heading("Cross-dataset transfer (App. A.6)", 2),
        Paragraph(
            "Trained on every edge of the source (shared genes), scored on every edge of the target; "
            "null = the same model trained on one of the source's null maps (the configured null family: "
            "true coordinates, null expression). gain_r = r(true) − r(null)."
        ),
        Table(table, index=False),
        *transfer_matrices(ctx, table),
    ]


def transfer_matrix(
    table: pd.DataFrame, model: str, order: list[str], family: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Source × target frames of a model's true-input test r and its gain over the null family
    ``family`` (default: each pair's first row's; NaN where no run); rows and columns in
    ``order``, then any other dataset."""
    sub = table[table["model"] == model]
    if family is not None and family in set(sub["null_family"]):
        sub = sub[sub["null_family"] == family]
    names = [d for d in order if d in set(sub["source"]) | set(sub["target"])]
    names += sorted((set(sub["source"]) | set(sub["target"])) - set(names))
    first = sub.drop_duplicates(["source", "target"], keep="first")
    r = first.pivot_table(index="source", columns="target", values="pearson_true", aggfunc="first")
    gain = (
        first.pivot_table(index="source", columns="target", values="gain_r", aggfunc="first")
        if ("gain_r" in first)
        else r * float("nan")
    )
    return r.reindex(index=names, columns=names), gain.reindex(index=names, columns=names)


def transfer_matrices(ctx: ReportContext, table: pd.DataFrame) -> list[Block]:
    """One Fig. 12-style matrix per model whose transfer covers more than one pair."""
    info = ctx.manifest.get("datasets", {})
    names = set(table["source"]) | set(table["target"])
    order = sorted(names, key=lambda d: (int(info.get(d, {}).get("n_regions", 10**9)), d))
    blocks: list[Block] = []
    shown = ctx.families[0] if ctx.families else None
    for model in dict.fromkeys(table["model"]):
        rows = table[table["model"] == model]
        if len(rows.drop_duplicates(["source", "target"])) < 2:
            continue
        family = shown if shown in set(rows["null_family"]) else next((f for f in rows["null_family"] if f), "")
        matrix, gain = transfer_matrix(table, model, order, family or None)
        path = ctx.figures_dir / f"transfer_matrix_{slug(model)}.png"
        title = f"{tables.display(model)}: trained on the source, scored on the target"
        try:
            figures.plot_transfer_matrix(matrix, gain, title, path)
        except Exception as err:  # noqa: BLE001 — a figure must not sink the report
            blocks.append(Paragraph(f"**Figure not drawn**: the transfer matrix of {model} failed ({err})."))
            continue
        blocks.append(
            Figure(
                path,
                f"transfer matrix of {model}",
                f"{tables.display(model)}: test Pearson r over every target edge (upper number) and the gain over the "
                f"same model trained on the source's null{f' ({family})' if family else ''} (lower number); "
                "datasets ordered by their number of regions.",
            )
        )
    return blocks


def failures_section(ctx: ReportContext, ids: set[str] | None) -> list[Block]:
    """First line of each failure record of a current run."""
    failures = ctx.store.failure_paths()
    if ids is not None:
        failures = [f for f in failures if f.stem in ids]
    if not failures:
        return []
    return [Heading("Failed runs", 2), Bullets(tuple(f.read_text().splitlines()[0] for f in failures))]
