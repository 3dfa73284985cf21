"""Learning curve (issue 11): does the SMT's gap to the MLP shrink as the training set grows?

The ablation (`benchmarks/studies/smt_ablation.py`) found no switch that closes the gap on
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
``nice -n 10 .venv/bin/python benchmarks/studies/smt_learning_curve.py``
(``--quick``: the MLP and the CM on two folds at two epochs, in a temporary folder).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from harness import append_row, fmt, load_brain, read_rows
from spatiomol.data.brain import Brain
from spatiomol.evaluation.splits import Split, make_splits
from spatiomol.models import registry
from studies.smt_ablation import config_id, fit_one, shipped_config

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


#: ``--quick``: two models on two folds, two fractions, two epochs
QUICK = {
    "dataset": harness.QUICK_BRAIN,
    "repeats": 1,
    "folds": 2,
    "fractions": [0.5, 1.0],
    "models": ["mlp", "cm"],
    "max_epochs": 2,
}


def parse(argv: list[str] | None) -> Any:
    parser = harness.make_parser(__doc__, study=True)
    parser.add_argument("--dataset", default="hcp-s100")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models to fit")
    parser.add_argument("--max-epochs", type=int, help="cap on the neural models' epoch budgets (smoke runs)")
    args = harness.parse_args(parser, argv, quick=QUICK)
    if any(not 0 < f <= 1 for f in args.fractions):
        raise ValueError(f"--fractions must lie in (0, 1], got {args.fractions}")
    return args


def model_configs(max_epochs: int | None) -> dict[str, dict[str, Any] | None]:
    """Each model's shipped configuration (None: the CM, with its nested alpha search)."""
    configs = {m: shipped_config(m) if registry.spec(m).category == "nonlinear" else None for m in MODELS}
    if max_epochs is not None:
        configs = {
            m: c if c is None else {**c, "epochs": min(int(c["epochs"]), max_epochs)} for m, c in configs.items()
        }
    return configs


def header(brain: Brain, args: Any) -> str:
    budget = f"epoch budgets capped at {args.max_epochs}" if args.max_epochs else "full default budgets"
    return (
        f"# SMT learning curve: {brain.name} ({brain.n_regions} regions, {brain.n_genes} genes)\n\n"
        "Generated by `benchmarks/studies/smt_learning_curve.py` (random splits `make_splits(random, "
        f"{args.repeats}, n_folds={args.folds}, seed=0)`; per split, nested seeded subsets of the outer "
        f"training regions; shipped default configurations, {budget}, neural models fitted as "
        "the runner fits an untuned model (the whole budget on the subset), the CM with its nested alpha search; "
        f"test Pearson r on the split's full test edges; CPU, 1 thread). {harness.machine_header(load=False)}"
    )


def measure(brain: Brain, args: Any, configs: dict, config_ids: dict, csv_path: Path, done: set, checkpoint) -> None:
    """Fit every (split, fraction, model) not stored yet; rewrite the table after each fraction."""
    for split in make_splits(brain, "random", n_repeats=args.repeats, n_folds=args.folds, seed=0):
        for fraction in sorted(args.fractions):
            sub_brain, subset = training_subset(brain, split, fraction)
            n_edges = subset.train.size * (subset.train.size - 1) // 2
            for model in args.models:
                if (str(split.repeat), str(split.fold), fraction, model) in done:
                    continue
                start = time.process_time()
                result = fit_one(sub_brain, subset, model, configs[model], validation=configs[model] is None)
                record = {"config": config_ids[model], "dataset": brain.name, "kind": split.kind}
                record |= {"repeat": split.repeat, "fold": split.fold, "fraction": fraction}
                record |= {"n_train_regions": subset.train.size, "n_train_edges": n_edges, "model": model}
                append_row(csv_path, {**record, **result}, FIELDS)
                print(
                    f"r{split.repeat} f{split.fold} x{fraction:g} {model}: r = {result['r']:.3f} "
                    f"({time.process_time() - start:.0f} CPU s)",
                    flush=True,
                )
            checkpoint()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    name = harness.table_stem("smt_learning_curve", args.dataset)
    csv_path, md_path = args.out / f"{name}.csv", args.out / f"{name}.md"
    brain = load_brain(args.dataset)
    configs = model_configs(args.max_epochs)
    config_ids = {m: config_id(m, c) for m, c in configs.items()}

    def rows_now() -> list[dict[str, str]]:
        return [r for r in read_rows(csv_path) if config_ids.get(r["model"]) == r["config"]]

    def run(checkpoint) -> None:
        done = {(r["repeat"], r["fold"], float(r["fraction"]), r["model"]) for r in rows_now()}
        measure(brain, args, configs, config_ids, csv_path, done, checkpoint)

    def summary() -> str:
        return summarise(rows_now(), header(brain, args))

    return harness.run_study(md_path, summary, None if args.summary_only else run)


if __name__ == "__main__":
    raise SystemExit(main())
