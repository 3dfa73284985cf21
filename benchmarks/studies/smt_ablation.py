"""SMT ablation (issue 11): why does the SMT trail the MLP? Each candidate cause is a switch.

Rows: the SMT and the SMT w/ [CLS] at their default configuration (``models/configs``),
then each switch alone on top of that default; the MLP and the MLP w/ coords at their
defaults and at the reference implementation's latest best MLP configuration
(``authors-best``: hidden [256, 128], dropout 0.1, lr 9e-5, batch 512, 125 epochs), and
the closed-form bilinear Connectome Model (``cm``, with its cheap nested alpha search),
as reference rows (the MLPs also with ``refit=replay``, which costs one more refit).
Switches (see `spatiomol.models.training` and `spatiomol.models.smt`):

- ``min_steps=1000``: size-aware step budget (epoch budget and patience raised so that a
  fit makes ≥ 1,000 optimiser steps; hcp-s100's inner training set gives ~5 SMT steps
  per epoch, so the default 90 epochs make ~450);
- ``pair_orders=both``: both orders of every edge as separate samples (reference code);
- ``refit=replay``: the refit repeats the selection run's plateau LR halvings;
- ``alibi=authors``: slopes ``1/2^(i // (h // 2))`` = [1, 1, 1/2, 1/2];
- ``no-alibi``: no attention bias at all (the paper's claim C5, ALiBi ≥ no ALiBi);
- ``region_blocks``: batches of pairs among a few regions (`spatiomol.models.training`), a
  speed lever whose cost in accuracy this measures; ``blocks-1024``: the same at batch 1024
  (in Table 4's grid), the fastest SMT setting per epoch;
- ``tokens=auto``: ``k = min(60, g // 64)`` genes per token (hcp-s100: k = 12, 68 tokens);
- ``post-norm``: post-norm/ReLU encoder blocks (reference code);
- ``small`` (not among the issue's candidates; capacity): the smallest, most regularised
  values of Table 4's grid — d_model 64, 2 heads, 2 layers, d_out 5, decoder [256, 128],
  dropout 0.3, transformer dropout 0.2, weight decay 1e-3.

Protocol per fit, identical for every row: `spatiomol.evaluation.tuning.select_and_fit`
with the row's full configuration fixed (so no search: one candidate), i.e. fit on the
inner-training regions with early stopping on the validation regions, then refit on all
training regions with the candidate's ``refit_params``; score = Pearson r over the test
edges. Splits: `make_splits(brain, kind, n_repeats, n_folds=4, seed=0)`, random and
spatial. ``device="cpu"``, ``num_threads=1``, seed 0 everywhere. Full default budgets
unless ``--patience`` (early-stopping patience of every neural row) or ``--max-epochs``
(cap on every neural row's epoch budget) reduce them alike for every row; the table
states the budget used.

Resumable: every finished fit is appended (atomically) as one row of
``benchmarks/results/<name>.csv``, with the budget it ran under and a hash of the row's
full configuration; a fit is skipped when the same split, row and configuration is
already there (so changed defaults or budgets are measured afresh, never mixed). The Markdown table
(``benchmarks/results/<name>.md``) is rewritten after each split from all rows so far:
mean ± SD (n) of test r per split kind, and the paired difference to the same model's
default on the same splits. Splits run in order (repeat, fold), all rows per split, so a
partial run is balanced.

Run (about 1 CPU-hour on hcp-s100 at full budgets, single thread):
``nice -n 10 .venv/bin/python benchmarks/studies/smt_ablation.py``;
``--dataset hcp-s100-cortex`` uses the 100 cortical regions of hcp-s100;
``--rows`` picks rows by id (see ``--list``); ``--quick``: four MLP/CM rows on two random
folds at two epochs, in a temporary folder (a smoke check).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from harness import append_row, fmt, load_brain, read_rows
from spatiomol.data.brain import Brain
from spatiomol.evaluation.metrics import mse, pearson_r
from spatiomol.evaluation.splits import make_splits
from spatiomol.evaluation.tuning import select_and_fit
from spatiomol.hashing import json_sha256
from spatiomol.models import registry

FIELDS = (
    "budget",
    "config",
    "dataset",
    "kind",
    "repeat",
    "fold",
    "row",
    "model",
    "switch",
    "r",
    "mse",
    "val_pearson",
    "refit_epochs",
    "cpu_s",
    "wall_s",
)

#: switch id → hyperparameters it changes (applied on top of the model's default)
#: the SMT family's shipped training protocol, as a switch over `ABLATION_BASELINE`
SHIPPED_SMT: dict[str, Any] = {"hidden_norm": "layer", "batching": "region_blocks"}
SWITCHES: dict[str, dict[str, Any]] = {
    "default": {},
    "min_steps=1000": {"min_steps": 1000},
    "pair_orders=both": {"pair_orders": "both"},
    "refit=replay": {"refit_schedule": "replay"},
    "alibi=authors": {"alibi_slopes": "authors"},
    "no-alibi": {"use_alibi": False},
    # a speed lever (issue 11): batches of pairs among few regions, so fewer region
    # encodings per step; measured here for its effect on accuracy
    "region_blocks": {"batching": "region_blocks"},
    # the SMT's fast configuration (benchmarks/results/neural_throughput_epochs.md): region
    # blocks at batch 1024, a size within Table 4's grid
    "blocks-1024": {"batching": "region_blocks", "batch_size": 1024},
    "tokens=auto": {"token_encoder_dim": "auto"},
    # LayerNorm instead of BatchNorm in the decoder's (the MLP's) hidden blocks: no running
    # statistics, so prediction computes what training computed
    "layer-norm": {"hidden_norm": "layer"},
    # early stopping on validation 1 − Pearson r instead of MSE (a near-constant early
    # output can have the lowest MSE, and the refit then trains one epoch)
    "pearson-stop": {"stop_metric": "pearson"},
    "layer-norm+pearson-stop": {"hidden_norm": "layer", "stop_metric": "pearson"},
    # the runner's untuned fit: no inner validation regions, so no early stopping and no
    # transferred epoch count; the whole epoch budget at a constant rate on all training regions
    "full-budget": {},
    "layer-norm+full-budget": {"hidden_norm": "layer"},
    # the whole budget with the learning rate annealed to zero (cosine) instead of constant: the
    # per-epoch curves (results/training_curves.md) peak and then sag at a constant rate
    "full-budget+cosine": {"lr_schedule": "cosine"},
    "layer-norm+full-budget+cosine": {"hidden_norm": "layer", "lr_schedule": "cosine"},
    # a 3× learning rate at the shipped defaults (the per-epoch curves still rise late in the budget)
    "full-budget+lr=3e-4": {"learning_rate": 3e-4},
    "layer-norm+full-budget+lr=3e-4": {"hidden_norm": "layer", "learning_rate": 3e-4},
    # the speed lever above at the shipped SMT defaults
    "layer-norm+full-budget+region_blocks": {"hidden_norm": "layer", "batching": "region_blocks"},
    # a wider region embedding at the shipped defaults: p = L·d_out is 140 on hcp-s100 (14
    # tokens) and 50 on hcp-s400 (5 tokens), against the paper's 1,230 (123 tokens) and the
    # MLP's 512-wide first layer; d_out 40 (beyond the paper's ≤ 10) makes p 560 on hcp-s100
    "layer-norm+full-budget+region_blocks+d_out=40": {**SHIPPED_SMT, "encoder_output_dim": 40},
    # a learned absolute embedding per gene-token position (beyond the paper): the value
    # projection is shared by all tokens and ALiBi gives only distances, so without it the
    # encoder cannot tell which bin of genes a token holds
    "layer-norm+full-budget+region_blocks+position": {**SHIPPED_SMT, "position_embedding": True},
    "post-norm": {"norm_first": False},
    # not one of the candidate causes: capacity, the smallest and most regularised
    # values of Table 4's grid (the SMT overfits within a few epochs on hcp-s100)
    "small": {
        "d_model": 64,
        "nhead": 2,
        "num_layers": 2,
        "encoder_output_dim": 5,
        "deep_hidden_dims": [256, 128],
        "transformer_dropout": 0.2,
        "dropout_rate": 0.3,
        "weight_decay": 1e-3,
    },
}


#: switches fitted as the runner fits an untuned model: `fit` on all training regions, no
#: validation regions (every switch named "…full-budget…"; the other rows: `select_and_fit` with one
#: candidate)
WITHOUT_VALIDATION = tuple(switch for switch in SWITCHES if "full-budget" in switch)

#: rows of tier 1 (run first over every split); every other row is tier 2
TIER1 = (
    "smt:default",
    "smt:pair_orders=both",
    "smt:refit=replay",
    "smt:alibi=authors",
    "smt:no-alibi",
    "smt:post-norm",
    "smt-cls:default",
    "smt-cls:refit=replay",
    "smt-cls:no-alibi",
    "mlp:default",
    "mlp:refit=replay",
    "mlp-coords:default",
    "mlp-coords:refit=replay",
    "mlp:authors-best",
    "mlp-coords:authors-best",
    "cm:searched",
)
#: the comparisons of issue 11's goal (first − second), at the default configurations
GOAL_PAIRS = (
    ("smt:default", "mlp:default"),
    ("smt-cls:default", "mlp-coords:default"),
    ("smt:default", "cm:searched"),
    ("smt-cls:default", "cm:searched"),
    ("mlp:default", "cm:searched"),
    ("mlp-coords:default", "cm:searched"),
    # the same comparisons with a training-protocol switch applied to both models
    ("smt:full-budget", "mlp:full-budget"),
    ("smt-cls:full-budget", "mlp-coords:full-budget"),
    ("smt:layer-norm+full-budget", "mlp:layer-norm+full-budget"),
    ("smt-cls:layer-norm+full-budget", "mlp-coords:layer-norm+full-budget"),
    # the shipped defaults (SMT family LayerNorm, MLP family BatchNorm, whole-budget refit)
    ("smt:layer-norm+full-budget", "mlp:full-budget"),
    ("smt-cls:layer-norm+full-budget", "mlp-coords:full-budget"),
    ("mlp:full-budget", "cm:searched"),
    ("mlp-coords:full-budget", "cm:searched"),
    ("smt:layer-norm+full-budget", "cm:searched"),
    ("smt-cls:layer-norm+full-budget", "cm:searched"),
    ("smt:layer-norm+full-budget+cosine", "mlp:full-budget+cosine"),
    ("smt-cls:layer-norm+full-budget+cosine", "mlp-coords:full-budget+cosine"),
    ("smt:layer-norm+full-budget+cosine", "mlp:full-budget"),
    ("smt-cls:layer-norm+full-budget+cosine", "mlp-coords:full-budget"),
    ("smt:layer-norm+full-budget+region_blocks", "mlp:full-budget"),
    ("smt-cls:layer-norm+full-budget+region_blocks", "mlp-coords:full-budget"),
    ("smt:layer-norm+full-budget+region_blocks", "cm:searched"),
    ("smt-cls:layer-norm+full-budget+region_blocks", "cm:searched"),
    # switches beyond the paper at the shipped SMT defaults: against the MLPs and the shipped SMT
    *(
        pair
        for extra in ("d_out=40", "position")
        for pair in (
            (f"smt:layer-norm+full-budget+region_blocks+{extra}", "mlp:full-budget"),
            (f"smt-cls:layer-norm+full-budget+region_blocks+{extra}", "mlp-coords:full-budget"),
            (f"smt:layer-norm+full-budget+region_blocks+{extra}", "smt:layer-norm+full-budget+region_blocks"),
            (f"smt-cls:layer-norm+full-budget+region_blocks+{extra}", "smt-cls:layer-norm+full-budget+region_blocks"),
        )
    ),
    ("smt:layer-norm+full-budget+lr=3e-4", "mlp:full-budget+lr=3e-4"),
    ("smt-cls:layer-norm+full-budget+lr=3e-4", "mlp-coords:full-budget+lr=3e-4"),
    ("smt:layer-norm+full-budget+lr=3e-4", "mlp:full-budget"),
    ("smt-cls:layer-norm+full-budget+lr=3e-4", "mlp-coords:full-budget"),
    ("smt:layer-norm", "mlp:layer-norm"),
    ("smt-cls:layer-norm", "mlp-coords:layer-norm"),
)
#: the reference implementation's latest best MLP configuration (its MLP sweep file)
MLP_AUTHORS_BEST = {
    "hidden_dims": [256, 128],
    "dropout_rate": 0.1,
    "learning_rate": 9e-5,
    "weight_decay": 1e-4,
    "batch_size": 512,
    "epochs": 125,
}


def default_rows() -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(row id, model, switch, overrides)`` in table order."""
    rows = []
    for model in ("smt", "smt-cls"):
        rows += [(f"{model}:{switch}", model, switch, params) for switch, params in SWITCHES.items()]
    for model in ("mlp", "mlp-coords"):
        rows += [(f"{model}:default", model, "default", {})]
        rows += [(f"{model}:refit=replay", model, "refit=replay", SWITCHES["refit=replay"])]
        rows += [(f"{model}:region_blocks", model, "region_blocks", SWITCHES["region_blocks"])]
        for switch in ("layer-norm", "pearson-stop", "layer-norm+pearson-stop", *WITHOUT_VALIDATION):
            rows += [(f"{model}:{switch}", model, switch, SWITCHES[switch])]
    for model in ("mlp", "mlp-coords"):
        rows += [(f"{model}:authors-best", model, "authors-best", MLP_AUTHORS_BEST)]
    rows.append(("cm:searched", "cm", "nested alpha search", {}))
    return rows


#: the baseline every switch is measured against: the default configuration of issue 11's
#: report (BatchNorm, early stopping on the MSE, refit for the early-stopped epoch count,
#: random batches), whatever the shipped defaults are now (models/configs: the SMT family with
#: LayerNorm and region blocks, every neural model refitted for its whole budget)
ABLATION_BASELINE: dict[str, Any] = {
    "hidden_norm": "batch",
    "stop_metric": "mse",
    "early_stopping": True,
    "refit_epochs": "best",
    "batching": "random",
}
#: hyperparameters that did not exist when the first rows were recorded, at the values that
#: reproduce the code those rows ran
LATE_KEYS: dict[str, Any] = {
    **{k: ABLATION_BASELINE[k] for k in ("hidden_norm", "stop_metric", "early_stopping", "refit_epochs")},
    "position_embedding": False,
}


def config_id(row_id: str, config: dict[str, Any] | None) -> str:
    """Short hash of a row's full configuration; `LATE_KEYS` at their early value are left
    out, so rows recorded before those hyperparameters existed still count."""
    if config is not None:
        config = {k: v for k, v in config.items() if not (k in LATE_KEYS and LATE_KEYS[k] == v)}
    return json_sha256({"row": row_id, "config": config})[:12]


def shipped_config(model: str) -> dict[str, Any]:
    """The model's shipped default configuration (models/configs), on the CPU at one thread."""
    default, _ = registry.search_space(model)
    return {**default, "device": "cpu", "num_threads": 1, "verbose": False}


def neural_config(
    model: str, overrides: dict[str, Any], max_epochs: int | None = None, patience: int | None = None
) -> dict[str, Any]:
    """The row's full configuration: default + `ABLATION_BASELINE` + switch (+ the budget reduction, if any)."""
    config = {**shipped_config(model), **ABLATION_BASELINE, **overrides}
    if max_epochs is not None:
        config["epochs"] = min(int(config["epochs"]), max_epochs)
    if patience is not None:
        config["patience"] = patience
    return config


def score(brain: Brain, split: Any, fitted: Any, chosen: dict, table: Any, start: tuple[float, float]) -> dict:
    i, j = brain.pairs(split.test)
    y, y_hat = brain.targets(i, j), fitted.predict(brain, i, j)
    return {
        "r": pearson_r(y, y_hat),
        "mse": mse(y, y_hat),
        "val_pearson": float(table[table["chosen"]].iloc[0]["val_pearson"]),
        "refit_epochs": chosen.get("epochs", ""),
        "cpu_s": time.process_time() - start[0],
        "wall_s": time.perf_counter() - start[1],
    }


def fit_one(
    brain: Brain, split: Any, model: str, config: dict[str, Any] | None, validation: bool = True
) -> dict[str, Any]:
    """One protocol fit (see module docstring) → scores and costs; ``config=None``: the
    model's own nested search (the bilinear reference); ``validation=False``: the runner's
    untuned fit (all training regions, the whole epoch budget)."""
    start = (time.process_time(), time.perf_counter())
    if not validation:
        fitted = registry.make_model(model, **config).fit(brain, split.train)
        chosen, table = config, pd.DataFrame({"chosen": [True], "val_pearson": [float("nan")]})
    elif config is None:
        fitted, chosen, table = select_and_fit(model, brain, split, n_configs=4, seed=0)
    else:
        fitted, chosen, table = select_and_fit(model, brain, split, seed=0, model_params=config)
    return score(brain, split, fitted, chosen, table, start)


def fit_default_and_replay(brain: Brain, split: Any, model: str, config: dict[str, Any]) -> tuple[dict, dict]:
    """The default row and the ``refit=replay`` row from one selection run.

    ``refit_schedule`` only changes what `refit_params` hands the refit, so the selection
    run of both rows is the same fit; the default row's refit is the replay row's without
    the learning-rate drops (what `select_and_fit` would refit for the default). CPU
    seconds: selection + one refit, for each row.
    """
    start = (time.process_time(), time.perf_counter())
    replay_config = {**config, "refit_schedule": "replay"}
    fitted, chosen, table = select_and_fit(model, brain, split, seed=0, model_params=replay_config)
    replay = score(brain, split, fitted, chosen, table, start)
    start = (time.process_time(), time.perf_counter())
    constant = {**chosen, "refit_schedule": config["refit_schedule"], "lr_drop_epochs": config["lr_drop_epochs"]}
    refit = registry.make_model(model, **constant).fit(brain, split.train)
    default = score(brain, split, refit, constant, table, start)
    # the two refits cost the same, so each row's cost is that of the selection run plus a refit
    default["cpu_s"], default["wall_s"] = replay["cpu_s"], replay["wall_s"]
    return default, replay


def summarise(rows: list[dict[str, str]], order: list[tuple[str, str, str, dict]], header: str) -> str:
    """Markdown: mean ± SD (n) of test r per kind, and the paired Δ to the model's default."""
    kinds = sorted({r["kind"] for r in rows}, key=["random", "spatial"].index)

    def scores(row_id: str, kind: str) -> dict[tuple[str, str], float]:
        return {(r["repeat"], r["fold"]): float(r["r"]) for r in rows if r["row"] == row_id and r["kind"] == kind}

    lines = [header, ""]
    columns = " | ".join(f"{k}: test r, mean ± SD (n) | {k}: Δ vs default, paired" for k in kinds)
    lines += [f"| model | switch | {columns} | CPU s / fit |", "|---|---|" + "---|---|" * len(kinds) + "---|"]
    for row_id, model, switch, _ in order:
        cells = []
        for kind in kinds:
            own = scores(row_id, kind)
            base = scores(f"{model}:default", kind)
            paired = [own[k] - base[k] for k in own if k in base]
            cells.append(fmt(list(own.values())))
            cells.append("—" if switch == "default" or not base else fmt(paired))
        cpu = [float(r["cpu_s"]) for r in rows if r["row"] == row_id]
        if not cpu:
            continue
        lines.append(f"| {registry.display_name(model)} | {switch} | {' | '.join(cells)} | {np.mean(cpu):.0f} |")
    lines += [
        "",
        "Issue 11's goal, at the default configurations and with a switch applied to both models "
        "(rows named model [switch]): paired differences of test r over the same splits, mean ± SD (n), "
        "and the number of splits where the first model is ahead.",
        "",
        "| comparison | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for first, second in GOAL_PAIRS:
        cells = []
        for kind in kinds:
            a, b = scores(first, kind), scores(second, kind)
            paired = [a[k] - b[k] for k in a if k in b]
            wins = sum(d > 0 for d in paired)
            cells.append("—" if not paired else f"{fmt(paired)}; ahead on {wins}/{len(paired)}")

        def name(row_id: str) -> str:
            model, switch = row_id.split(":")
            plain = switch in ("default", "searched")
            return registry.display_name(model) + ("" if plain else f" [{switch}]")

        if any(cell != "—" for cell in cells):
            lines.append(f"| {name(first)} − {name(second)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


#: ``--quick``: the MLP's default/replay pair, an untuned full-budget fit and the CM, on two folds
QUICK = {
    "dataset": harness.QUICK_BRAIN,
    "kinds": ["random"],
    "repeats": 1,
    "folds": 2,
    "rows": ["mlp:default", "mlp:refit=replay", "mlp:full-budget", "cm:searched"],
    "max_epochs": 2,
    "patience": 1,
}


def parse(argv: list[str] | None) -> Any:
    parser = harness.make_parser(__doc__, study=True)
    parser.add_argument("--dataset", default="hcp-s100")
    parser.add_argument("--kinds", nargs="+", default=["random", "spatial"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--rows", nargs="+", help="row ids (default: every row; see --list)")
    parser.add_argument("--tier", type=int, choices=(1, 2), help="only the rows of this tier (TIER1 or the rest)")
    parser.add_argument("--max-epochs", type=int, help="cap on every neural row's epoch budget")
    parser.add_argument("--patience", type=int, help="early-stopping patience of every neural row")
    parser.add_argument("--name", help="results file stem (default smt_ablation[_<dataset>])")
    parser.add_argument("--list", action="store_true", help="print the row ids and exit")
    return harness.parse_args(parser, argv, quick=QUICK)


def selected_rows(order: list[tuple], rows: list[str] | None, tier: int | None) -> list[tuple]:
    """The rows to measure: ``--rows`` (by id), then ``--tier``."""
    if rows:
        unknown = sorted(set(rows) - {r[0] for r in order})
        if unknown:
            raise ValueError(f"--rows: unknown row ids {unknown}; see --list")
        order = [r for r in order if r[0] in rows]
    if tier:
        order = [r for r in order if (r[0] in TIER1) == (tier == 1)]
    return order


def budget_label(max_epochs: int | None, patience: int | None) -> str:
    reductions = [f"epoch budgets capped at {max_epochs}"] if max_epochs else []
    reductions += [f"patience {patience} instead of the default for every neural row"] if patience else []
    return "reduced budget: " + ", ".join(reductions) if reductions else "full default budgets"


@dataclass
class Ablation:
    """One ablation run: the brain, every row's configuration and where its rows are stored."""

    brain: Brain
    table_order: list[tuple[str, str, str, dict[str, Any]]]  # every row (the table shows all measured so far)
    budget: str
    folds: int
    csv_path: Path
    table: Path
    configs: dict[str, dict[str, Any] | None]
    config_ids: dict[str, str]

    @classmethod
    def create(cls, args: Any, table_order: list[tuple]) -> Ablation:
        brain = load_brain(args.dataset)
        configs = {
            row_id: neural_config(model, params, args.max_epochs, args.patience)
            if registry.spec(model).category == "nonlinear"
            else None
            for row_id, model, _, params in table_order
        }
        name = args.name or harness.table_stem("smt_ablation", args.dataset)
        # a fit is done when a row with the same split, row id and full configuration exists
        config_ids = {row_id: config_id(row_id, config) for row_id, config in configs.items()}
        budget = budget_label(args.max_epochs, args.patience)
        csv_path, table = args.out / f"{name}.csv", args.out / f"{name}.md"
        return cls(brain, table_order, budget, args.folds, csv_path, table, configs, config_ids)

    def rows(self) -> list[dict[str, str]]:
        """The stored rows measured under this run's configurations (so under its budget)."""
        return [r for r in read_rows(self.csv_path) if self.config_ids.get(r["row"]) == r["config"]]

    def summary(self) -> str:
        header = (
            f"# SMT ablation: {self.brain.name} ({self.brain.n_regions} regions, {self.brain.n_genes} genes)\n\n"
            f"Generated by `benchmarks/studies/smt_ablation.py` ({self.budget}; splits `make_splits(kind, "
            f"n_repeats, n_folds={self.folds}, seed=0)`, run in the order repeat, kind, fold, so n — in "
            "parentheses — grows evenly; one candidate per fit: inner fit with early stopping on validation "
            "regions, refit on all training regions; CPU, 1 thread). Test Pearson r over the test edges; "
            "'Δ vs default, paired' is the mean ± SD (n) over splits of (row − the same model's default row) on "
            f"the same split. {harness.machine_header(load=False)}"
        )
        return summarise(self.rows(), self.table_order, header)

    def run(self, order: list[tuple], kinds: list[str], repeats: int, checkpoint: Any) -> None:
        """Fit every row of ``order`` not stored yet, split by split (repeat, kind, fold), and
        call ``checkpoint`` after each split."""
        done = {(r["kind"], r["repeat"], r["fold"], r["row"]) for r in self.rows()}
        for repeat in range(repeats):
            for kind in kinds:
                splits = make_splits(self.brain, kind, n_repeats=repeats, n_folds=self.folds, seed=0)
                for fold in range(self.folds):
                    pending = [r for r in order if (kind, str(repeat), str(fold), r[0]) not in done]
                    self.fit_pending(splits[repeat * self.folds + fold], (kind, repeat, fold), pending, done)
                    checkpoint()

    def fit_pending(self, split: Any, where: tuple[str, int, int], pending: list[tuple], done: set) -> None:
        """Fit and store the ``pending`` rows of one split; a model's default and ``refit=replay``
        rows, when both are pending, share one selection run (`fit_default_and_replay`)."""
        kind, repeat, fold = where
        ids = {r[0] for r in pending}
        switch_of = {r[0]: r[2] for r in pending}
        for row_id, model, switch, _ in pending:
            if (kind, str(repeat), str(fold), row_id) in done:
                continue
            config = self.configs[row_id]
            results = {}
            if switch == "default" and f"{model}:refit=replay" in ids:
                results[row_id], results[f"{model}:refit=replay"] = fit_default_and_replay(
                    self.brain, split, model, config
                )
            else:
                validation = switch not in WITHOUT_VALIDATION
                results[row_id] = fit_one(self.brain, split, model, config, validation=validation)
            for done_id, result in results.items():
                record = {"budget": self.budget, "config": self.config_ids[done_id], "dataset": self.brain.name}
                record |= {"kind": kind, "repeat": repeat, "fold": fold, "row": done_id, "model": model}
                append_row(self.csv_path, {**record, "switch": switch_of[done_id], **result}, FIELDS)
                done.add((kind, str(repeat), str(fold), done_id))
                print(
                    f"{kind} r{repeat} f{fold} {done_id}: r = {result['r']:.3f} "
                    f"({result['cpu_s']:.0f} CPU s, refit epochs {result['refit_epochs']})",
                    flush=True,
                )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    table_order = default_rows()  # the table always shows every row measured so far
    if args.list:
        print("\n".join(f"{row_id}: {params}" for row_id, _, _, params in table_order))
        return 0
    order = selected_rows(table_order, args.rows, args.tier)
    ablation = Ablation.create(args, table_order)

    def measure(checkpoint: Any) -> None:
        ablation.run(order, args.kinds, args.repeats, checkpoint)

    return harness.run_study(ablation.table, ablation.summary, None if args.summary_only else measure)


if __name__ == "__main__":
    raise SystemExit(main())
