"""The neural models learn what bilinear models cannot: a planted non-linear rule.

Rule: cos(z_i·w)·cos(z_j·w) + exp(-|z_i - z_j|²/2) of latent gene programs z, which no
bilinear form of X represents. Both the MLP and the SMT must beat the low-rank bilinear
baseline on held-out test regions by a clear margin (r + 0.2, MSE × 0.8) on *every* one
of 16 seeds (seed = brain, split and model seed): a fit that gets stuck on some seeds, or
only on some CPUs' floating-point paths, fails this test. The training recipe was chosen
on seeds 0–23 (benchmarks/training_recipe.py); these are other seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.lowrank import BilinearLowRank
from spatiomol.models.registry import make_model

NEURAL = {
    "mlp": dict(
        hidden_dims=[128, 64],
        batch_size=256,
        learning_rate=2e-3,
        dropout_rate=0.0,
        weight_decay=0.0,
        epochs=60,
        patience=15,
        device="cpu",
    ),
    "smt": dict(
        d_model=16,
        nhead=2,
        num_layers=1,
        # 8 tokens of 2 genes and a BatchNorm decoder: chosen on seeds 0-23 among the settings
        # of benchmarks/training_recipe.py --part smt-settings (0 of 24 failed; with 4 tokens
        # of 4 genes and the default LayerNorm decoder, 3 of 24 failed, 1 of them stuck)
        token_encoder_dim=2,
        hidden_norm="batch",
        encoder_output_dim=2,
        deep_hidden_dims=[64, 32],
        batch_size=256,
        learning_rate=2e-3,
        dropout_rate=0.0,
        transformer_dropout=0.0,
        epochs=40,
        patience=15,
        batching="region_blocks",
        gene_order="as_given",
        aug_prob=0.0,
        device="cpu",
    ),
}


SEEDS = range(100, 116)


def planted_case(seed: int):
    """Brain, training / validation regions, test edges and the bilinear baseline's predictions."""
    brain = make_synthetic_brain(160, 16, rule="nonlinear", rank=2, seed=seed)
    perm = np.random.default_rng(seed).permutation(160)
    test, val, train = np.sort(perm[:40]), np.sort(perm[40:60]), np.sort(perm[60:])
    i, j = brain.pairs(test)
    baseline = BilinearLowRank(rank=10).fit(brain, train, val).predict(brain, i, j)
    return brain, train, val, i, j, baseline


@pytest.mark.parametrize("name", list(NEURAL))
def test_neural_model_beats_bilinear_low_rank_on_every_seed(name):
    failures = []
    for seed in SEEDS:
        brain, train, val, i, j, baseline = planted_case(seed)
        y = brain.targets(i, j)
        model = make_model(name, **NEURAL[name], seed=seed).fit(brain, train, val)
        predicted = model.predict(brain, i, j)
        r_base, r_model = np.corrcoef(baseline, y)[0, 1], np.corrcoef(predicted, y)[0, 1]
        mse_base, mse_model = np.mean((baseline - y) ** 2), np.mean((predicted - y) ** 2)
        if not (r_model > r_base + 0.2 and mse_model < 0.8 * mse_base) or model.history_.not_trained:
            failures.append((seed, round(r_model, 3), round(r_base, 3), model.history_.not_trained))
    assert not failures, f"{name}: seeds that failed (seed, r, baseline r, not-trained reasons): {failures}"
