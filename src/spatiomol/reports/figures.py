"""Figures of a results folder (PNG, matplotlib's Agg backend; no display needed).

- `plot_test_connectomes`: true, predicted (true input) and predicted (null input) test
  connectomes of one split (paper Fig. 2 / 12 style).
- `plot_network_gain`: per-network gain in Pearson r of one model over another (Fig. 5B).
- `plot_parameters`: test Pearson r against learned parameter count (Fig. 5C).
- `plot_held_out`: test Pearson r of each model on each held-out system (network,
  hemisphere or structure splits).
- `plot_resolution_ladder`: test Pearson r against the number of regions, one line per
  model (the paper's resolution figure, Tables 5–8).
- `plot_transfer_matrix`: test r of a model trained on each source and scored on each
  target, and its gain over the source's null (Fig. 12).
- CGE–distance curves come from `spatiomol.reports.cge_figure` (nulls stage), brain views
  from `spatiomol.reports.brain`.

Each ``plot_*`` draws with its ``draw_*`` twin, which returns the matplotlib `Figure`
(so that tests read the plotted numbers back from its artists), and writes it with
`save_figure`, the one place a report figure becomes a PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def edges_to_square(i: np.ndarray, j: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric (k, k) matrix over the regions touched by edges (i, j); diagonal NaN.

    Returns
    -------
    matrix : (k, k) float array
    regions : (k,) int array, the region index of each row (sorted)
    """
    regions = np.unique(np.concatenate([i, j]))
    pos = {r: n for n, r in enumerate(regions)}
    a = np.array([pos[r] for r in i])
    b = np.array([pos[r] for r in j])
    m = np.full((regions.size, regions.size), np.nan)
    m[a, b] = values
    m[b, a] = values
    return m, regions


def plot_test_connectomes(
    panels: dict[str, dict[str, np.ndarray]], title: str, path: str | Path, order: np.ndarray | None = None
) -> Path:
    """Side-by-side test connectomes sharing one colour scale, saved as PNG (see `draw_test_connectomes`)."""
    return save_figure(draw_test_connectomes(panels, title, order), path)


def draw_test_connectomes(
    panels: dict[str, dict[str, np.ndarray]], title: str, order: np.ndarray | None = None
) -> plt.Figure:
    """Side-by-side test connectomes sharing one colour scale.

    Parameters
    ----------
    panels : {panel title: {"i", "j", "values"}}
        Edge lists of the same test regions (e.g. true, predicted, predicted from null).
    title : str
    order : optional region order (indices into the test regions' sorted list), e.g. by
        network or by y coordinate.

    Returns
    -------
    Figure with one image per panel: the (k, k) matrix of `edges_to_square` (NaN
    diagonal), colour scale ±(99th percentile of |values| over all panels).
    """
    mats = []
    for name, p in panels.items():
        m, _ = edges_to_square(p["i"], p["j"], p["values"])
        if order is not None:
            m = m[np.ix_(order, order)]
        mats.append((name, m))
    finite = np.concatenate([m[np.isfinite(m)] for _, m in mats])
    vmax = float(np.quantile(np.abs(finite), 0.99)) if finite.size else 1.0
    fig, axes = plt.subplots(1, len(mats), figsize=(4.2 * len(mats), 4.2), constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, (name, m) in zip(axes, mats):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="connectivity (target scale)")
    fig.suptitle(title, fontsize=11)
    return fig


def plot_network_gain(gain: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Per-network gain bars saved as PNG (see `draw_network_gain`)."""
    return save_figure(draw_network_gain(gain, title), path)


def draw_network_gain(gain: pd.DataFrame, title: str) -> plt.Figure:
    """Bars of ``gain`` (model r − reference r) per network, intra- and rest-of-brain edges.

    ``gain`` has the columns of `spatiomol.reports.tables.network_gain`; one bar
    container per edge kind, labelled "within network" and "network ↔ rest", bars in
    the order of first appearance of each network.
    """
    networks = list(dict.fromkeys(gain["network"]))
    x = np.arange(len(networks))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(networks) + 2), 3.8), constrained_layout=True)
    for offset, edges, colour in ((-0.2, "intra", "tab:blue"), (0.2, "rest", "tab:orange")):
        sub = gain[gain["edges"] == edges].set_index("network").reindex(networks)
        ax.bar(
            x + offset,
            sub["gain"].to_numpy(dtype=float),
            width=0.4,
            color=colour,
            label="within network" if edges == "intra" else "network ↔ rest",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, networks, rotation=30, ha="right")
    ax.set_ylabel("gain in test Pearson r")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_parameters(points: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Test r against parameter count saved as PNG (see `draw_parameters`)."""
    return save_figure(draw_parameters(points, title), path)


def draw_parameters(points: pd.DataFrame, title: str) -> plt.Figure:
    """Test Pearson r (mean ± SD over splits) against parameter count (log10 axis).

    ``points`` has columns ``label, n_parameters, mean, sd``; models with no learned
    parameters (count ≤ 0) are drawn at 1.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.0), constrained_layout=True)
    n = np.maximum(points["n_parameters"].to_numpy(dtype=float), 1.0)
    ax.errorbar(n, points["mean"], yerr=points["sd"].fillna(0.0), fmt="o", capsize=3)
    for xi, yi, label in zip(n, points["mean"], points["label"]):
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("learned parameters")
    ax.set_ylabel("test Pearson r")
    ax.set_title(title, fontsize=10)
    return fig


def plot_held_out(scores: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Held-out-system bars saved as PNG (see `draw_held_out`)."""
    return save_figure(draw_held_out(scores, title), path)


def draw_held_out(scores: pd.DataFrame, title: str) -> plt.Figure:
    """Grouped bars: one group per held-out system (``held_out``, in order of appearance),
    one bar container per model (labelled with its display name) of test Pearson r.

    ``scores`` has the columns of `spatiomol.reports.figure_sections.held_out_scores`.
    """
    from spatiomol.reports import tables

    systems = list(dict.fromkeys(scores["held_out"]))
    models = list(dict.fromkeys(scores["model"]))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(systems))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(systems) + 2), 3.8), constrained_layout=True)
    for k, model in enumerate(models):
        sub = scores[scores["model"] == model].set_index("held_out").reindex(systems)
        ax.bar(
            x + (k - (len(models) - 1) / 2) * width,
            sub["pearson"].to_numpy(dtype=float),
            width=width,
            label=tables.display(model),
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, systems, rotation=30, ha="right")
    ax.set_ylabel("test Pearson r")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_resolution_ladder(table: pd.DataFrame, path: str | Path) -> Path:
    """Test r against the number of regions saved as PNG (see `draw_resolution_ladder`)."""
    return save_figure(draw_resolution_ladder(table), path)


def draw_resolution_ladder(table: pd.DataFrame) -> plt.Figure:
    """One panel per split type: mean test r (true input) against the number of regions,
    with 95% t-interval error bars, one line per model (log x axis, ticks at the datasets;
    each model's points shifted by at most a few per cent along it, so intervals do not overlap).

    ``table`` has the columns of `spatiomol.reports.resolution_sections.ladder_table`;
    each line's label is the model's display name.
    """
    from spatiomol.reports import tables

    true = table[table["input"] == "true"]
    splits = list(dict.fromkeys(true["split_type"]))
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.0), constrained_layout=True, squeeze=False)
    for ax, split_type in zip(axes[0], splits):
        sub = true[true["split_type"] == split_type]
        models = tables.model_order(sub["model"])
        for k, model in enumerate(models):
            line = sub[sub["model"] == model].sort_values("n_regions")
            # a small per-model offset along the log axis keeps the intervals apart
            x = line["n_regions"].to_numpy(dtype=float) * 1.012 ** (k - (len(models) - 1) / 2)
            y = line["mean"].to_numpy(dtype=float)
            low = (y - line["ci_low"].to_numpy(dtype=float)).clip(min=0)
            high = (line["ci_high"].to_numpy(dtype=float) - y).clip(min=0)
            err = np.nan_to_num(np.vstack([low, high]))
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=tables.display(model))
        ticks = sorted(set(sub["n_regions"].astype(int)))
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("regions")
        ax.set_ylabel("test Pearson r")
        ax.set_title(f"{split_type} splits", fontsize=10)
        ax.legend(fontsize=7)
    return fig


def plot_transfer_matrix(matrix: pd.DataFrame, gain: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Transfer matrix saved as PNG (see `draw_transfer_matrix`)."""
    return save_figure(draw_transfer_matrix(matrix, gain, title), path)


def draw_transfer_matrix(matrix: pd.DataFrame, gain: pd.DataFrame, title: str) -> plt.Figure:
    """Heat map of test r (rows: source, columns: target), each cell annotated with its r and,
    below it, the gain over the source's null model (r true − r null; blank where no null run).

    ``matrix`` and ``gain`` are source × target frames of the same shape (NaN: no run).
    """
    values = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * matrix.shape[1] + 2.5, 1.0 * matrix.shape[0] + 1.8), constrained_layout=True)
    image = ax.imshow(values, cmap="viridis", vmin=np.nanmin(values) if np.isfinite(values).any() else 0, vmax=1.0)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if not np.isfinite(values[i, j]):
                continue
            g = gain.iloc[i, j]
            text = f"{values[i, j]:.2f}" + (f"\n{g:+.2f}" if np.isfinite(g) else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if values[i, j] < 0.6 else "black")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    ax.set_xlabel("target (predicted)")
    ax.set_ylabel("source (trained on)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="test Pearson r")
    return fig


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders created), close it and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
