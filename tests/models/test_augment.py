"""Target-side augmentation (Algorithm 2): schedules, realised rates, targets, the no-stack case."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from spatiomol.data.brain import STRONG_EDGE_R
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.augment import AUG_STYLES, TargetAugmenter, augmentation_probability
from spatiomol.models.registry import make_model

torch.set_num_threads(1)


def test_schedules_match_closed_form():
    E, p = 11, 0.3
    t = np.arange(E) / (E - 1)
    expected = {
        "none": np.zeros(E),
        "constant": np.full(E, p),
        "curriculum_swap_constant": np.full(E, p),
        "linear_decay": p * (1 - t),
        "curriculum_swap_linear_decay": p * (1 - t),
        "linear_increase": p * t,
        "linear_peak": p * (1 - np.abs(2 * t - 1)),
    }
    assert set(expected) == set(AUG_STYLES)
    for style, values in expected.items():
        got = [augmentation_probability(style, p, e, E) for e in range(E)]
        np.testing.assert_allclose(got, values, atol=1e-12, err_msg=style)
    # the peak is at mid-training and reaches p; the alias "peak" is the same schedule
    assert augmentation_probability("peak", p, 5, E) == pytest.approx(p)
    assert augmentation_probability("linear_decay", p, 0, 1) == pytest.approx(p)


@pytest.mark.parametrize("bad", [{"aug_style": "sometimes"}, {"aug_prob": 1.5}, {"epoch": 10}])
def test_schedule_rejects_bad_input(bad):
    args = {"aug_style": "constant", "aug_prob": 0.3, "epoch": 0, "n_epochs": 10} | bad
    with pytest.raises(ValueError):
        augmentation_probability(**args)


@pytest.fixture(scope="module")
def stack_brain():
    return make_synthetic_brain(24, 10, rule="bilinear", signal_scale=0.4, n_subjects=7, seed=3)


def _augmenter(brain, style, p=0.3, n_epochs=5):
    i, j = brain.pairs()
    return (
        TargetAugmenter(brain.subjects, i, j, brain.targets(i, j), aug_prob=p, aug_style=style, n_epochs=n_epochs),
        i,
        j,
    )


@pytest.mark.parametrize(
    "style", ["constant", "linear_decay", "linear_increase", "linear_peak", "curriculum_swap_linear_decay"]
)
def test_realised_rate_follows_schedule(stack_brain, style):
    augmenter, i, j = _augmenter(stack_brain, style, p=0.4, n_epochs=5)
    rng = np.random.default_rng(11)
    n_batches = 3000
    y = stack_brain.targets(i, j)
    for epoch in range(5):
        for _ in range(n_batches):
            pos = rng.integers(len(i), size=8)
            augmenter(pos, y[pos], epoch, rng)
    rates = augmenter.realised_rates()
    for epoch in range(5):
        p = augmentation_probability(style, 0.4, epoch, 5)
        tolerance = 4.5 * np.sqrt(max(p * (1 - p), 1e-12) / n_batches)  # ~4.5 binomial SDs
        assert abs(rates[epoch] - p) <= max(tolerance, 1e-12), (style, epoch, rates[epoch], p)


def test_replacement_uses_subject_values(stack_brain):
    augmenter, i, j = _augmenter(stack_brain, "constant", p=1.0)
    rng = np.random.default_rng(0)
    pos = np.arange(40)
    new_pos, targets, augmented = augmenter(pos, stack_brain.targets(i[pos], j[pos]), 0, rng)
    assert augmented and np.array_equal(new_pos, pos)
    per_subject = stack_brain.subjects[:, i[pos], j[pos]]  # (n_subjects, 40)
    assert np.all(np.any(np.isclose(per_subject, targets[None]), axis=0))
    # a random subject per edge: with 7 subjects and 40 edges, more than one is used
    chosen = np.argmax(np.isclose(per_subject, targets[None]), axis=0)
    assert len(np.unique(chosen)) > 1


def test_curriculum_swap_draws_strong_edges(stack_brain):
    augmenter, i, j = _augmenter(stack_brain, "curriculum_swap_constant", p=1.0)
    y = stack_brain.targets(i, j)
    strong = np.flatnonzero(np.abs(y) > STRONG_EDGE_R)
    assert 0 < strong.size < len(y)
    rng = np.random.default_rng(5)
    new_pos, targets, augmented = augmenter(np.arange(64), y[:64], 0, rng)
    assert augmented and len(new_pos) == 64
    assert np.all(np.isin(new_pos, strong))
    per_subject = stack_brain.subjects[:, i[new_pos], j[new_pos]]
    assert np.all(np.any(np.isclose(per_subject, targets[None]), axis=0))


def test_no_subject_stack_turns_augmentation_off_and_says_so(caplog):
    brain = make_synthetic_brain(16, 8, seed=0)
    i, j = brain.pairs()
    with caplog.at_level(logging.INFO, logger="spatiomol.models.augment"):
        augmenter = TargetAugmenter(None, i, j, brain.targets(i, j), aug_prob=0.3, aug_style="linear_decay", n_epochs=3)
    assert not augmenter.active
    assert "no subject stack" in augmenter.note and "OFF" in augmenter.note
    assert any("no subject stack" in r.message for r in caplog.records)
    rng = np.random.default_rng(0)
    y = brain.targets(i[:5], j[:5])
    pos, targets, augmented = augmenter(np.arange(5), y, 0, rng)
    assert not augmented and np.array_equal(targets, y)
    # a model asked to augment trains anyway and records why augmentation was off
    model = make_model("mlp", epochs=1, hidden_dims=[8, 8], aug_prob=0.3, device="cpu")
    model.fit(brain, np.arange(12))
    assert any("no subject stack" in note for note in model.notes_)


def test_training_loop_augments_at_the_scheduled_rate():
    brain = make_synthetic_brain(40, 8, n_subjects=4, seed=2)
    model = make_model(
        "mlp", epochs=4, hidden_dims=[8, 8], batch_size=4, aug_prob=1.0, aug_style="linear_decay", device="cpu"
    )
    model.fit(brain, np.arange(40))
    # p(e) = 1, 2/3, 1/3, 0 over 4 epochs of 195 batches each
    expected = np.array([1.0, 2 / 3, 1 / 3, 0.0])
    realised = np.array(model.history_.augmented_fraction)
    sd = np.sqrt(expected * (1 - expected) / 195)
    assert np.all(np.abs(realised - expected) <= 4.5 * sd + 1e-12)


def test_nonfinite_subject_values_raise_a_clear_error(stack_brain):
    subjects = stack_brain.subjects.copy()
    subjects[:, 0, 1] = np.nan
    i, j = stack_brain.pairs()
    augmenter = TargetAugmenter(
        subjects, i, j, stack_brain.targets(i, j), aug_prob=1.0, aug_style="constant", n_epochs=1
    )
    first = np.flatnonzero((i == 0) & (j == 1))
    with pytest.raises(ValueError, match="brain.subjects has a non-finite value"):
        augmenter(first, stack_brain.targets(i[first], j[first]), 0, np.random.default_rng(0))
