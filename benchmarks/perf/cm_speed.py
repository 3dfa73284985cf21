"""Closed-form Connectome Model: SVD path vs the naive g × g path, side by side.

Goal (issue 4): the full-gene closed-form CM fits on ``hcp-s100`` (114 regions × 810
genes, 75 % training regions) in under a second.

Timed, for the same standardized training features ``F`` (n × g) and targets:

- ``svd`` — `ConnectomeModel.fit` as shipped (standardization, thin SVD of ``F``,
  closed form in the singular basis; the g × g interaction is never formed);
- ``naive paper`` — the printed formula ``(FᵀF + λI)⁻¹ FᵀYF (FᵀF + λI)⁻¹`` with two
  explicit g × g inverses (same objective as ``penalty="paper"``);
- ``naive ridge`` — the exact Frobenius ridge through the eigendecomposition of the
  g × g matrix ``FᵀF`` (the Kronecker system itself, g² × g², cannot be formed).

Both naive paths use ``intercept=False`` models on the same data so that the fitted
interaction matrices can be compared entry by entry (reported as max |ΔO|).

A second row block repeats the comparison at the paper's scale (a synthetic brain with
7,380 genes and 456 regions), where the naive paths are run once.

Run: ``SPATIOMOL_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/perf/cm_speed.py``
Writes ``benchmarks/results/cm.md``. Timings are best-of-N wall clock on a shared CPU.
``--quick``: one repeat and a small synthetic brain in place of the paper's scale.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, from any working directory

import harness
from spatiomol.data.datasets import load_dataset
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.splits import make_splits
from spatiomol.models.base import training_target_matrix
from spatiomol.models.bilinear import ConnectomeModel

#: ``--quick``: single timings, a 60 × 200 synthetic brain for the paper-scale block
QUICK = {"repeats": 1, "naive_repeats": 1, "big_regions": 60, "big_genes": 200, "big_repeats": 1}


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), out


def naive_paper(F: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    inverse = np.linalg.inv(F.T @ F + lam * np.eye(F.shape[1]))
    return inverse @ (F.T @ Y @ F) @ inverse


def naive_ridge(F: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    eigenvalues, V = np.linalg.eigh(F.T @ F)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    M = V.T @ (F.T @ Y @ F) @ V
    return V @ (M / (np.outer(eigenvalues, eigenvalues) + lam)) @ V.T


def compare(brain, train: np.ndarray, repeats: int, naive_repeats: int, naive_ridge_too: bool = True) -> list[dict]:
    rows = []
    X = brain.X[train]
    F = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    Y, _ = training_target_matrix(brain, train)
    paths = [("paper", naive_paper), ("frobenius", naive_ridge)]
    for penalty, naive in paths if naive_ridge_too else paths[:1]:
        model = ConnectomeModel(features="genes", penalty=penalty, intercept=False)
        seconds, fitted = timed(lambda model=model: model.fit(brain, train), repeats)
        lam = fitted.lambda_
        naive_seconds, O_naive = timed(lambda naive=naive, lam=lam: naive(F, Y, lam), naive_repeats)
        O_svd = fitted.interaction_matrix()
        rows.append(
            {
                "brain": brain.name,
                "regions (train)": f"{brain.n_regions} ({len(train)})",
                "genes": brain.n_genes,
                "penalty": penalty,
                "svd fit (s)": seconds,
                "naive (s)": naive_seconds,
                "speed-up": naive_seconds / seconds,
                "max |ΔO|": float(np.abs(O_svd - O_naive).max()),
                "max |O|": float(np.abs(O_naive).max()),
            }
        )
    model = ConnectomeModel(features="genes")  # the shipped default (intercept, Frobenius)
    seconds, _ = timed(lambda: model.fit(brain, train), repeats)
    rows.append(
        {
            "brain": brain.name,
            "regions (train)": f"{brain.n_regions} ({len(train)})",
            "genes": brain.n_genes,
            "penalty": "frobenius + intercept (default)",
            "svd fit (s)": seconds,
            "naive (s)": float("nan"),
            "speed-up": float("nan"),
            "max |ΔO|": float("nan"),
            "max |O|": float("nan"),
        }
    )
    return rows


def parse(argv: list[str] | None) -> Any:
    parser = harness.make_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="best of N fits on hcp-s100")
    parser.add_argument("--naive-repeats", type=int, default=3, help="best of N naive paths on hcp-s100")
    parser.add_argument("--big-regions", type=int, default=456, help="regions of the paper-scale synthetic brain")
    parser.add_argument("--big-genes", type=int, default=7380, help="genes of the paper-scale synthetic brain")
    parser.add_argument("--big-repeats", type=int, default=2, help="best of N fits on it (naive paths: once)")
    return harness.parse_args(parser, argv, quick=QUICK)


def cell(key: str, value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    if np.isnan(value):
        return "—"
    return f"{value:.2e}" if "Δ" in key or "|O|" in key else f"{value:.3f}"


def table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = [
        "# Closed-form Connectome Model: SVD path vs naive g × g path",
        "",
        f"Generated by `benchmarks/perf/cm_speed.py`. Best-of-N wall clock. {harness.machine_header()}",
        "",
        "`svd fit` is the whole `ConnectomeModel.fit` (standardization included); the naive "
        "columns time only the linear algebra on already standardized features. "
        "`max |ΔO|` compares the two interaction matrices (intercept off).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(cell(key, row[key]) for key in header) + " |" for row in rows]
    goal = rows[2]["svd fit (s)"]  # hcp-s100, default model
    lines += [
        "",
        f"Goal: full-gene CM on hcp-s100 fits in < 1 s — default model measured at {goal:.3f} s "
        f"({'met' if goal < 1.0 else 'NOT met'}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    hcp = load_dataset("hcp-s100")
    split = make_splits(hcp, "random", n_repeats=1, n_folds=4, seed=0)[0]
    rows = compare(hcp, split.train, repeats=args.repeats, naive_repeats=args.naive_repeats)

    name = f"synthetic-{args.big_regions}x{args.big_genes}"
    big = make_synthetic_brain(args.big_regions, args.big_genes, rule="bilinear", seed=0, name=name)
    big_split = make_splits(big, "random", n_repeats=1, n_folds=4, seed=0)[0]
    # the naive ridge (g x g eigh at g = 7380) took ~4 min on the shared 2-core machine
    rows += compare(big, big_split.train, repeats=args.big_repeats, naive_repeats=1, naive_ridge_too=False)
    harness.write_summary(args.out / "cm.md", table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
