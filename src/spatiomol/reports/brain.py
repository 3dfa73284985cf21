"""Connectomes and per-region accuracy on the brain, drawn with nilearn (MNI glass brain).

- `connectome_panels`: observed and predicted test connectomes of one split as (k, k)
  matrices over its test regions, each panel its ``n`` strongest edges (the same ``n``,
  `strong_edge_threshold`) on one colour scale.
- `draw_glass_connectomes`: those panels with `nilearn.plotting.plot_connectome`.
- `region_accuracy`: Pearson r of each test region's edges (observed vs predicted).
- `draw_region_markers`: per-region values with `nilearn.plotting.plot_markers`.
- `connectome_view_page`: an interactive `nilearn.plotting.view_connectome` page with the
  same thresholds and colour scale, made self-contained (no link to the network).

nilearn is imported inside the drawing functions (it is slow to import); the numbers
(`connectome_panels`, `region_accuracy`) need only NumPy.
"""

from __future__ import annotations

import json
import re
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: nilearn's default diverging colormap (``plot_connectome``'s ``edge_cmap``), used for
#: edges and for per-region Pearson r alike
DIVERGING_CMAP = "RdBu_r"
#: the strongest observed edges drawn: this fraction of the test edges, clipped to
#: [MIN_STRONG_EDGES, MAX_STRONG_EDGES]
STRONG_EDGE_FRACTION = 0.05
MIN_STRONG_EDGES = 10
MAX_STRONG_EDGES = 150
#: fewest edges a region needs for its per-region Pearson r
MIN_REGION_EDGES = 3


def edge_matrix(i: np.ndarray, j: np.ndarray, values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Symmetric (k, k) matrix of edge ``values`` over ``regions`` (sorted); 0 where no edge.

    Parameters
    ----------
    i, j : (e,) int arrays
        Region indices of the edges, all in ``regions``.
    values : (e,) float array
    regions : (k,) sorted int array
    """
    a = np.searchsorted(regions, i)
    b = np.searchsorted(regions, j)
    if not (np.array_equal(regions[a], i) and np.array_equal(regions[b], j)):
        raise ValueError("edge_matrix: every edge end must be one of `regions`")
    m = np.zeros((regions.size, regions.size))
    m[a, b] = values
    m[b, a] = values
    return m


def strong_edge_threshold(
    values: np.ndarray,
    fraction: float = STRONG_EDGE_FRACTION,
    minimum: int = MIN_STRONG_EDGES,
    maximum: int = MAX_STRONG_EDGES,
) -> tuple[float, int]:
    """Threshold on |value| that keeps the ``n`` strongest of ``values``.

    ``n = clip(ceil(fraction · e), minimum, maximum)`` (at most ``e``, the number of
    finite values). The threshold lies halfway between the n-th and (n+1)-th largest
    |value|, so ``|v| > threshold`` keeps exactly those ``n`` when there are no ties
    (nilearn drops edges with ``|v| <= threshold``).

    Returns
    -------
    (threshold, n)
    """
    a = np.sort(np.abs(np.asarray(values, dtype=float)[np.isfinite(values)]))[::-1]
    if a.size == 0:
        raise ValueError("strong_edge_threshold: no finite edge values")
    n = int(min(a.size, max(minimum, min(maximum, int(np.ceil(fraction * a.size))))))
    if n == a.size:
        return float(a[-1]) / 2.0, n
    return float(a[n - 1] + a[n]) / 2.0, n


def connectome_panels(edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, object]:
    """Panels of one split's test edges: each its ``n`` strongest edges, one colour scale.

    Every panel keeps the same number ``n`` of strongest edges (`strong_edge_threshold`;
    the same rank threshold, like nilearn's percentile ``edge_threshold``). A shared
    *value* threshold would leave the prediction panels empty: predictions shrink toward
    the mean connectivity (on hcp-s100 no predicted edge reaches the 21st strongest
    observed value), while the same rank shows where each panel puts its strongest edges.
    The colour scale is shared, so the shrinkage shows as paler predicted edges.

    Parameters
    ----------
    edges : {panel title: (i, j, values)}
        The same test edges in every panel (e.g. observed, predicted from true
        expression, predicted from a null).

    Returns
    -------
    dict with ``regions`` (k,) sorted test regions, ``matrices`` {title: (k, k)},
    ``thresholds`` {title: |value| threshold of that panel (target units)},
    ``n_strong`` (edges kept per panel) and ``vmax`` (largest |value| drawn in any
    panel: the colour scale ±vmax of every panel).
    """
    (i0, j0, _), *_ = edges.values()
    regions = np.unique(np.concatenate([i0, j0]))
    matrices, thresholds, drawn = {}, {}, []
    for title, (i, j, values) in edges.items():
        if not (np.array_equal(i, i0) and np.array_equal(j, j0)):
            raise ValueError(f"connectome_panels: panel {title!r} has other edges than the first panel")
        values = np.asarray(values, dtype=float)
        matrices[title] = edge_matrix(i, j, values, regions)
        thresholds[title], n_strong = strong_edge_threshold(values)
        drawn.append(np.abs(values[np.abs(values) > thresholds[title]]))
    shown = np.concatenate(drawn)
    vmax = float(shown.max()) if shown.size else 1.0
    return {"regions": regions, "matrices": matrices, "thresholds": thresholds, "n_strong": n_strong, "vmax": vmax}


def region_accuracy(i: np.ndarray, j: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_regions: int) -> np.ndarray:
    """Pearson r between observed and predicted values of each region's edges.

    Parameters
    ----------
    i, j : (e,) int arrays
        Test edges of one split.
    y_true, y_pred : (e,) float arrays
    n_regions : int

    Returns
    -------
    (n_regions,) float array; NaN for a region with fewer than `MIN_REGION_EDGES`
    edges or with a constant observed or predicted value over them.
    """
    out = np.full(n_regions, np.nan)
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    for region in np.unique(np.concatenate([i, j])):
        mask = (i == region) | (j == region)
        a, b = y_true[mask], y_pred[mask]
        if mask.sum() < MIN_REGION_EDGES or np.ptp(a) == 0 or np.ptp(b) == 0 or not np.isfinite(b).all():
            continue
        out[region] = float(np.corrcoef(a, b)[0, 1])
    return out


def draw_glass_connectomes(
    matrices: dict[str, np.ndarray], coords: np.ndarray, thresholds: dict[str, float], vmax: float, title: str
) -> plt.Figure:
    """One glass-brain row (left, axial, right views) per panel, one colour scale.

    Parameters
    ----------
    matrices : {panel title: (k, k) array}
    coords : (k, 3) MNI centroids, mm
    thresholds : {panel title: float}
        Edges with ``|value| <= threshold`` are not drawn.
    vmax : float
        Colour scale ±vmax (`DIVERGING_CMAP`).
    """
    from nilearn import plotting

    fig, axes = plt.subplots(len(matrices), 1, figsize=(11, 3.3 * len(matrices)))
    axes = np.atleast_1d(axes)
    for ax, (name, matrix) in zip(axes, matrices.items()):
        threshold = thresholds[name]
        n_shown = int((np.abs(matrix[np.triu_indices_from(matrix, 1)]) > threshold).sum())
        # a panel with no edge above the threshold (a null's flat prediction) shows its
        # nodes only: nilearn cannot draw a colour bar for an empty edge set
        plotting.plot_connectome(
            matrix if n_shown else np.zeros_like(matrix),
            coords,
            node_color="0.25",
            node_size=10,
            edge_cmap=DIVERGING_CMAP,
            edge_vmin=-vmax,
            edge_vmax=vmax,
            edge_threshold=threshold if n_shown else None,
            display_mode="lzr",
            figure=fig,
            axes=ax,
            title=f"{name}: {n_shown} edges, |value| > {threshold:.2f}",
            colorbar=bool(n_shown),
        )
    fig.suptitle(textwrap.fill(title, 120), fontsize=10)
    return fig


def draw_region_markers(values: dict[str, np.ndarray], coords: np.ndarray, vmax: float, title: str) -> plt.Figure:
    """Per-region values as glass-brain markers, one row per entry, colour scale ±vmax.

    Parameters
    ----------
    values : {row title: (n,) float array}; NaN regions are left out.
    coords : (n, 3) MNI centroids, mm
    """
    from nilearn import plotting

    fig, axes = plt.subplots(len(values), 1, figsize=(11, 3.3 * len(values)))
    axes = np.atleast_1d(axes)
    for ax, (name, v) in zip(axes, values.items()):
        keep = np.isfinite(v)
        plotting.plot_markers(
            v[keep],
            coords[keep],
            node_size=30,
            node_cmap=DIVERGING_CMAP,
            node_vmin=-vmax,
            node_vmax=vmax,
            display_mode="lzr",
            figure=fig,
            axes=ax,
            title=f"{name}: median r = {np.median(v[keep]):.2f} over {int(keep.sum())} regions",
            colorbar=True,
        )
    fig.suptitle(textwrap.fill(title, 120), fontsize=10)
    return fig


_FAVICON = re.compile(r"<link\b[^>]*\brel=\"icon\"[^>]*>", re.IGNORECASE)
# nilearn writes the edge colour scale as consecutive JSON keys: stops, then range
_COLOUR_SCALE = re.compile(r"\"line_colorscale\": \[\[.*?\]\], \"line_cmin\": [^,}]+, \"line_cmax\": [^,}]+")


def plotly_colour_scale(threshold: float, vmax: float, n: int = 100) -> list[list]:
    """`DIVERGING_CMAP` over [-vmax, vmax] as plotly stops, grey where |value| <= threshold.

    The look of nilearn's thresholded colour bars, on a range the caller fixes.
    """
    import matplotlib as mpl

    stops = np.linspace(0.0, 1.0, n)
    values = -vmax + 2.0 * vmax * stops
    rgb = (mpl.colormaps[DIVERGING_CMAP](stops)[:, :3] * 255).round().astype(int)
    rgb[np.abs(values) <= threshold] = 128
    return [[round(float(x), 3), f"rgb({r}, {g}, {b})"] for x, (r, g, b) in zip(stops, rgb)]


def connectome_view_page(matrix: np.ndarray, coords: np.ndarray, threshold: float, vmax: float, title: str) -> str:
    """A self-contained interactive 3-D view (`nilearn.plotting.view_connectome`) of ``matrix``.

    nilearn inlines its JavaScript (jQuery, plotly) and the fsaverage mesh; its page
    template also links a favicon on raw.githubusercontent.com, which is removed so the
    page reaches nothing outside itself. nilearn scales colours to the largest |value|
    of each matrix; the page's edge colour scale (``line_colorscale``, ``line_cmin``,
    ``line_cmax``) is replaced by `plotly_colour_scale` on ±``vmax`` so every panel
    shares one colour scale.

    Returns
    -------
    str, a complete HTML document.

    Raises
    ------
    RuntimeError
        When the page lacks nilearn's colour-scale fields (a nilearn version with another
        page layout).
    """
    import warnings

    from nilearn import plotting

    with warnings.catch_warnings():
        # nilearn warns when no edge passes the shared threshold (a flat null prediction);
        # the panel then shows the nodes only, which is the point of the comparison
        warnings.filterwarnings("ignore", message="The given float value must not exceed", category=UserWarning)
        view = plotting.view_connectome(
            matrix,
            coords,
            edge_threshold=threshold,
            edge_cmap=DIVERGING_CMAP,
            symmetric_cmap=True,
            linewidth=4.0,
            node_size=4.0,
            title=title,
            title_fontsize=16,
            colorbar_fontsize=14,
        )
    page = _FAVICON.sub("", str(view.html))
    scale = json.dumps(
        {"line_colorscale": plotly_colour_scale(threshold, vmax), "line_cmin": -float(vmax), "line_cmax": float(vmax)}
    )[1:-1]
    page, n = _COLOUR_SCALE.subn(lambda _: scale, page)
    if n != 1:
        raise RuntimeError(
            f"view_connectome page has {n} edge colour scales (expected 1); cannot share the colour scale"
        )
    return page
