"""Selection rules (issue 11): does nested selection pick the neural candidates it should?

On hcp-s400 nested selection lowered the SMT w/ [CLS] against its untuned default on 6 of 7
splits, choosing smaller configurations, while the MLP w/ coords gained
(docs/models_neural.md). The shipped rule scores each candidate by an *early-stopped* fit
on the inner-training regions (lowest validation MSE wins) and then refits the winner for
its *whole epoch budget* on all training regions (``refit_epochs="budget"``): candidates
are ranked under a training rule that is not the one the refit uses. This benchmark
measures whether a rule decided in advance does better. The rules, fixed before any
number was seen:

- ``es-mse`` (shipped): early-stopped inner fits, lowest validation MSE;
- ``es-pearson``: the same fits, highest validation Pearson r (the reported metric);
- ``budget-mse``: inner fits trained as the refit is (the whole budget at a constant
  learning rate, last weights; ``early_stopping=False``), lowest validation MSE;
- ``budget-pearson``: the same fits, highest validation r.

References, not rules: ``default`` (the untuned default, what the runner fits without
tuning) and ``oracle`` (the candidate with the best *test* r: an upper bound that uses the
test edges, reported only to show how much any rule could gain).

Per outer split and model, every candidate of the product's search
(`spatiomol.evaluation.tuning.select_and_fit`: the default plus ``n_configs`` sampled
configurations, seed 0) is refitted on all outer training regions for its whole budget and
scored on the split's test edges, so every rule's outcome is the test r of the candidate it
picks. The two `select_and_fit` calls are the product's own code; the candidates they
refit are not refitted again (a check records that a candidate refitted by both calls gives
the same test r).

Resumable: each (split, model) appends its candidate rows atomically to
``benchmarks/results/selection_rules.csv``. About 20 CPU-minutes per split for the two goal
models on hcp-s100 (single thread):
``nice -n 10 .venv/bin/python benchmarks/studies/selection_rules.py --repeats 1``
(``--quick``: the MLP w/ coords on two folds at two epochs, in a temporary folder).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from harness import append_rows, fmt, load_brain, read_rows
from spatiomol.data.brain import Brain
from spatiomol.evaluation.metrics import pearson_r
from spatiomol.evaluation.splits import make_splits
from spatiomol.evaluation.tuning import select_and_fit
from spatiomol.models import registry

MODELS = ("smt-cls", "mlp-coords")
#: the rules compared (see module docstring): name → (inner fit, score column, best is lowest)
RULES: dict[str, tuple[str, str, bool]] = {
    "es-mse": ("es", "es_val_mse", True),
    "es-pearson": ("es", "es_val_r", False),
    "budget-mse": ("budget", "budget_val_mse", True),
    "budget-pearson": ("budget", "budget_val_r", False),
}
SHIPPED = "es-mse"
#: the model's own hyperparameters held fixed in every fit: the CPU at one thread
RUN_PARAMS: dict[str, Any] = {"device": "cpu", "num_threads": 1, "verbose": False}
FIELDS = (
    "dataset",
    "kind",
    "repeat",
    "fold",
    "model",
    "n_configs",
    "candidate",
    "is_default",
    "params",
    "es_val_mse",
    "es_val_r",
    "budget_val_mse",
    "budget_val_r",
    "test_r",
    "refit_check",
    "unit_cpu_s",
)


def test_r(brain: Brain, split: Any, fitted: Any) -> float:
    i, j = brain.pairs(split.test)
    return pearson_r(brain.targets(i, j), fitted.predict(brain, i, j))


def _without(params: str, key: str) -> str:
    return json.dumps({k: v for k, v in json.loads(params).items() if k != key}, sort_keys=True)


def candidate_rows(
    brain: Brain, split: Any, model: str, n_configs: int, run_params: dict[str, Any] = RUN_PARAMS
) -> list[dict[str, Any]]:
    """Every candidate's validation scores under both inner-fit rules and its test r."""
    start = time.process_time()
    shipped, _, es = select_and_fit(model, brain, split, n_configs=n_configs, seed=0, model_params=run_params)
    budget_model, _, budget = select_and_fit(
        model, brain, split, n_configs=n_configs, seed=0, model_params={**run_params, "early_stopping": False}
    )
    es_params = [_without(p, "early_stopping") for p in es["params"]]
    if es_params != [_without(p, "early_stopping") for p in budget["params"]]:
        raise RuntimeError(f"{model} r{split.repeat} f{split.fold}: the two searches tried different candidates")
    tested = {int(es.loc[es["chosen"], "candidate"].iloc[0]): test_r(brain, split, shipped)}
    budget_best = int(budget.loc[budget["chosen"], "candidate"].iloc[0])
    budget_r = test_r(brain, split, budget_model)
    # refit_epochs="budget": a refit takes nothing from its selection fit, so both calls'
    # refits of one candidate are the same fit; record the difference when they coincide
    check = abs(budget_r - tested[budget_best]) if budget_best in tested else float("nan")
    tested.setdefault(budget_best, budget_r)
    for index, params in enumerate(es["params"]):
        if index not in tested:
            fitted = registry.make_model(model, **json.loads(params)).fit(brain, split.train)
            tested[index] = test_r(brain, split, fitted)
    cpu = time.process_time() - start
    return [
        {
            "dataset": brain.name,
            "kind": split.kind,
            "repeat": split.repeat,
            "fold": split.fold,
            "model": model,
            "n_configs": n_configs,
            "candidate": index,
            "is_default": index == 0,
            "params": es_params[index],
            "es_val_mse": es["val_mse"].iloc[index],
            "es_val_r": es["val_pearson"].iloc[index],
            "budget_val_mse": budget["val_mse"].iloc[index],
            "budget_val_r": budget["val_pearson"].iloc[index],
            "test_r": tested[index],
            "refit_check": check,
            "unit_cpu_s": cpu,
        }
        for index in range(len(es))
    ]


def picks(candidates: list[dict[str, str]]) -> dict[str, int]:
    """The candidate each rule (and each reference) picks on one (split, model)."""
    chosen = {}
    for rule, (_, column, lowest) in RULES.items():
        scores = np.array([float(c[column]) for c in candidates])
        scores = np.where(np.isfinite(scores), scores, np.inf if lowest else -np.inf)
        chosen[rule] = int(np.argmin(scores) if lowest else np.argmax(scores))  # ties: the earlier, default first
    chosen["default"] = 0
    chosen["oracle"] = int(np.argmax([float(c["test_r"]) for c in candidates]))
    return chosen


def candidate_lines(rows: list[dict[str, str]]) -> list[str]:
    """One line per candidate of each model: what it changes from the default."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        first = sorted((r for r in rows if r["model"] == model), key=lambda c: (c["repeat"], c["fold"]))
        seen = {}
        for row in first:
            seen.setdefault(int(row["candidate"]), row["params"])
        default = json.loads(seen[0])
        for index, params in sorted(seen.items()):
            changed = {k: v for k, v in json.loads(params).items() if default.get(k) != v}
            lines.append(f"- {registry.display_name(model)} {index}: " + (json.dumps(changed) if index else "default"))
    return lines


def summarise(rows: list[dict[str, str]], header: str) -> str:
    units: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in rows:
        units.setdefault((row["model"], row["kind"], row["repeat"], row["fold"]), []).append(row)
    names = [*RULES, "default", "oracle"]
    lines = [
        header,
        "",
        "Test Pearson r of the candidate each rule picks, mean ± SD (n splits); Δ: paired against the "
        f"shipped rule ({SHIPPED}) on the same splits, with the number of splits where the rule is "
        "higher / lower and the Wilcoxon signed-rank p; 'picks default': on how many splits the rule "
        "chose the default configuration; 'val ρ': mean Spearman correlation, over the candidates of "
        "a split, between the rule's validation score and the test r.",
        "",
        "| model | rule | test r | Δ vs shipped | higher / lower | Wilcoxon p | picks default | val ρ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        keys = sorted(k for k in units if k[0] == model)
        chosen = {k: picks(sorted(units[k], key=lambda c: int(c["candidate"]))) for k in keys}
        ordered = {k: sorted(units[k], key=lambda c: int(c["candidate"])) for k in keys}
        value = {rule: [float(ordered[k][chosen[k][rule]]["test_r"]) for k in keys] for rule in names}
        for rule in names:
            delta = np.array(value[rule]) - np.array(value[SHIPPED])
            moved = delta[np.abs(delta) > 0]
            p = stats.wilcoxon(moved).pvalue if rule != SHIPPED and moved.size else float("nan")
            rho = "—"
            if rule in RULES:
                column, lowest = RULES[rule][1], RULES[rule][2]
                rhos = []
                for k in keys:
                    score = np.array([float(c[column]) for c in ordered[k]])
                    test = np.array([float(c["test_r"]) for c in ordered[k]])
                    rhos.append(stats.spearmanr(-score if lowest else score, test).statistic)
                rho = f"{np.nanmean(rhos):+.2f}"
            lines.append(
                f"| {registry.display_name(model)} | {rule} | {fmt(value[rule])} | "
                + ("—" if rule == SHIPPED else fmt(list(delta)))
                + f" | {int((delta > 0).sum())} / {int((delta < 0).sum())} | "
                + ("—" if np.isnan(p) else f"{p:.3f}")
                + f" | {sum(chosen[k][rule] == 0 for k in keys)} of {len(keys)} | {rho} |"
            )
    checks = [float(units[k][0]["refit_check"]) for k in units if units[k][0]["refit_check"] not in ("", "nan")]
    cpu = [float(units[k][0]["unit_cpu_s"]) for k in units]
    lines += [
        "",
        "Per split: the candidate each rule picked (0 = the default) and its test r.",
        "",
        "| model | split | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for key in sorted(units):
        ordered = sorted(units[key], key=lambda c: int(c["candidate"]))
        chosen = picks(ordered)
        cells = [f"{chosen[n]}: {float(ordered[chosen[n]]['test_r']):.3f}" for n in names]
        lines.append(f"| {registry.display_name(key[0])} | {key[1]} r{key[2]} f{key[3]} | " + " | ".join(cells) + " |")
    lines += ["", "Candidates (same on every split; seed 0):", "", *candidate_lines(rows)]
    lines += [
        "",
        f"Refit check (a candidate refitted by both searches): max |Δ test r| = "
        f"{max(checks) if checks else float('nan'):.2g} over {len(checks)} coincident refits. "
        f"CPU per (split, model): {np.mean(cpu):.0f} s mean.",
    ]
    return "\n".join(lines) + "\n"


#: ``--quick``: one model on two folds, the fewest candidates, two epochs per fit
QUICK = {"dataset": harness.QUICK_BRAIN, "repeats": 1, "folds": 2, "models": ["mlp-coords"], "epochs": 2}


def parse(argv: list[str] | None) -> Any:
    parser = harness.make_parser(__doc__, study=True)
    parser.add_argument("--dataset", default="hcp-s100")
    parser.add_argument("--kind", default="random", choices=["random", "spatial"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--n-configs", type=int, default=3, help="sampled candidates besides the default")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--epochs", type=int, help="every candidate's epoch budget (smoke runs; default: its own)")
    return harness.parse_args(parser, argv, quick=QUICK)


def header(brain: Brain, args: Any) -> str:
    budgets = f"epoch budgets fixed at {args.epochs}" if args.epochs else "shipped defaults and budgets"
    return (
        f"# Selection rules: {brain.name} ({brain.n_regions} regions, {brain.n_genes} genes), "
        f"{args.kind} splits\n\n"
        "Generated by `benchmarks/studies/selection_rules.py` (splits `make_splits("
        f"{args.kind}, n_repeats, n_folds={args.folds}, seed=0)`; the product's search, default plus "
        f"{args.n_configs} sampled candidates, seed 0; {budgets}; every candidate refitted "
        f"for its whole budget on all training regions; CPU, 1 thread). {harness.machine_header(load=False)}"
    )


def measure(brain: Brain, args: Any, csv_path: Path, done: set, checkpoint) -> None:
    """Every (split, model) not stored yet: its candidates' rows, written together."""
    run_params = RUN_PARAMS if args.epochs is None else {**RUN_PARAMS, "epochs": args.epochs}
    for split in make_splits(brain, args.kind, n_repeats=args.repeats, n_folds=args.folds, seed=0):
        for model in args.models:
            if (model, split.repeat, split.fold) in done:
                continue
            rows = candidate_rows(brain, split, model, args.n_configs, run_params)
            # one write per (split, model): a kill never leaves a unit with some candidates only
            append_rows(csv_path, rows, FIELDS)
            chosen = picks([{k: str(v) for k, v in row.items()} for row in rows])
            print(
                f"r{split.repeat} f{split.fold} {model}: "
                + ", ".join(f"{rule} {rows[c]['test_r']:.3f}" for rule, c in chosen.items())
                + f" ({rows[0]['unit_cpu_s']:.0f} CPU s)",
                flush=True,
            )
            checkpoint()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    name = harness.table_stem("selection_rules", args.dataset)
    csv_path, md_path = args.out / f"{name}.csv", args.out / f"{name}.md"
    brain = load_brain(args.dataset)

    def rows_now() -> list[dict[str, str]]:
        return [r for r in read_rows(csv_path) if r["kind"] == args.kind and int(r["n_configs"]) == args.n_configs]

    def run(checkpoint) -> None:
        done = {(r["model"], int(r["repeat"]), int(r["fold"])) for r in rows_now()}
        measure(brain, args, csv_path, done, checkpoint)

    def summary() -> str:
        return summarise(rows_now(), header(brain, args))

    return harness.run_study(md_path, summary, None if args.summary_only else run)


if __name__ == "__main__":
    raise SystemExit(main())
