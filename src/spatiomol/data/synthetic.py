"""Small synthetic brains with a planted, known gene → connectivity rule.

Used by tests of every later stage: a model that can represent the planted rule must
recover it; a null must destroy it. The generating parameters are stored in
``brain.provenance["synthetic"]`` so tests can compare against them.

The generative model
--------------------
1. Region centroids (mm) are drawn in two mirrored half-ellipsoids (left x < 0, right
   x > 0), cortex on the shell and a few subcortical regions near the centre.
2. Expression is smooth in space: ``n_programs`` latent gene programs are random smooth
   fields of the coordinates (random Fourier features with length scale
   ``smoothness_mm``); genes load on programs, plus independent noise; each gene is
   squashed to (0, 1) with a logistic function, like abagen's scaled robust sigmoid.
3. Region embeddings ``z = (X - mean) @ E`` with a random ``E`` (n_genes × rank).
4. The planted rule gives ``R_ij``:

   - ``"bilinear"``: ``R = z zᵀ`` (i.e. ``X_c O X_cᵀ`` with ``O = E Eᵀ``);
   - ``"nonlinear"``: ``R_ij = cos(z_i · w) · cos(z_j · w)`` +
     ``exp(-‖z_i − z_j‖² / 2)``, a rule no bilinear form of X represents;
   - ``"none"``: ``R = 0``.

   ``R`` is standardised over edges and scaled by ``signal_scale``.
5. Distance decay ``decay_weight · (sa_inf + (1 − sa_inf) · exp(−d / sa_lambda))`` is
   added, then symmetric Gaussian noise of SD ``noise``. The diagonal is set to 1.
6. With ``n_subjects > 0``, individual connectomes are ``Y + subject noise`` and ``Y`` is
   redefined as their mean, so the group target is exactly the population average.
7. A structural connectome (``Brain.structural``, an input modality) from its own
   generator (``default_rng([seed, 7])``, so steps 1–6 are unchanged by it): wiring
   strength ``exp(−d / 25 mm)`` times log-normal noise (SD 0.3), the weakest 60 % of edges
   set to 0, the rest as ``log(1 + 1000 · strength)``, like a log streamline density. It
   carries no planted rule beyond distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain

NETWORKS_7 = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")


def _symmetric_noise(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    e = rng.normal(0.0, sd, size=(n, n))
    e = np.triu(e, 1)
    return e + e.T


def make_synthetic_brain(
    n_regions: int = 60,
    n_genes: int = 120,
    *,
    rule: str = "bilinear",
    rank: int = 3,
    n_programs: int = 6,
    smoothness_mm: float = 40.0,
    signal_scale: float = 0.2,
    decay_weight: float = 0.0,
    sa_inf: float = 0.1,
    sa_lambda: float = 30.0,
    noise: float = 0.01,
    subcortical_fraction: float = 0.1,
    n_subjects: int = 0,
    subject_noise: float = 0.1,
    seed: int = 0,
    name: str | None = None,
) -> Brain:
    """Generate a synthetic `Brain` with a planted rule (see module docstring).

    Parameters
    ----------
    n_regions : int
        Number of regions (split evenly between hemispheres; must be even, ≥ 8).
    n_genes : int
        Number of genes.
    rule : {"bilinear", "nonlinear", "none"}
        The planted gene → connectivity rule.
    rank : int
        Dimension of the latent region embedding ``z``.
    signal_scale : float
        SD of the planted rule's contribution over edges (target units, r).
    decay_weight, sa_inf, sa_lambda : float
        Weight and parameters (offset, length in mm) of the distance-decay term.
    noise : float
        SD of independent symmetric edge noise.
    n_subjects : int
        Size of the individual stack (0: none).
    seed : int
        Seed of the ``numpy.random.Generator``; same seed, same brain.

    Returns
    -------
    Brain
        ``provenance["synthetic"]`` holds the parameters and the noiseless target
        ``"Y_clean"`` (n_regions × n_regions).
    """
    _check_arguments(rule, n_regions)
    rng = np.random.default_rng(seed)  # the steps below draw from it in this order
    regions, coords = _regions(rng, n_regions, subcortical_fraction)
    X = _smooth_expression(rng, coords, n_genes, n_programs, smoothness_mm)
    R, E, x_mean, z = _planted_rule(rng, X, rule, rank, signal_scale)
    Y_clean, Y, subjects = _targets(rng, R, coords, decay_weight, sa_inf, sa_lambda, noise, n_subjects, subject_noise)
    structural = _structural(np.random.default_rng([seed, 7]), coords)
    params = {
        "rule": rule,
        "rank": rank,
        "E": E,
        "x_mean": x_mean,
        "z": z,
        "signal_scale": signal_scale,
        "decay_weight": decay_weight,
        "sa_inf": sa_inf,
        "sa_lambda": sa_lambda,
        "noise": noise,
        "seed": seed,
        "Y_clean": Y_clean,
    }
    return Brain(
        name=name or f"synthetic-{rule}-{seed}",
        regions=regions,
        X=X,
        genes=tuple(f"GENE{k:04d}" for k in range(n_genes)),
        Y=Y,
        target_kind="fc",
        target_scale="r",
        subjects=subjects,
        provenance={"source": "spatiomol.data.synthetic.make_synthetic_brain", "synthetic": params},
        structural=structural,
    )


def _structural(rng: np.random.Generator, coords: np.ndarray) -> np.ndarray:
    """Step 7: a symmetric log-density-like structural connectome with a zero diagonal."""
    n = coords.shape[0]
    d = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    noise = np.exp(_symmetric_noise(rng, n, 0.3))
    strength = np.exp(-d / 25.0) * noise
    iu = np.triu_indices(n, 1)
    cut = np.quantile(strength[iu], 0.6)
    S = np.where(strength > cut, np.log1p(1000.0 * strength), 0.0)
    np.fill_diagonal(S, 0.0)
    return S


def _check_arguments(rule: str, n_regions: int) -> None:
    if rule not in ("bilinear", "nonlinear", "none"):
        raise ValueError(f"rule must be 'bilinear', 'nonlinear' or 'none', got {rule!r}")
    if n_regions < 8 or n_regions % 2:
        raise ValueError("n_regions must be even and at least 8")


def _centroids(rng: np.random.Generator, n_ctx_half: int, n_sub_half: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: (r, 3) centroids in mm, left hemisphere first, and the left cortical ones.

    Cortex on a half-ellipsoid shell, subcortex near the centre; the right hemisphere is
    the left one mirrored to ``x → −x`` plus 2 mm of Gaussian jitter.
    """
    v = rng.normal(size=(n_ctx_half, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[:, 0] = -np.abs(v[:, 0]) - 0.15  # left hemisphere: x < 0
    ctx_left = v * np.array([65.0, 95.0, 70.0]) * rng.uniform(0.85, 1.0, size=(n_ctx_half, 1))
    sub_left = np.column_stack(
        [-rng.uniform(8, 30, n_sub_half), rng.uniform(-30, 10, n_sub_half), rng.uniform(-20, 12, n_sub_half)]
    )
    left = np.vstack([ctx_left, sub_left])
    right = left * np.array([-1.0, 1.0, 1.0]) + rng.normal(0, 2.0, size=left.shape)
    return np.vstack([left, right]), ctx_left


def _regions(rng: np.random.Generator, n_regions: int, subcortical_fraction: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Step 1: the region table (labels, hemispheres, structures, networks, centroids) and the (r, 3) centroids, mm.

    A cortical region's network is that of the nearest of 7 anchors drawn among the left
    cortical centroids (the right hemisphere mirrored onto the left); subcortical regions
    are in ``"Subcortex"``.
    """
    half = n_regions // 2
    n_sub_half = int(round(subcortical_fraction * half))
    n_ctx_half = half - n_sub_half
    coords, ctx_left = _centroids(rng, n_ctx_half, n_sub_half)
    structure = (["cortex"] * n_ctx_half + ["subcortex"] * n_sub_half) * 2
    hemisphere = ["L"] * half + ["R"] * half
    n_anchor = min(len(NETWORKS_7), n_ctx_half)
    anchors = ctx_left[rng.choice(n_ctx_half, n_anchor, replace=False)]
    folded = coords.copy()
    folded[:, 0] = -np.abs(folded[:, 0])  # right hemisphere mirrored onto the left
    dist_to_anchor = np.linalg.norm(folded[:, None, :] - anchors[None], axis=2)
    network = [
        NETWORKS_7[k] if s == "cortex" else "Subcortex" for k, s in zip(dist_to_anchor.argmin(axis=1), structure)
    ]
    labels = [f"{h}_{s[:3]}_{k}" for k, (h, s) in enumerate(zip(hemisphere, structure))]
    regions = pd.DataFrame(
        {
            "label": labels,
            "hemisphere": hemisphere,
            "structure": structure,
            "network": network,
            "x": coords[:, 0],
            "y": coords[:, 1],
            "z": coords[:, 2],
        }
    )
    return regions, coords


def _smooth_expression(
    rng: np.random.Generator, coords: np.ndarray, n_genes: int, n_programs: int, smoothness_mm: float
) -> np.ndarray:
    """Step 2: (r, n_genes) expression in (0, 1), smooth in space (random Fourier programs)."""
    n_regions = coords.shape[0]
    freqs = rng.normal(0, 1.0 / smoothness_mm, size=(3, n_programs))
    phases = rng.uniform(0, 2 * np.pi, size=n_programs)
    programs = np.cos(coords @ freqs + phases)  # (r, n_programs)
    loadings = rng.normal(size=(n_programs, n_genes))
    raw = programs @ loadings + 0.5 * rng.normal(size=(n_regions, n_genes))
    raw = (raw - np.median(raw, 0)) / (np.subtract(*np.percentile(raw, [75, 25], axis=0)) + 1e-12)
    return 1.0 / (1.0 + np.exp(-raw))


def _planted_rule(
    rng: np.random.Generator, X: np.ndarray, rule: str, rank: int, signal_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 3–4: the planted rule ``R`` (r × r) and its parameters ``E``, ``x_mean``, ``z``."""
    n_regions, n_genes = X.shape
    E = rng.normal(size=(n_genes, rank)) / np.sqrt(n_genes)
    x_mean = X.mean(axis=0)
    z = (X - x_mean) @ E
    z = z / z.std(axis=0, keepdims=True)
    if rule == "bilinear":
        R = z @ z.T
    elif rule == "nonlinear":
        w = rng.normal(size=rank)
        w /= np.linalg.norm(w)
        c = np.cos(2.0 * z @ w)
        sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
        R = np.outer(c, c) + np.exp(-sq / 2.0)
    else:
        R = np.zeros((n_regions, n_regions))
    iu = np.triu_indices(n_regions, 1)
    if rule != "none":
        R = (R - R[iu].mean()) / R[iu].std() * signal_scale
    return R, E, x_mean, z


def _targets(
    rng: np.random.Generator,
    R: np.ndarray,
    coords: np.ndarray,
    decay_weight: float,
    sa_inf: float,
    sa_lambda: float,
    noise: float,
    n_subjects: int,
    subject_noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Steps 5–6: the noiseless target, the group target and the subject stack (or None).

    ``Y_clean`` is ``R`` plus the distance decay; ``Y`` adds symmetric noise, or with
    ``n_subjects > 0`` is the mean of the subjects' connectomes (``Y`` + subject noise).
    Every diagonal is 1.
    """
    n_regions = R.shape[0]
    d = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    Y_clean = R + decay_weight * (sa_inf + (1.0 - sa_inf) * np.exp(-d / sa_lambda))
    Y = Y_clean + _symmetric_noise(rng, n_regions, noise)
    subjects = None
    if n_subjects > 0:
        subjects = np.stack([Y + _symmetric_noise(rng, n_regions, subject_noise) for _ in range(n_subjects)])
        for s in subjects:
            np.fill_diagonal(s, 1.0)
        Y = subjects.mean(axis=0)
    np.fill_diagonal(Y, 1.0)
    np.fill_diagonal(Y_clean, 1.0)
    return Y_clean, Y, subjects
