"""What every registry model owes its users, checked across all of them.

- Fitting reads no target outside the training (and validation) regions: poisoning every
  other connectome entry and subject value leaves predictions bit-identical.
- Genes are matched by name: a brain with its genes in another order predicts the same.
- The registry's record of what a model reads (expression, coordinates) is what the
  fitted model actually reads.
- Region indices are checked: negative, out-of-range or fractional indices are errors,
  not silent wrap-around or truncation.
- Non-finite training targets are a clear error.
"""

from __future__ import annotations

import numpy as np
import pytest

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.registry import MODELS, make_model

TINY = {
    "mlp": dict(hidden_dims=[8], epochs=2, batch_size=32, device="cpu", aug_prob=0.3),
    "mlp-coords": dict(hidden_dims=[8], epochs=2, batch_size=32, device="cpu", aug_prob=0.3),
    "mlp-coords-only": dict(hidden_dims=[8], epochs=2, batch_size=32, device="cpu"),
    "smt": dict(
        d_model=8,
        nhead=2,
        num_layers=1,
        token_encoder_dim=4,
        encoder_output_dim=2,
        deep_hidden_dims=[8, 8],
        epochs=2,
        batch_size=32,
        gene_order="as_given",
        device="cpu",
        aug_prob=0.3,
        aug_style="constant",
    ),
    "smt-cls": dict(
        d_model=8,
        nhead=2,
        num_layers=1,
        token_encoder_dim=4,
        encoder_output_dim=2,
        deep_hidden_dims=[8, 8],
        epochs=2,
        batch_size=32,
        gene_order="as_given",
        device="cpu",
        aug_prob=0.3,
        aug_style="curriculum_swap_constant",
    ),
    "bilinear-lowrank": dict(epochs=30),
    "cm-pca": dict(n_components=5),
    "cm-pls": dict(n_components=3),
    "cge-pca": dict(n_components=5),
}


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(24, 12, rule="bilinear", decay_weight=0.3, n_subjects=3, seed=9)


def model(name):
    return make_model(name, **TINY.get(name, {}))


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_reads_no_target_outside_its_regions(brain, name):
    train, val = np.arange(0, 14), np.arange(14, 18)
    seen = np.concatenate([train, val])
    poisoned_Y = brain.Y.copy()
    poisoned_S = brain.subjects.copy()
    outside = np.ones_like(poisoned_Y, dtype=bool)
    for block in (train, val):
        outside[np.ix_(block, block)] = False
    poisoned_Y[outside] *= 1000.0
    poisoned_S[:, outside] = 77.0
    poisoned = brain.replace(Y=poisoned_Y, subjects=poisoned_S)
    i, j = brain.pairs(np.setdiff1d(np.arange(24), seen))
    clean = model(name).fit(brain, train, val).predict(brain, i, j)
    dirty = model(name).fit(poisoned, train, val).predict(brain, i, j)
    np.testing.assert_array_equal(clean, dirty)


@pytest.mark.parametrize("name", list(MODELS))
def test_spec_states_what_the_fitted_model_reads(brain, name):
    """`ModelSpec.reads_expression` / `reads_coords` agree with the fitted model: giving
    each region another region's expression row (or centroid) changes its predictions
    if and only if the spec says the model reads it (centroids are permuted, not shifted:
    a shift leaves every distance, and so the distance rules, unchanged)."""
    spec = MODELS[name]
    fitted = model(name).fit(brain, np.arange(18))
    assert fitted._reads_expression() is spec.reads_expression
    i, j = brain.pairs()
    permutation = np.random.default_rng(0).permutation(brain.n_regions)
    moved = brain.regions.copy()
    moved[["x", "y", "z"]] = brain.coords[permutation]
    reference = fitted.predict(brain, i, j)
    for reads, other in (
        (spec.reads_expression, brain.permute_expression(permutation)),
        (spec.reads_coords, brain.replace(regions=moved)),
    ):
        change = np.abs(fitted.predict(other, i, j) - reference).max()
        assert change > 1e-6 if reads else change == 0.0


@pytest.mark.parametrize("name", [n for n in MODELS if MODELS[n].reads_expression])
def test_genes_are_matched_by_name_not_position(brain, name):
    fitted = model(name).fit(brain, np.arange(18))
    i, j = brain.pairs(np.arange(18, 24))
    reordered = brain.select_genes(list(reversed(brain.genes)))
    np.testing.assert_array_equal(fitted.predict(brain, i, j), fitted.predict(reordered, i, j))
    with pytest.raises(ValueError, match=r"lack 1 of the model's 12 genes"):
        fitted.predict(brain.select_genes(list(brain.genes[1:])), i, j)


def test_region_indices_are_checked(brain):
    fitted = model("cm").fit(brain, np.arange(18))
    with pytest.raises(ValueError, match=r"i: region indices must lie in 0\.\.23"):
        fitted.predict(brain, [-1], [0])
    with pytest.raises(ValueError, match=r"j: region indices must lie in 0\.\.23"):
        fitted.predict(brain, [0], [24])
    with pytest.raises(ValueError, match="must be integers"):
        fitted.predict(brain, [2.7], [0])
    with pytest.raises(ValueError, match="train_regions"):
        model("cm").fit(brain, [-2, -1, 0, 1, 2])
    # whole-number floats are accepted and mean the same regions
    np.testing.assert_array_equal(fitted.predict(brain, [2.0], [5.0]), fitted.predict(brain, [2], [5]))


@pytest.mark.parametrize("name", ["cge-pca", "exp-decay", "gaussian-kernel", "cm", "mlp"])
def test_non_finite_training_target_is_a_clear_error(brain, name):
    Y = brain.Y.copy()
    Y[0, 1] = Y[1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model(name).fit(brain.replace(Y=Y), np.arange(18))


def test_exp_decay_takes_a_free_amplitude_off_the_r_scale():
    """On a raw-scale target y = 2 + 6·exp(-d/25) the paper's Y(0)=1 form cannot fit;
    ``form="auto"`` switches to a + b·exp(-d/λ) and recovers the planted parameters."""
    brain = make_synthetic_brain(40, 10, rule="none", seed=1)
    d = brain.distances
    Y = 2.0 + 6.0 * np.exp(-d / 25.0)
    raw = brain.replace(Y=Y, target_scale="raw")
    fitted = make_model("exp-decay").fit(raw, np.arange(40))
    assert fitted.form_ == "scaled" and fitted.n_parameters_ == 3
    np.testing.assert_allclose([fitted.sa_inf_, fitted.amplitude_, fitted.sa_lambda_], [2.0, 6.0, 25.0], rtol=1e-6)
    on_r = make_model("exp-decay").fit(brain, np.arange(40))
    assert on_r.form_ == "unit" and on_r.amplitude_ == pytest.approx(1.0 - on_r.sa_inf_)


def test_batch_size_below_two_is_refused(brain):
    with pytest.raises(ValueError, match=r"'batch_size' parameter of MLP must be an int in the range \[2, inf\)"):
        make_model("mlp", batch_size=1, epochs=1, device="cpu").fit(brain, np.arange(18))
