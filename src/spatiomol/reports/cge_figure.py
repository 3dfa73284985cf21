"""Fig. 3: CGE–distance curves of the true brain, a low-error and a high-error null.

Each panel shows the correlated gene expression (Pearson r) of every region pair against
centroid distance (mm, a seeded subsample of pairs), the mean in each distance bin, and
the two fitted curves of Algorithm 1 — exponential ``SA_inf + (1 − SA_inf)·e^(−d/SA_lambda)``
and cubic ``a1·d³ + a2·d² + a3·d + a4`` — with their parameters. The low-error null is
the best of the `NullSet`, the high-error null the worst of all those scored.

A null's CGE comes from its expression (`NullSet.null_expression`,
`NullSet.worst_null_expression`): rows it permutes carry their region's correlations
along, rows it replaces with new expression (Moran, variogram, the spins' non-cortical
Moran rows) have new ones. ``pca-cge`` nulls are projected on the true brain's principal
components, as `spatiomol.nulls.score_nulls` does.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from spatiomol.data.brain import Brain  # noqa: E402
from spatiomol.nulls.cge import (  # noqa: E402
    correlated_gene_expression,
    cubic_curve,
    exponential_curve,
    fit_curves,
)
from spatiomol.nulls.defaults import NULL_TUNING_DEFAULTS  # noqa: E402
from spatiomol.nulls.families import FAMILIES  # noqa: E402
from spatiomol.nulls.select import NullSet  # noqa: E402
from spatiomol.reports import figures  # noqa: E402


def _panel(ax, distances, values, centres, means, params, title, width, rng, max_points):
    keep = np.arange(distances.size)
    if keep.size > max_points:
        keep = np.sort(rng.choice(keep, max_points, replace=False))
    ax.scatter(distances[keep], values[keep], s=1.5, color="0.6", alpha=0.25, rasterized=True, linewidths=0)
    ax.bar(centres, means, width=width, color="0.35", alpha=0.35, label=f"mean CGE ({width:g} mm bins)")
    d = np.linspace(0.0, distances.max(), 200)
    sa_lambda, sa_inf, a1, a2, a3, a4 = params
    ax.plot(d, exponential_curve(d, sa_inf, sa_lambda), color="tab:red", lw=2, label="exponential")
    ax.plot(d, cubic_curve(d, a1, a2, a3, a4), color="tab:orange", lw=2, label="cubic")
    text = (
        f"SA$_\\lambda$ = {sa_lambda:.1f} mm\nSA$_\\infty$ = {sa_inf:.3f}\n"
        f"a1 = {a1:.2e}\na2 = {a2:.2e}\na3 = {a3:.2e}\na4 = {a4:.3f}"
    )
    ax.text(
        0.97,
        0.97,
        text,
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"},
    )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("distance (mm)")
    ax.axhline(0.0, color="0.5", lw=0.5)


def plot_cge_curves(brain: Brain, nulls: NullSet, path: str | Path, *, max_points: int = 20000, seed: int = 0) -> Path:
    """Draw Fig. 3 for ``brain`` and its ``nulls`` and save it as a PNG.

    Parameters
    ----------
    brain : Brain
        The brain the nulls were generated for (same regions, same order).
    nulls : NullSet
    path : str or Path
        Output PNG.
    max_points : int
        Pairs drawn in each scatter (a seeded subsample; all bins use every pair).
    seed : int
        Seed of the subsample.

    Returns
    -------
    Path of the written PNG.
    """
    nulls.check_brain(brain)
    method = nulls.metadata.get("method", "cge")
    X = np.asarray(brain.X, dtype=np.float64)
    spec = FAMILIES.get(method) if isinstance(method, str) else None
    if spec is not None and spec.cge_features == "pca":
        variance = nulls.metadata.get("pca_variance") or NULL_TUNING_DEFAULTS["pca_variance"]
        pca = PCA(n_components=None if variance >= 1.0 else variance, svd_solver="full").fit(X)
        features = pca.transform
        ylabel = "PCA-CGE (Pearson r)"
    else:
        features = np.asarray
        ylabel = "CGE (Pearson r)"
    cge = correlated_gene_expression(features(X))
    i, j = np.triu_indices(brain.n_regions, k=1)
    distances = brain.distances[i, j]
    width = float(nulls.metadata.get("bin_mm", NULL_TUNING_DEFAULTS["bin_mm"]))
    centres = nulls.bin_centres
    true_params = [nulls.true_parameters[q] for q in ("SA_lambda", "SA_inf", "a1", "a2", "a3", "a4")]
    if nulls.is_permutation:  # a permuted CGE matrix: no correlation to recompute
        best_values = cge[nulls.permutations[0][i], nulls.permutations[0][j]]
        worst_values = cge[nulls.worst_permutation[i], nulls.worst_permutation[j]]
    else:
        best_values = correlated_gene_expression(features(nulls.apply(brain, 0).X))[i, j]
        worst_values = correlated_gene_expression(features(nulls.worst_null_expression(X)))[i, j]
    worst_params = fit_curves(centres, nulls.worst_curve[None])[0]
    best_params = nulls.parameters.loc[0, ["SA_lambda", "SA_inf", "a1", "a2", "a3", "a4"]].to_numpy(float)
    worst_error = float(np.max(nulls.all_errors))
    # unselected nulls (naive "random", and moran/variogram/hungarian by default): the first is the first draw
    naive = spec is not None and spec.naive
    selected = nulls.metadata.get("cge_match", not naive)  # format-1 files have no cge_match
    first_name = "Low-error null" if selected else ("Naive null, first draw" if naive else "First draw")
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True)
    panels = [
        (cge[i, j], nulls.true_curve, true_params, f"True brain ({brain.name})"),
        (best_values, nulls.curves[0], best_params, f"{first_name} (e = {nulls.errors[0]:.2f})"),
        (worst_values, nulls.worst_curve, worst_params, f"High-error null (e = {worst_error:.2f})"),
    ]
    for ax, (values, means, params, title) in zip(axes, panels):
        _panel(ax, distances, values, centres, means, params, title, width, rng, max_points)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(loc="lower left", fontsize=7)
    kept = f"best of n = {nulls.metadata.get('n')}" if selected else f"first of n = {nulls.metadata.get('n')}"
    fig.suptitle(
        f"{method} nulls: {kept} (seed {nulls.metadata.get('seed')}) vs the worst scored",
        fontsize=11,
    )
    fig.tight_layout()
    return figures.save_figure(fig, path, dpi=120)
