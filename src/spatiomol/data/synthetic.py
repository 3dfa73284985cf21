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
    if rule not in ("bilinear", "nonlinear", "none"):
        raise ValueError(f"rule must be 'bilinear', 'nonlinear' or 'none', got {rule!r}")
    if n_regions < 8 or n_regions % 2:
        raise ValueError("n_regions must be even and at least 8")
    rng = np.random.default_rng(seed)
    half = n_regions // 2
    n_sub_half = int(round(subcortical_fraction * half))
    n_ctx_half = half - n_sub_half

    # 1. coordinates: cortex on a half-ellipsoid shell, subcortex near the centre
    def shell(k: int) -> np.ndarray:
        v = rng.normal(size=(k, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v[:, 0] = -np.abs(v[:, 0]) - 0.15  # left hemisphere: x < 0
        return v * np.array([65.0, 95.0, 70.0]) * rng.uniform(0.85, 1.0, size=(k, 1))

    ctx_left = shell(n_ctx_half)
    sub_left = np.column_stack(
        [-rng.uniform(8, 30, n_sub_half), rng.uniform(-30, 10, n_sub_half), rng.uniform(-20, 12, n_sub_half)]
    )
    left = np.vstack([ctx_left, sub_left])
    right = left * np.array([-1.0, 1.0, 1.0]) + rng.normal(0, 2.0, size=left.shape)
    coords = np.vstack([left, right])
    structure = (["cortex"] * n_ctx_half + ["subcortex"] * n_sub_half) * 2
    hemisphere = ["L"] * half + ["R"] * half

    # networks: nearest of 7 bilateral anchors (cortex only)
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

    # 2. smooth expression
    freqs = rng.normal(0, 1.0 / smoothness_mm, size=(3, n_programs))
    phases = rng.uniform(0, 2 * np.pi, size=n_programs)
    programs = np.cos(coords @ freqs + phases)  # (r, n_programs)
    loadings = rng.normal(size=(n_programs, n_genes))
    raw = programs @ loadings + 0.5 * rng.normal(size=(n_regions, n_genes))
    raw = (raw - np.median(raw, 0)) / (np.subtract(*np.percentile(raw, [75, 25], axis=0)) + 1e-12)
    X = 1.0 / (1.0 + np.exp(-raw))

    # 3-4. planted rule on latent embeddings
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

    # 5. distance decay and noise
    d = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    decay = decay_weight * (sa_inf + (1.0 - sa_inf) * np.exp(-d / sa_lambda))
    Y_clean = R + decay
    Y = Y_clean + _symmetric_noise(rng, n_regions, noise)
    subjects = None
    if n_subjects > 0:
        subjects = np.stack([Y + _symmetric_noise(rng, n_regions, subject_noise) for _ in range(n_subjects)])
        for s in subjects:
            np.fill_diagonal(s, 1.0)
        Y = subjects.mean(axis=0)
    np.fill_diagonal(Y, 1.0)
    np.fill_diagonal(Y_clean, 1.0)

    genes = tuple(f"GENE{k:04d}" for k in range(n_genes))
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
        genes=genes,
        Y=Y,
        target_kind="fc",
        target_scale="r",
        subjects=subjects,
        provenance={"source": "spatiomol.data.synthetic.make_synthetic_brain", "synthetic": params},
    )
