"""Calibration of the shared-fold rank verdict where the claims live (anatomy, fitted expression, hcp-s400).

The question: when the expression carries nothing that predicts connectivity — only space
*and anatomy* — how often does the product's verdict say "the model beats its nulls"?
The first calibration (`null_calibration.py`) covered isotropic Gaussian fields only; the
default family (whole-brain Moran) then kept its false-positive rate (FPR) ≤ 0.05, but
reached 0.77 once the expression also carried homotopy and a cortex/subcortex contrast.
This study measures the families on the design the product now uses (every null scored
on the true brain's folds, `spatiomol.reports.verdict.rank_test`, Phipson–Smyth p).

Scenarios (expression simulated on the **real** centroids of the dataset; the target is the
**real** group FC of the dataset, independent of the simulated expression, so every
rejection is a false positive):

- ``isotropic``: each of ``n_genes`` genes an independent Gaussian random field with
  exponential covariance ``exp(−d/ℓ)``, ``ℓ`` the decay length of the real CGE–distance
  curve (`null_calibration.real_decay_length`).
- ``anatomy-a`` (dose-response, a ∈ {0.25, 0.5, 0.75, 1}): ``√(1−a)`` · the isotropic
  field + ``√a`` · an anatomical part, itself ``√½`` · a field over the centroids mirrored
  onto one hemisphere (``x → −|x|``: homologous regions alike) + ``√½`` · a cortex vs
  non-cortex contrast (one standard normal per gene, + on cortex, − elsewhere). ``a`` is
  the anatomical share of each gene's variance (the first calibration's scenario was
  a = 0.8).
- ``fitted``: a generative model fitted to the real expression. Each simulated brain takes
  ``n_genes`` real genes at random; gene ``g`` keeps its real structure-class means
  ``μ_c(g)`` and residual SD ``s_g``, and its residual is
  ``s_g (√h_g · mirrored field + √(1−h_g) · isotropic field)``, with ``h_g`` the real
  gene's homotopic correlation (over homologous pairs, of its residuals; clipped to
  [0, 1]).

Nulls (each scored on the **same** folds as the true brain, the product's design):
``moran`` (whole brain), ``anatomical`` (`spatiomol.nulls.anatomical`), ``hungarian``
(spins; on the anatomy scenarios only) and ``oracle``: fresh draws from the very model
that made the expression (the same class means and genes for ``fitted``), the ideal
null, which shows the test's own calibration.

Protocol: one repeat × 4 folds of ``random`` or ``spatial`` region splits
(`spatiomol.evaluation.make_splits`, a seed per brain); models at their default
configuration: ``cm``, ``cm-pls``, ``cge-pca``; score: test-edge Pearson r. The
verdict rejects when ``p = (1 + #{null ≥ true}) / (1 + K) ≤ 0.05``. K = 19 here, not the
product's 99: under exchangeability the rank test's FPR is at most α for any K with
(K + 1)α an integer, and a null family that is not exchangeable shows it at K = 19 as at 99
(its true score sits above the nulls' 95th percentile too often); K = 99 would cost 5×.
Power: the target is ``Y + s · B``, a planted expression → connectivity signal
(`null_calibration.plant_signal`), at two sizes ``s``.

Not covered here (stated in docs/calibration.md): a neural model (the MLP with coordinates
at a reduced budget costs ~2 s a fit, 80 fits per brain and family: hours per cell on this
2-core host).

Engineering: each (cell, block of brains) is one ``.npz`` under
``benchmarks/results/verdict_calibration/``, written atomically; a killed run resumes
where it stopped. Seeds derive from ``(SEED, purpose, indices)``. One BLAS thread.

Run: ``SPATIOMOL_DATA_MIRROR=../shared/data nice -n 10 .venv/bin/python
benchmarks/studies/verdict_calibration.py`` (``--quick``: a smoke run of seconds;
``--summary-only``: rebuild the tables from the stored blocks). Writes
``benchmarks/results/verdict_calibration.md``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: `harness`, `studies`

import harness  # noqa: E402
from spatiomol.atomic import atomic_path  # noqa: E402
from spatiomol.data.brain import Brain  # noqa: E402
from spatiomol.data.datasets import load_dataset  # noqa: E402
from spatiomol.data.homology import homologue_partner  # noqa: E402
from spatiomol.evaluation import make_splits  # noqa: E402
from spatiomol.hashing import derived_seed  # noqa: E402
from spatiomol.nulls import generate_nulls  # noqa: E402
from spatiomol.nulls.anatomical import mirrored_distances  # noqa: E402
from spatiomol.reports.verdict import rank_test  # noqa: E402
from studies.null_calibration import (  # noqa: E402
    Scorer,
    fmt_rate,
    limit_threads,
    log,
    plant_signal,
    rate,
    real_decay_length,
)

SEED = 20261207
ALPHA = 0.05
ORACLE = "oracle"
DOSES = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Cell:
    """One row of the calibration: a scenario on a dataset, a split type, a null family."""

    dataset: str
    scenario: str  # "isotropic", "anatomy-<a>" or "fitted"
    split_type: str
    family: str
    brains: int
    size: float = 0.0  # planted signal (0: false positives)

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.scenario}_{self.split_type}_s{self.size:g}_{self.family}"


@dataclass(frozen=True)
class Settings:
    name: str
    cells: tuple[Cell, ...]
    n_genes: int = 50
    n_nulls: int = 19
    n_folds: int = 4
    models: tuple[str, ...] = ("cm", "cm-pls", "cge-pca")
    block: int = 10
    store: Path = harness.RESULTS / "verdict_calibration"
    model_params: dict = field(default_factory=dict)  # model → hyperparameters over its defaults
    scored_folds: int | None = None  # score only the first folds (None: all)


def _cells() -> tuple[Cell, ...]:
    cells = []
    anatomy = [f"anatomy-{a:g}" for a in DOSES]
    for scenario in ("isotropic", *anatomy, "fitted"):
        for family in ("anatomical", "moran", ORACLE):
            cells.append(Cell("hcp-s100", scenario, "random", family, 100))
    for scenario in ("anatomy-0.75",):
        cells.append(Cell("hcp-s100", scenario, "random", "hungarian", 100))
    for scenario in ("isotropic", "anatomy-0.5", "fitted"):
        for family in ("anatomical", "moran", ORACLE):
            cells.append(Cell("hcp-s100", scenario, "spatial", family, 60))
    for scenario in ("isotropic", "fitted"):
        for family in ("anatomical", "moran"):
            cells.append(Cell("hcp-s400", scenario, "random", family, 40))
    for size in (0.25, 0.4):
        for family in ("anatomical", "moran", ORACLE):
            cells.append(Cell("hcp-s100", "fitted", "random", family, 40, size))
    return tuple(cells)


FULL = Settings(name="full", cells=_cells())
#: the model with coordinates at a reduced budget: 10 epochs without early stopping, the
#: first fold of each brain's split only (a fit costs ~1 s here, 20 per brain and family)
NEURAL = Settings(
    name="neural",
    cells=tuple(Cell("hcp-s100", "fitted", "random", family, 20) for family in ("anatomical", "moran")),
    models=("mlp-coords",),
    model_params={"mlp-coords": {"epochs": 10, "early_stopping": False, "num_threads": 1}},
    scored_folds=1,
    block=5,
)
QUICK = Settings(
    name="quick",
    cells=(
        Cell("hcp-s100", "anatomy-0.5", "random", "anatomical", 2),
        Cell("hcp-s100", "fitted", "random", "moran", 2),
        Cell("hcp-s100", "fitted", "random", ORACLE, 1),
        Cell("hcp-s100", "fitted", "random", "anatomical", 1, 0.4),
    ),
    n_genes=20,
    n_nulls=3,
    models=("cm",),
    block=2,
)


# ------------------------------------------------------------------ simulation
class Generator:
    """Simulated expression on one dataset's real geometry (see the module docstring)."""

    def __init__(self, dataset: str, n_genes: int):
        self.base = load_dataset(dataset)
        self.n_genes = n_genes
        self.length = real_decay_length(self.base)
        self.iso = _root(np.exp(-self.base.distances / self.length))
        self.mirror = _root(np.exp(-mirrored_distances(self.base.coords) / self.length))
        structure = np.asarray(self.base.structure, dtype=str)
        self.contrast = np.where(structure == "cortex", 1.0, -1.0)
        # the fitted model's per-gene parameters, from the real expression
        X = np.asarray(self.base.X, dtype=np.float64)
        self.classes = [np.flatnonzero(structure == c) for c in np.unique(structure)]
        means = np.zeros_like(X)
        for rows in self.classes:
            means[rows] = X[rows].mean(axis=0)
        self.class_means = means
        residual = X - means
        self.residual_sd = residual.std(axis=0)
        partner = homologue_partner(self.base)
        left = np.flatnonzero((partner >= 0) & (np.asarray(self.base.hemisphere) == "L"))
        a, b = residual[left], residual[partner[left]]
        a, b = a - a.mean(axis=0), b - b.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            h = (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
        self.homotopy = np.clip(np.nan_to_num(h), 0.0, 1.0)
        self.genes = tuple(f"sim{k:03d}" for k in range(n_genes))

    def chosen_genes(self, brain: int) -> np.ndarray:
        rng = np.random.default_rng(derived_seed(SEED, "genes", self.base.name, brain))
        usable = np.flatnonzero(self.residual_sd > 0)
        return rng.choice(usable, size=self.n_genes, replace=False)

    def expression(self, scenario: str, brain: int, draw: str | int = "true") -> np.ndarray:
        """(r, n_genes) expression of simulated brain ``brain``; ``draw``: "true" or an oracle index."""
        rng = np.random.default_rng(derived_seed(SEED, "field", self.base.name, scenario, brain, draw))
        shape = (self.base.n_regions, self.n_genes)
        iso = self.iso @ rng.standard_normal(shape)
        if scenario == "isotropic":
            return iso
        mirror = self.mirror @ rng.standard_normal(shape)
        if scenario.startswith("anatomy-"):
            a = float(scenario.split("-", 1)[1])
            anatomy = np.sqrt(0.5) * mirror + np.sqrt(0.5) * self.contrast[:, None] * rng.standard_normal((1, shape[1]))
            return np.sqrt(1.0 - a) * iso + np.sqrt(a) * anatomy
        if scenario == "fitted":
            genes = self.chosen_genes(brain)  # fixed per brain: the oracle shares them
            h = self.homotopy[genes]
            residual = np.sqrt(h) * mirror + np.sqrt(1.0 - h) * iso
            return self.class_means[:, genes] + self.residual_sd[genes] * residual
        raise ValueError(f"unknown scenario {scenario!r}")

    def brain(self, scenario: str, brain: int, size: float) -> Brain:
        X = self.expression(scenario, brain)
        Y = np.asarray(self.base.Y, dtype=np.float64)
        if size:
            Y = plant_signal(Y, X, derived_seed(SEED, "planted", brain), size)
        return self.base.replace(name=f"sim-{scenario}-b{brain}", X=X, genes=self.genes, Y=Y)


def _root(covariance: np.ndarray) -> np.ndarray:
    """A matrix square root ``L`` with ``L Lᵀ = covariance`` (eigenvalues clipped at 0)."""
    values, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


# --------------------------------------------------------------------- scoring
def score_brain(cell: Cell, gen: Generator, scorer: Scorer, settings: Settings, index: int) -> np.ndarray:
    """(1 + K, folds, models) test-edge Pearson r of the true brain (row 0) and its K nulls, same folds."""
    brain = gen.brain(cell.scenario, index, cell.size)
    splits = make_splits(brain, cell.split_type, 1, settings.n_folds, derived_seed(SEED, "splits", index))
    k = settings.n_nulls
    if cell.family == ORACLE:
        nulls = [gen.expression(cell.scenario, index, draw) for draw in range(k)]
    else:
        drawn = generate_nulls(
            brain,
            n=k,
            top=k,
            seed=derived_seed(SEED, "nulls", cell.name, index),
            method=cell.family,
            cge_match=False,
            n_jobs=1,
        )
        nulls = [drawn.null_expression(brain.X, n) for n in range(k)]
    splits = splits[: settings.scored_folds]
    out = np.empty((1 + k, len(splits), len(settings.models)))
    out[0] = scorer.score(brain, splits)
    for n, X_null in enumerate(nulls, start=1):
        out[n] = scorer.score(brain.replace(X=X_null), splits)
    return out


def block_path(settings: Settings, cell: Cell, start: int) -> Path:
    return settings.store / cell.name / f"{start:04d}.npz"


def run_block(settings: Settings, cell: Cell, start: int, gen: Generator, scorer: Scorer) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    stop = min(start + settings.block, cell.brains)
    scores = np.stack([score_brain(cell, gen, scorer, settings, index) for index in range(start, stop)])
    meta = {"cell": cell.name, "start": start, "models": list(settings.models), "n_nulls": settings.n_nulls}
    meta |= {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    with atomic_path(block_path(settings, cell, start), suffix=".tmp.npz") as tmp:
        np.savez(tmp, scores=scores, meta=json.dumps(meta))


def run_cells(settings: Settings, max_blocks: int | None, families: list[str] | None = None) -> None:
    """Every block not stored yet, round-robin over the cells (partial results stay balanced);
    ``families``: only the cells of these null families."""
    scorer = Scorer(settings.models)
    for m, name in enumerate(settings.models):
        if name in settings.model_params:
            scorer.prototypes[m].set_params(**settings.model_params[name])
    generators: dict[str, Generator] = {}
    cells = [c for c in settings.cells if families is None or c.family in families]
    todo = []
    for start in range(0, max(c.brains for c in cells), settings.block):
        todo += [(c, start) for c in cells if start < c.brains]
    todo = [(c, s) for c, s in todo if not block_path(settings, c, s).exists()]
    log(f"{len(todo)} blocks to run")
    for n, (cell, start) in enumerate(todo[:max_blocks]):
        if cell.dataset not in generators:
            generators[cell.dataset] = Generator(cell.dataset, settings.n_genes)
        t0 = time.perf_counter()
        run_block(settings, cell, start, generators[cell.dataset], scorer)
        log(f"{n + 1}/{len(todo)} {cell.name} brains {start}-: {time.perf_counter() - t0:.1f} s")


# -------------------------------------------------------------------- verdicts
def verdict_rows(settings: Settings) -> pd.DataFrame:
    """One row per (cell, brain, model): the rank verdict on shared folds."""
    rows = []
    for cell in settings.cells:
        paths = sorted((settings.store / cell.name).glob("*.npz"))
        for path in paths:
            with np.load(path) as data:
                meta = json.loads(str(data["meta"]))
                if meta["models"] != list(settings.models) or meta["n_nulls"] != settings.n_nulls:
                    continue
                scores, start, cpu = data["scores"], meta["start"], meta["cpu_s"]
            for b in range(scores.shape[0]):
                for m, model in enumerate(settings.models):
                    result = rank_test(scores[b, 0, :, m], scores[b, 1:, :, m], alpha=ALPHA)
                    rows.append(
                        {
                            "dataset": cell.dataset,
                            "scenario": cell.scenario,
                            "split_type": cell.split_type,
                            "size": cell.size,
                            "family": cell.family,
                            "brain": start + b,
                            "model": model,
                            "reject": result["reject"],
                            "p": result["p"],
                            "effect_z": result["effect_z"],
                            "cpu_s": cpu / scores.shape[0] / len(settings.models),
                        }
                    )
    return pd.DataFrame(rows)


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rejection rate with its Clopper–Pearson 95% CI per cell and model."""
    out = []
    keys = ["dataset", "scenario", "split_type", "size", "family", "model"]
    for key, group in rows.groupby(keys, sort=False):
        k, n, p, low, high = rate(group["reject"])
        out.append({**dict(zip(keys, key)), "n": n, "rejections": k, "rate": p, "low": low, "high": high})
    return pd.DataFrame(out)


def table_lines(summary: pd.DataFrame, rows: pd.DataFrame, size: float) -> list[str]:
    part = summary[summary["size"] == size]
    if part.empty:
        return []
    models = list(dict.fromkeys(part["model"]))
    head = "| dataset | scenario | splits | family | brains | " + " | ".join(models) + " |"
    lines = [head, "|" + "---|" * (5 + len(models))]
    for (dataset, scenario, split, family), group in part.groupby(
        ["dataset", "scenario", "split_type", "family"], sort=False
    ):
        sel = rows[
            (rows["dataset"] == dataset)
            & (rows["scenario"] == scenario)
            & (rows["split_type"] == split)
            & (rows["family"] == family)
            & (rows["size"] == size)
        ]
        cells = [fmt_rate(sel.loc[sel["model"] == m, "reject"]) for m in models]
        lines.append(
            f"| {dataset} | {scenario} | {split} | {family} | {int(group['n'].max())} | " + " | ".join(cells) + " |"
        )
    return lines


def summarize(settings: Settings, out: Path, neural: Settings | None = None) -> Path:
    rows = verdict_rows(settings)
    neural_rows = verdict_rows(neural) if neural is not None and neural.store.exists() else pd.DataFrame()
    lines = [
        "# Calibration of the shared-fold rank verdict (anatomy, fitted expression, spatial splits, hcp-s400)",
        "",
        harness.machine_header(),
        "",
        f"Design: `benchmarks/studies/verdict_calibration.py` ({settings.name}); {settings.n_genes} genes, "
        f"K = {settings.n_nulls} nulls scored on the true brain's 1 × {settings.n_folds} folds, "
        f"models {', '.join(settings.models)} at their defaults, verdict p = (1 + #null ≥ true)/(1 + K) ≤ {ALPHA}. "
        "Cells: rejection rate [Clopper–Pearson 95% CI].",
        "",
    ]
    if rows.empty:
        lines.append("No stored blocks yet.")
    else:
        summary = summary_table(rows)
        lines += ["## False-positive rate (expression independent of the connectome)", ""]
        lines += table_lines(summary, rows, 0.0) + [""]
        for size in sorted(s for s in summary["size"].unique() if s):
            lines += [f"## Power: planted signal of size {size:g} (SD of FC)", ""]
            lines += table_lines(summary, rows, size) + [""]
        if not neural_rows.empty:
            lines += [
                "## A model with coordinates: MLP w/ coords at a reduced budget",
                "",
                "10 epochs without early stopping, scored on the first fold of each brain's split only "
                f"(`NEURAL`), K = {neural.n_nulls} nulls on that fold.",
                "",
            ]
            lines += table_lines(summary_table(neural_rows), neural_rows, 0.0) + [""]
        cpu = rows["cpu_s"].sum() + (neural_rows["cpu_s"].sum() if not neural_rows.empty else 0.0)
        lines.append(f"CPU time of the stored blocks: {cpu / 60:.1f} min.")
        with atomic_path(settings.store / "verdicts.csv") as tmp:
            rows.to_csv(tmp, index=False)
        with atomic_path(settings.store / "summary.csv") as tmp:
            summary.to_csv(tmp, index=False)
    lines.append("")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = harness.make_parser(__doc__, study=True)
    parser.add_argument("--max-blocks", type=int, default=None, help="stop after this many new blocks")
    parser.add_argument("--families", nargs="+", default=None, help="run only the cells of these null families")
    parser.add_argument("--neural", action="store_true", help="the MLP-with-coordinates cells (`NEURAL`)")
    args = harness.parse_args(parser, argv)
    limit_threads(renice=not args.quick)
    base = QUICK if args.quick else FULL
    neural = replace(NEURAL, store=args.out / "verdict_calibration_neural")
    settings = replace(base, store=args.out / "verdict_calibration")
    if not args.summary_only:
        run_cells(neural if args.neural else settings, args.max_blocks, args.families)
    path = summarize(settings, args.out / "verdict_calibration.md", None if args.quick else neural)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
