"""The shared training loop: batching, early stopping, schedules, seeding, devices, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spatiomol.data.brain import pairs_within
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models.device import resolve_device, seeded_torch
from spatiomol.models.mlp import MLP
from spatiomol.models.registry import make_model
from spatiomol.models.training import (
    EarlyStopping,
    TrainingSettings,
    random_batches,
    region_block_batches,
    train_network,
)

torch.set_num_threads(1)


def test_random_batches_cover_every_pair_once():
    batches = random_batches(1000, 64, np.random.default_rng(0))
    allpos = np.concatenate(batches)
    assert np.array_equal(np.sort(allpos), np.arange(1000))
    assert all(len(b) == 64 for b in batches[:-1]) and len(batches[-1]) == 1000 - 15 * 64


def test_region_block_batches_cover_every_pair_once_with_few_regions_per_batch():
    regions = np.arange(3, 123, 2)  # 60 non-contiguous training regions
    i, j = pairs_within(regions)
    rng = np.random.default_rng(1)
    batches = region_block_batches(i, j, 100, rng)
    allpos = np.concatenate(batches)
    assert np.array_equal(np.sort(allpos), np.arange(len(i)))
    distinct = [len(np.unique(np.concatenate([i[b], j[b]]))) for b in batches]
    # groups of 10 regions: a batch spans at most ~2 blocks of 2 groups → ≤ 40 regions,
    # whereas 100 random pairs of 60 regions touch ~58
    assert max(distinct) <= 40
    random_distinct = [len(np.unique(np.concatenate([i[b], j[b]]))) for b in random_batches(len(i), 100, rng)[:-1]]
    assert np.mean(distinct) < 0.6 * np.mean(random_distinct)
    # a different epoch (rng state) groups differently
    assert not np.array_equal(allpos, np.concatenate(region_block_batches(i, j, 100, rng)))


def _quadratic_problem(n_regions=30, seed=0):
    """y_ij = x_i · x_j on random 3-d features: a small network learns it quickly."""
    g = np.random.default_rng(seed)
    x = g.normal(size=(n_regions, 3)).astype(np.float32)
    i, j = pairs_within(np.arange(n_regions))
    return {"features": torch.from_numpy(x)}, i, j, (x[i] * x[j]).sum(1)


def _net():
    from spatiomol.models.mlp import PairMLPNetwork

    return PairMLPNetwork(3, [32, 16], dropout=0.0)


def test_loss_decreases_and_history_is_complete():
    tensors, i, j, y = _quadratic_problem()
    settings = TrainingSettings(
        learning_rate=3e-3, weight_decay=0.0, batch_size=32, epochs=15, patience=5, lr_schedule="cosine"
    )
    with seeded_torch(0, torch.device("cpu")):
        history = train_network(_net(), tensors, (i, j, y), settings)
    assert history.epochs_run == 15 and len(history.train_loss) == 15
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    # cosine annealing: lr_e = lr0 (1 + cos(pi e / E)) / 2
    expected = [3e-3 * (1 + math.cos(math.pi * e / 15)) / 2 for e in range(15)]
    np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-6)


def test_early_stopping_restores_the_best_epoch():
    tensors, i, j, y = _quadratic_problem()
    train, val = np.arange(20), np.arange(20, 30)
    ti, tj = pairs_within(train)
    vi, vj = pairs_within(val)
    target = lambda a, b: (tensors["features"][a] * tensors["features"][b]).sum(1).numpy()  # noqa: E731
    settings = TrainingSettings(learning_rate=1e-2, weight_decay=0.0, batch_size=16, epochs=200, patience=3)
    net = _net()
    with seeded_torch(0, torch.device("cpu")):
        history = train_network(net, tensors, (ti, tj, target(ti, tj)), settings, val_pairs=(vi, vj, target(vi, vj)))
    assert history.epochs_run < 200  # stopped early
    assert history.epochs_run == history.best_epoch + 1 + 3
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    net.eval()
    with torch.no_grad():
        restored = np.mean((net(tensors, torch.as_tensor(vi), torch.as_tensor(vj)).numpy() - target(vi, vj)) ** 2)
    assert restored == pytest.approx(min(history.val_loss), rel=1e-5)
    # ReduceLROnPlateau(factor 0.5): the learning rate only ever halves
    ratios = np.array(history.learning_rate[1:]) / np.array(history.learning_rate[:-1])
    assert set(np.round(ratios, 6)) <= {1.0, 0.5}


def test_early_stopping_tracker_on_a_hand_worked_curve():
    """Losses 3, 2, 2.5, 1, 1, nan, 1.5 with patience 3: best epoch 3 (a tie or a NaN is no
    improvement), stop once epochs 4, 5 and 6 have not improved; only improvements snapshot."""
    tracker = EarlyStopping(patience=3)
    snapshots = []
    stops = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 1.0, 1.0, math.nan, 1.5]):
        improved = tracker.update(epoch, loss, lambda epoch=epoch: snapshots.append(epoch) or f"weights@{epoch}")
        assert improved == (epoch in (0, 1, 3))
        stops.append(tracker.should_stop)
    assert stops == [False] * 6 + [True]
    assert (tracker.best_epoch, tracker.best_loss, tracker.best_state) == (3, 1.0, "weights@3")
    assert snapshots == [0, 1, 3]
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        EarlyStopping(patience=0)


def test_plateau_without_validation_is_constant_and_noted():
    tensors, i, j, y = _quadratic_problem(12)
    settings = TrainingSettings(learning_rate=1e-3, weight_decay=0.0, batch_size=16, epochs=3, patience=1)
    history = train_network(_net(), tensors, (i, j, y), settings)
    assert history.learning_rate == [1e-3] * 3
    assert any("no validation regions" in note for note in history.notes)


def test_seeded_torch_restores_global_state():
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    flag = torch.are_deterministic_algorithms_enabled()
    with seeded_torch(5, torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        a = torch.rand(3)
    with seeded_torch(5, torch.device("cpu")):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.are_deterministic_algorithms_enabled() == flag


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize(
    "bad", [{"batch_size": 0}, {"batching": "sorted"}, {"learning_rate": 0.0}, {"lr_schedule": "step"}]
)
def test_settings_validation(bad):
    args = dict(learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=1, patience=1) | bad
    with pytest.raises(ValueError):
        TrainingSettings(**args)


def test_nonfinite_targets_rejected():
    tensors, i, j, y = _quadratic_problem(8)
    y = y.copy()
    y[0] = np.nan
    settings = TrainingSettings(learning_rate=1e-3, weight_decay=0.0, batch_size=8, epochs=1, patience=1)
    with pytest.raises(ValueError, match="NaN"):
        train_network(_net(), tensors, (i, j, y), settings)


def test_estimator_is_sklearn_clonable_and_loads_on_requested_device(tmp_path):
    from sklearn.base import clone

    brain = make_synthetic_brain(16, 6, seed=1)
    model = make_model("mlp", hidden_dims=[8, 8], epochs=1, device="cpu", seed=3)
    assert clone(model).get_params() == model.get_params()
    model.fit(brain, np.arange(10))
    assert not hasattr(clone(model), "network_")
    loaded = MLP.load(model.save(tmp_path / "m.pt"), device="cpu")
    assert loaded.device_ == torch.device("cpu")
    with pytest.raises(ValueError, match="format"):
        torch.save({"something": 1}, tmp_path / "other.pt")
        MLP.load(tmp_path / "other.pt")


def test_refit_params_carry_the_early_stopped_epoch_count():
    brain = make_synthetic_brain(24, 6, seed=2)
    with_val = make_model(
        "mlp", hidden_dims=[8, 8], epochs=6, patience=2, learning_rate=1e-2, device="cpu", refit_epochs="best"
    )
    with_val.fit(brain, np.arange(16), np.arange(16, 24))
    best = int(np.argmin(with_val.history_.val_loss))
    assert with_val.refit_params() == {"epochs": best + 1}
    without_val = make_model("mlp", hidden_dims=[8, 8], epochs=2, device="cpu").fit(brain, np.arange(16))
    assert without_val.refit_params() == {}
