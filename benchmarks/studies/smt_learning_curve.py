"""Learning curve (issue 11): does the SMT's gap to the MLP shrink as the training set grows?

The ablation (`benchmarks/smt_ablation.py`) found no switch that closes the gap on
hcp-s100, whose 114 regions give ~6,400 edges against the paper's ~104,000. If the gap is
a matter of data size, it must shrink as the training set grows within one connectome.
This benchmark measures that: for every outer split it keeps a nested, seeded subset of
the outer training regions — fractions 0.5, 0.75 and 1 of them (each subset contains the
smaller ones) — and fits every model on it at its shipped default configuration, as the
runner fits an untuned model (neural models: the whole epoch budget on the subset, no
validation regions; the bilinear CM with its nested alpha search), scoring all of them on
the same, untouched test edges.

Table: test Pearson r per fraction and model, mean ± SD (n), and the paired gaps of issue
11's goal per fraction, plus the change of each gap from the smallest to the full
training set on the same split (positive: the first model gains on the second as data grow).

Resumable like the ablation: every fit is appended atomically to
``benchmarks/results/smt_learning_curve.csv`` and skipped when its (split, fraction,
model, configuration) is already there. About 50 CPU-minutes on hcp-s100 for 2 repeats x 4
random folds, single thread:
``nice -n 10 .venv/bin/python benchmarks/smt_learning_curve.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

import numpy as np
import torch

from smt_ablation import RESULTS, append_row, config_id, fit_one, fmt, load_brain, read_rows, shipped_config
from spatiomol.atomic import atomic_path
from spatiomol.data.brain import Brain
from spatiomol.evaluation.splits import Split, make_splits
from spatiomol.models import registry

MODELS = ("smt", "smt-cls", "mlp", "mlp-coords", "cm")
FRACTIONS = (0.5, 0.75, 1.0)
#: issue 11's goal comparisons (first − second)
GAPS = (("smt", "mlp"), ("smt-cls", "mlp-coords"), ("smt", "cm"), ("smt-cls", "cm"), ("mlp", "cm"))
FIELDS = (
    "config",
    "dataset",
    "kind",
    "repeat",
    "fold",
    "fraction",
    "n_train_regions",
    "n_train_edges",
    "model",
    "r",
    "mse",
    "val_pearson",
    "refit_epochs",
    "cpu_s",
    "wall_s",
)


def training_subset(brain: Brain, split: Split, fraction: float, seed: int = 0) -> tuple[Brain, Split]:
    """The brain without the dropped training regions, and ``split`` re-indexed into it.

    Keeps the first ``ceil(fraction · n_train)`` of a seeded permutation of the split's
    training regions (so the subsets of one split are nested) and every test region, so
    the test edges and their targets are those of the full split.
    """
    if fraction >= 1.0:
        return brain, split
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split.repeat, split.fold, 7)))
    order = rng.permutation(split.train)
    train = np.sort(order[: int(np.ceil(fraction * split.train.size))])
    kept = np.union1d(train, split.test)
    new_index = {int(old): new for new, old in enumerate(kept)}
    reindex = lambda regions: np.array([new_index[int(k)] for k in regions], dtype=np.int64)  # noqa: E731
    source = None if split.source is None else new_index[int(split.source)]
    return brain.subset_regions(kept), replace(split, train=reindex(train), test=reindex(split.test), source=source)


def summarise(rows: list[dict[str, str]], header: str) -> str:
    def scores(model: str, fraction: float) -> dict[tuple[str, str], float]:
        return {
            (r["repeat"], r["fold"]): float(r["r"])
            for r in rows
            if r["model"] == model and float(r["fraction"]) == fraction
        }

    fractions = sorted({float(r["fraction"]) for r in rows})
    lines = [header, "", "| training fraction | training regions | training edges | "]
    lines[-1] += " | ".join(registry.display_name(m) for m in MODELS) + " |"
    lines.append("|---:|---:|---:|" + "---|" * len(MODELS))
    for fraction in fractions:
        of_fraction = [r for r in rows if float(r["fraction"]) == fraction]
        regions = np.mean([int(r["n_train_regions"]) for r in of_fraction])
        edges = np.mean([int(r["n_train_edges"]) for r in of_fraction])
        cells = [fmt(list(scores(m, fraction).values())) for m in MODELS]
        lines.append(f"| {fraction:g} | {regions:.0f} | {edges:,.0f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired gaps (first − second) on the same splits, mean ± SD (n); the last column is the "
        f"change of the gap from fraction {fractions[0]:g} to {fractions[-1]:g} on the same split.",
        "",
        "| comparison | " + " | ".join(f"fraction {f:g}" for f in fractions) + " | change of the gap |",
        "|---|" + "---|" * (len(fractions) + 1),
    ]
    for first, second in GAPS:
        gaps = {}
        for fraction in fractions:
            a, b = scores(first, fraction), scores(second, fraction)
            gaps[fraction] = {k: a[k] - b[k] for k in a if k in b}
        low, high = gaps[fractions[0]], gaps[fractions[-1]]
        change = [high[k] - low[k] for k in high if k in low]
        cells = [fmt(list(gaps[f].values())) for f in fractions]
        name = f"{registry.display_name(first)} − {registry.display_name(second)}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fmt(change)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="hcp-s100")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--summary-only", action="store_true", help="rewrite the Markdown table and exit")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if any(not 0 < f <= 1 for f in args.fractions):
        raise ValueError(f"--fractions must lie in (0, 1], got {args.fractions}")

    name = "smt_learning_curve" if args.dataset == "hcp-s100" else f"smt_learning_curve_{args.dataset}"
    csv_path, md_path = RESULTS / f"{name}.csv", RESULTS / f"{name}.md"
    brain = load_brain(args.dataset)
    configs = {m: shipped_config(m) if registry.spec(m).family == "nonlinear" else None for m in MODELS}
    config_ids = {m: config_id(m, c) for m, c in configs.items()}

    def rows_now() -> list[dict[str, str]]:
        return [r for r in read_rows(csv_path) if config_ids.get(r["model"]) == r["config"]]

    def write_table() -> None:
        header = (
            f"# SMT learning curve: {brain.name} ({brain.n_regions} regions, {brain.n_genes} genes)\n\n"
            "Generated by `benchmarks/smt_learning_curve.py` (random splits `make_splits(random, "
            f"{args.repeats}, n_folds={args.folds}, seed=0)`; per split, nested seeded subsets of the outer "
            "training regions; shipped default configurations, full default budgets, neural models fitted as "
            "the runner fits an untuned model (the whole budget on the subset), the CM with its nested alpha search; "
            "test Pearson r on the split's full test edges; CPU, 1 thread). Machine: "
            f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs."
        )
        with atomic_path(md_path) as tmp:
            tmp.write_text(summarise(rows_now(), header))

    if args.summary_only:
        write_table()
        print(md_path.read_text())
        return 0
    done = {(r["repeat"], r["fold"], float(r["fraction"]), r["model"]) for r in rows_now()}
    splits = make_splits(brain, "random", n_repeats=args.repeats, n_folds=args.folds, seed=0)
    for split in splits:
        for fraction in sorted(args.fractions):
            sub_brain, subset = training_subset(brain, split, fraction)
            n_edges = subset.train.size * (subset.train.size - 1) // 2
            for model in MODELS:
                if (str(split.repeat), str(split.fold), fraction, model) in done:
                    continue
                start = time.process_time()
                result = fit_one(sub_brain, subset, model, configs[model], validation=configs[model] is None)
                append_row(
                    csv_path,
                    {
                        "config": config_ids[model],
                        "dataset": brain.name,
                        "kind": split.kind,
                        "repeat": split.repeat,
                        "fold": split.fold,
                        "fraction": fraction,
                        "n_train_regions": subset.train.size,
                        "n_train_edges": n_edges,
                        "model": model,
                        **result,
                    },
                    fields=FIELDS,
                )
                print(
                    f"r{split.repeat} f{split.fold} x{fraction:g} {model}: r = {result['r']:.3f} "
                    f"({time.process_time() - start:.0f} CPU s)",
                    flush=True,
                )
            write_table()
    write_table()
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
