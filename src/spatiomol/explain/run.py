"""`spatiomol explain RESULTS --model smt-cls [--split random:r0f0]`: what a run's model learned.

For one stored run (true expression) of a neural model the fitted model is loaded (when
the grid saved it, ``save_models: true``) or refitted exactly as the runner fitted it
(`spatiomol.experiments.execute.fit_run`: same data, split, seeds and selection), checked
against the run's stored test predictions, and explained on every region of the
dataset. The regions' labels, networks and coordinates come from the region table the
run stored (`ResultsStore.load_regions`; a folder from before region tables were stored:
the dataset's); the model's inputs (expression) always come from the dataset. Written to
``RESULTS/explain/<model>_<split>_r<repeat>f<fold>/`` (`ResultsStore.explain_path`):

- ``region_embeddings.csv`` and ``region_embeddings_pca.png``: every region's embedding
  (`spatiomol.explain.embeddings`) and its first two principal components, by network;
- SMT only: ``attention_tokens.csv`` (attention each token receives, all regions and
  per network, with its chromosome and start), ``attention_map.csv`` (L × L) and
  ``attention_genome.png`` (`spatiomol.explain.attention`);
- ``gene_attributions_all.csv`` and ``gene_attributions_<network>.csv``: genes ranked
  by mean |attribution| over the explained edges (all, or those with an end in the
  network; `spatiomol.explain.attributions`);
- ``summary.json``: run, model source, prediction check, settings and file list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.atomic import atomic_path
from spatiomol.data.brain import Brain
from spatiomol.evaluation.splits import SPLIT_KINDS
from spatiomol.experiments.execute import fit_run, load_run_model, run_data, run_spec
from spatiomol.experiments.grid import RunSpec
from spatiomol.experiments.store import ResultsStore
from spatiomol.explain.attention import attention_profiles, draw_attention_along_genome, gene_position_table
from spatiomol.explain.attributions import gene_attributions, network_rankings
from spatiomol.explain.defaults import MAX_EDGES, METHODS, N_STEPS
from spatiomol.explain.embeddings import draw_embedding_map, pca_map, region_embeddings
from spatiomol.models import registry
from spatiomol.models.neural import NeuralConnectivityModel

#: ``--split`` syntax: split type, repeat and fold
SPLIT_PATTERN = re.compile(rf"^({'|'.join(SPLIT_KINDS)}):r(\d+)f(\d+)$")
SPLIT_ORDER = SPLIT_KINDS


@dataclass
class Explanation:
    """What `explain_run` did and wrote.

    Attributes
    ----------
    run_id, model, split : str
        The explained run, its registry model and split (``"random:r0f0"``).
    source : {"saved model", "refit"}
    max_prediction_difference : float
        Largest |prediction − stored test prediction| of the explained model over the
        run's test edges (target units; 0 when it reproduces the run).
    out_dir : Path
    files : {name: Path}
    """

    run_id: str
    model: str
    split: str
    source: str
    max_prediction_difference: float
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def parse_split(text: str) -> tuple[str, int, int]:
    """``"random:r0f0"`` → ``("random", 0, 0)``; ValueError for anything else."""
    match = SPLIT_PATTERN.match(str(text).strip())
    if not match:
        raise ValueError(f"--split {text!r}: expected '<{'|'.join(SPLIT_KINDS)}>:r<repeat>f<fold>', e.g. 'random:r0f0'")
    return match.group(1), int(match.group(2)), int(match.group(3))


def find_run(store: ResultsStore, model: str, split: str | None = None) -> tuple[str, str]:
    """Run id and split key of ``model``'s true-input run on ``split`` (default: its first split).

    The manifest's current runs (``run_ids``) are preferred when it lists them.

    Raises
    ------
    ValueError
        Unknown or non-neural model, no such run, or a split with runs of two settings.
    """
    spec = registry.spec(model)
    if spec.category != "nonlinear":
        neural = ", ".join(registry.names(category="nonlinear"))
        raise ValueError(f"explain: model {model!r} is not a neural model; expected one of {neural}")
    df = store.load()
    runs = df[(df["model"] == model) & (df["input"] == "true") & df["split_type"].isin(SPLIT_ORDER)]
    runs = runs[["run_id", "split_type", "repeat", "fold"]].drop_duplicates()
    current = store.read_manifest().get("run_ids")
    if current and runs["run_id"].isin(current).any():
        runs = runs[runs["run_id"].isin(current)]
    if runs.empty:
        have = sorted(set(df["model"]))
        raise ValueError(f"{store.root}: no finished true-expression run of model {model!r} (runs of: {have})")
    keys = runs["split_type"] + ":r" + runs["repeat"].astype(str) + "f" + runs["fold"].astype(str)
    if split is None:
        order = runs.assign(rank=runs["split_type"].map(SPLIT_ORDER.index)).sort_values(["rank", "repeat", "fold"])
        split = str(keys[order.index[0]])
    else:
        parse_split(split)
    chosen = runs[keys == split]
    if chosen.empty:
        raise ValueError(f"{store.root}: model {model!r} has no run on split {split!r}; it has {sorted(set(keys))}")
    if len(chosen) > 1:
        raise ValueError(
            f"{store.root}: split {split!r} of model {model!r} has runs of different settings "
            f"{sorted(chosen['run_id'])}; explain a folder written by one configuration"
        )
    return str(chosen["run_id"].iloc[0]), split


def run_regions(store: ResultsStore, dataset: str, brain: Brain) -> pd.DataFrame:
    """The region table the runs of ``dataset`` used (`ResultsStore.load_regions`); ``brain.regions``
    for a folder that stored none.

    Raises
    ------
    ValueError
        When the stored table's labels differ from the dataset's now (its files changed
        since the run).
    """
    try:
        regions = store.load_regions(dataset)
    except FileNotFoundError:
        return brain.regions.reset_index(drop=True)
    if list(regions["label"]) != list(brain.labels):
        raise ValueError(
            f"{store.root}: the region labels stored for dataset {dataset!r} differ from the dataset's now "
            "(its files changed since the run); explain a folder made from the current files"
        )
    return regions


def _run_model(store: ResultsStore, spec: RunSpec, refit: bool) -> tuple[Any, Brain, str, float]:
    """Run ``spec``'s model, saved or refitted, → (model, brain it was fitted on, ``"saved model"`` or
    ``"refit"``, largest |prediction − stored test prediction|)."""
    rid = spec.run_id
    if not refit and store.model_path(rid).exists():
        fitted, data, source = load_run_model(store.root, rid), run_data(spec, store.root), "saved model"
    else:
        run = fit_run(spec, store.root)
        fitted, data, source = run.model, run.data, "refit"
    stored = store.load_predictions(rid)
    again = fitted.predict(data.predict_brain, stored["i"], stored["j"])
    difference = float(np.max(np.abs(again - stored["y_pred"]))) if again.size else 0.0
    return fitted, data.fit_brain, source, difference


def _embedding_files(fitted, brain: Brain, regions: pd.DataFrame, out: Path, title: str) -> dict[str, Path]:
    """``region_embeddings.csv`` (``regions``' columns, PCs, embedding) and its PCA map."""
    embeddings = region_embeddings(fitted, brain)
    scores, explained = pca_map(embeddings)
    table = regions[["label", "hemisphere", "structure", "network", "x", "y", "z"]].copy()
    table["pc1"], table["pc2"] = scores[:, 0], scores[:, 1]
    table = pd.concat([table, pd.DataFrame(embeddings, columns=[f"e{k}" for k in range(embeddings.shape[1])])], axis=1)
    files = {"region_embeddings": _write_csv(table, out / "region_embeddings.csv", index=False)}
    fig = draw_embedding_map(
        scores, regions["network"].to_numpy(), explained, f"{title}: region embeddings ({embeddings.shape[1]} values)"
    )
    files["region_embeddings_pca"] = _write_png(fig, out / "region_embeddings_pca.png")
    return files


def _attention_files(
    fitted: NeuralConnectivityModel, brain: Brain, out: Path, title: str, notes: list[str]
) -> dict[str, Path]:
    """The SMT's attention along the genome: tokens, the L × L map and its figure."""
    try:
        positions = gene_position_table()
    except (ValueError, OSError) as err:
        positions = None
        notes.append(f"gene positions unavailable ({err}); tokens not placed on chromosomes")
    profiles, global_map = attention_profiles(fitted, brain, positions)
    files = {"attention_tokens": _write_csv(profiles, out / "attention_tokens.csv", index=False)}
    labels = profiles["label"].tolist()
    attention_map = pd.DataFrame(global_map, index=labels, columns=labels)
    files["attention_map"] = _write_csv(attention_map, out / "attention_map.csv")
    fig = draw_attention_along_genome(profiles, global_map, f"{title}: final-layer attention along the genome")
    files["attention_genome"] = _write_png(fig, out / "attention_genome.png")
    return files


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))[:40]


def _write_csv(frame: pd.DataFrame, path: Path, **kwargs: Any) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return path


def _write_png(fig, path: Path, dpi: int = 110) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def explain_run(
    results_dir: str | Path,
    model: str,
    split: str | None = None,
    out_dir: str | Path | None = None,
    *,
    method: str = "integrated_gradients",
    n_steps: int = N_STEPS,
    max_edges: int = MAX_EDGES,
    seed: int = 0,
    refit: bool = False,
) -> Explanation:
    """Explain the model of one stored run (see module docstring).

    Parameters
    ----------
    results_dir : path of a results folder.
    model : registry name of a neural model (``mlp``, ``mlp-coords``, ``smt``, ``smt-cls``, ...).
    split : ``"<random|spatial>:r<repeat>f<fold>"``; default the model's first split.
    out_dir : default ``RESULTS/explain/<model>_<split type>_r<repeat>f<fold>``.
    method : gene attribution method (`spatiomol.explain.attributions.METHODS`).
    n_steps : integrated-gradients steps.
    max_edges : edges explained at most; beyond, a sample drawn with ``seed``.
    refit : refit even when the run's model was saved.

    Returns
    -------
    Explanation
    """
    if method not in METHODS:
        raise ValueError(f"explain: unknown attribution method {method!r}; expected one of {METHODS}")
    if int(max_edges) < 1:
        raise ValueError(f"explain: max_edges must be a positive integer, got {max_edges!r}")
    store = ResultsStore(results_dir)
    rid, split = find_run(store, model, split)
    split_type, repeat, fold = parse_split(split)
    spec = run_spec(store.root, rid)
    fitted, brain, source, difference = _run_model(store, spec, refit)
    regions = run_regions(store, spec.dataset, brain)
    out = Path(out_dir) if out_dir is not None else store.explain_path(f"{model}_{split_type}_r{repeat}f{fold}")
    out.mkdir(parents=True, exist_ok=True)
    name = registry.display_name(model)
    title = f"{name}, {brain.name}, {split}"
    notes: list[str] = []
    files = _embedding_files(fitted, brain, regions, out, title)
    if hasattr(fitted, "attention_maps"):  # a model with attention (the SMT's hook)
        files.update(_attention_files(fitted, brain, out, title, notes))

    # gene attributions
    i, j = brain.pairs()
    if len(i) > max_edges:
        keep = np.sort(np.random.default_rng(seed).choice(len(i), int(max_edges), replace=False))
        notes.append(f"attributions on {max_edges} of {len(i)} edges (seed {seed})")
        i, j = i[keep], j[keep]
    attributions = gene_attributions(fitted, brain, i, j, method=method, n_steps=n_steps)
    for network, ranking in network_rankings(attributions, regions["network"].to_numpy()).items():
        path = out / f"gene_attributions_{_slug(network)}.csv"
        files[f"gene_attributions_{network}"] = _write_csv(ranking, path, index=False)

    summary = {
        "run_id": rid,
        "model": model,
        "display_name": name,
        "dataset": spec.dataset,
        "split": split,
        "model_source": source,
        "max_abs_difference_to_stored_predictions": difference,
        "attribution_method": method,
        "integrated_gradients_steps": n_steps if method == "integrated_gradients" else None,
        "attribution_baseline": "mean expression over regions (coordinates kept)",
        "n_edges_explained": int(len(i)),
        "max_abs_completeness_error": float(np.max(np.abs(attributions.delta))) if len(i) else 0.0,
        "notes": notes,
        "files": {k: p.name for k, p in files.items()},
    }
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    files["summary"] = out / "summary.json"
    return Explanation(rid, model, split, source, difference, out, files)
