"""Tokenisation (the paper's Fig. 8): does the genomic order of the genes carry signal for the SMT?

The SMT cuts the gene vector into tokens of consecutive genes and, with ALiBi, biases
attention towards nearby tokens. If the order of the genes along the genome carries signal
(the paper's central claim for the SMT), transcription-start-site order (``tss``) should
beat a random order, and ALiBi should help most under ``tss``. Cells: gene order ``tss``,
``mean_expression`` (genes sorted by their mean over regions) and ``random`` (seeded), each
with and without ALiBi (``use_alibi``); everything else at the SMT's shipped defaults
(the issue-25 training recipe, whole epoch budget, no inner search).

Every cell is one `spatiomol run` grid (`spatiomol.experiments.runner.run_experiment`) into
its own folder under ``--runs`` (default ``runs/tokenisation``): the same dataset, splits
(``random``, ``--repeats`` × 4 folds, seed 0: the splits and the model seeds do not depend on
the gene order, so the cells are paired by construction) and model; the order is the SMT's own
``gene_order`` hyperparameter (the model orders the genes on its training regions), with the
dataset in its given order. The runs are claimed,
resumable and record their fit time; the table is rewritten from the stored runs after each
cell. Genes that GENCODE v27 does not place keep their relative order after the placed
ones under ``tss`` (`spatiomol.data.genome`).

Table (``benchmarks/results/tokenisation[_<dataset>].md``): test Pearson r, mean ± SD (n), per
cell; the paired difference of each cell to ``tss`` with ALiBi (the paper's choice), and of
ALiBi to no ALiBi within each order; paired over the same splits, with the splits on which
the first is ahead and the exact sign-flip p.

Run: ``nice -n 10 .venv/bin/python benchmarks/studies/tokenisation.py --dataset hcp-s100 --jobs 2``
(hcp-s100: 6 cells × 4 folds per repeat, about 1 CPU-minute per fit); ``--cells`` runs some
cells only (``tss-alibi,random-alibi,tss-no-alibi``: the order test and ALiBi under it, where
all six cost too much); ``--quick``: a synthetic brain at two epochs, into a temporary folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness  # noqa: E402

ORDERS = ("tss", "mean_expression", "random")
REFERENCE = ("tss", True)
#: 240 genes make 4 tokens of 60, so ALiBi has token distances to act on (24 genes are one token)
QUICK = {"dataset": "synthetic:n_regions=40,n_genes=240,seed=0", "repeats": 1, "epochs": 2}


def cells() -> list[tuple[str, bool]]:
    return [(order, alibi) for order in ORDERS for alibi in (True, False)]


def cell_name(order: str, alibi: bool) -> str:
    return f"{order}-{'alibi' if alibi else 'no-alibi'}"


def config(dataset: str, model: str, order: str, alibi: bool, repeats: int, epochs: int | None):
    from spatiomol.experiments.config import ExperimentConfig

    # the SMT orders its genes itself (its `gene_order` hyperparameter, on the training regions);
    # the dataset keeps its given order, so the model's setting is the one that acts
    params = {"gene_order": order, "use_alibi": alibi, **({"epochs": epochs} if epochs else {})}
    return ExperimentConfig(
        name=f"tokenisation-{cell_name(order, alibi)}",
        notes=f"Fig. 8 cell: {model}, gene order {order}, ALiBi {'on' if alibi else 'off'}",
        datasets=[dataset],
        models=[model],
        splits=["random"],
        repeats=repeats,
        folds=4,
        inputs=["true"],
        tuning=False,
        seed=0,
        model_params={model: params},
    )


def scores(
    runs: Path, dataset: str, model: str
) -> dict[tuple[str, bool], dict[tuple[int, int], tuple[float, float, bool]]]:
    """Cell → (repeat, fold) → (test r, fit seconds, flagged not trained), from the stored runs."""
    from spatiomol.experiments.store import ResultsStore

    out = {}
    for order, alibi in cells():
        folder = runs / dataset / cell_name(order, alibi)
        if not (folder / "manifest.json").exists():
            continue
        store = ResultsStore(folder)
        df = store.load()
        current = set(store.read_manifest().get("run_ids", []))
        df = df[df["run_id"].isin(current)]  # runs of an earlier configuration are not this cell's
        sel = df[
            (df["metric"] == "pearson")
            & (df["stratum"] == "all")
            & (df["input"] == "true")
            & (df["model"] == model)
            & (df["dataset"] == dataset)
        ]
        stuck = sel["training_check"].astype(str).str.startswith("not trained")
        out[(order, alibi)] = {
            (int(r), int(f)): (float(v), float(s), bool(k))
            for r, f, v, s, k in zip(sel["repeat"], sel["fold"], sel["value"], sel["fit_seconds"], stuck)
        }
    return out


def summary(runs: Path, dataset: str, model: str, header: str) -> str:
    import numpy as np

    from spatiomol.reports.stats import paired_test

    found = scores(runs, dataset, model)
    lines = [
        f"# Tokenisation (Fig. 8): {model} on {dataset}",
        "",
        header,
        "",
        "| gene order | ALiBi: test r, mean ± SD (n) | no ALiBi: test r, mean ± SD (n) | CPU s / fit | not trained |",
        "|---|---|---|---|---|",
    ]
    for order in ORDERS:
        cols, seconds, stuck = [], [], 0
        for alibi in (True, False):
            cell = found.get((order, alibi), {})
            cols.append(harness.fmt([v for v, _, _ in cell.values()]))
            seconds += [s for _, s, _ in cell.values()]
            stuck += sum(k for _, _, k in cell.values())
        fit = f"{np.mean(seconds):.0f}" if seconds else "—"
        lines.append(f"| {order} | {cols[0]} | {cols[1]} | {fit} | {stuck} of {len(seconds)} |")

    def paired(a: tuple[str, bool], b: tuple[str, bool]) -> str:
        left, right = found.get(a, {}), found.get(b, {})
        keys = sorted(set(left) & set(right))
        if len(keys) < 2:
            return "—"
        x = np.array([left[k][0] for k in keys])
        y = np.array([right[k][0] for k in keys])
        test = paired_test(x, y, n_permutations=10000, seed=0)
        return (
            f"{test['mean_diff']:+.3f} ± {test['sd_diff']:.3f} ({test['n']}); ahead on {int(np.sum(x > y))}; "
            f"sign-flip p = {test['signflip_p']:.3g}"
        )

    lines += [
        "",
        "Paired over the same splits (first − second: mean ± SD (n); splits where the first is ahead; "
        "exact sign-flip p):",
        "",
        "| comparison | difference in test r |",
        "|---|---|",
    ]
    for order, alibi in cells():
        if order != REFERENCE[0]:  # within the reference's order, the ALiBi rows below say it
            lines.append(
                f"| {cell_name(order, alibi)} − {cell_name(*REFERENCE)} | {paired((order, alibi), REFERENCE)} |"
            )
    for order in ORDERS:
        lines.append(
            f"| {cell_name(order, True)} − {cell_name(order, False)} | {paired((order, True), (order, False))} |"
        )
    total = sum(s for cell in found.values() for _, s, _ in cell.values())
    lines += [
        "",
        f"Fit time of the stored runs: {total / 3600:.2f} h (wall seconds of single-thread fits ≈ CPU seconds).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = harness.make_parser(__doc__, study=True)
    parser.add_argument("--dataset", default="hcp-s100")
    parser.add_argument("--model", default="smt", help="smt (default) or smt-cls")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="epoch budget (default: the model's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/tokenisation"), help="folder of the cells' run folders")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--cells",
        default=",".join(cell_name(*c) for c in cells()),
        help="comma-separated cells to run (default: all six, e.g. tss-alibi,random-alibi,tss-no-alibi); "
        "the table shows every cell with stored runs",
    )
    args = harness.parse_args(parser, argv, QUICK)
    chosen = [c for c in cells() if cell_name(*c) in set(args.cells.split(","))]
    unknown = set(args.cells.split(",")) - {cell_name(*c) for c in cells()}
    if unknown:
        parser.error(f"--cells: unknown {sorted(unknown)}; known: {[cell_name(*c) for c in cells()]}")
    runs = args.out / "runs" if args.quick else args.runs
    table = args.out / f"{harness.table_stem('tokenisation', args.dataset)}.md"
    budget = f"epochs {args.epochs}" if args.epochs else "the model's default budget"
    header = (
        f"Generated by `benchmarks/studies/tokenisation.py` ({args.model} at its shipped defaults, {budget}, no inner "
        f"search; random splits, {args.repeats} × 4 folds, seed 0; each cell a `spatiomol run` grid under "
        f"`{runs}/{args.dataset}/`). {harness.machine_header(packages=('torch',))}"
    )

    def measure(checkpoint) -> None:
        from spatiomol.experiments.runner import run_experiment

        for order, alibi in chosen:
            cfg = config(args.dataset, args.model, order, alibi, args.repeats, args.epochs)
            summary_ = run_experiment(
                cfg, runs / args.dataset / cell_name(order, alibi), jobs=args.jobs, progress=False
            )
            if summary_.failed:
                print(f"{cell_name(order, alibi)}: {len(summary_.failed)} runs failed (see the folder's failures/)")
            checkpoint()

    return harness.run_study(
        table,
        lambda: summary(runs, args.dataset, args.model, header),
        None if args.summary_only else measure,
    )


if __name__ == "__main__":
    sys.exit(main())
