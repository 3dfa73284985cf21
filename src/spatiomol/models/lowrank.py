"""Low-rank bilinear model trained by gradient descent (Qiao; paper §2.2, App. A.3).

``ŷ_ij = b + z_iᵀ z_j`` with region embeddings ``z = x̃ E + e₀``: a bilinear form
``x̃_iᵀ (E Eᵀ) x̃_j`` of rank ``k`` plus main effects and an offset. The closed-form
bilinear model on all genes (or PCA / PLS features) is
`spatiomol.models.bilinear.ConnectomeModel`.

Threads: fitting runs on whatever torch's intra-op thread setting is; the model never
changes it (a process-wide setting). The problems are small (regions × genes × rank), so
one thread per fit is usually fastest when fits run in parallel; set it in the calling
process (``torch.set_num_threads(1)``, or ``OMP_NUM_THREADS=1`` before starting Python).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions

from spatiomol.data.brain import Brain
from spatiomol.models.base import ConnectivityModel, check_expression, training_target_matrix
from spatiomol.models.training import EarlyStopping


class BilinearLowRank(ConnectivityModel):
    """Low-rank bilinear model ``ŷ_ij = b + z_iᵀ z_j`` with ``z = x̃ E + e₀`` (Qiao; App. A.3).

    ``x̃`` is expression standardized with training statistics and divided by ``√g`` (so
    every region's feature vector has unit mean square whatever the gene count; this fixes
    the scale of ``E`` for the optimizer). ``E`` (g × k) is ridge-penalized; the embedding
    bias ``e₀`` (k) and the offset ``b`` are not — with them the model expresses exactly
    ``(x − m) W (x − m)ᵀ`` for any centre ``m`` and PSD rank-k ``W``. Symmetric by
    construction.

    Training: full-batch AdamW (PyTorch, CPU) on the mean squared error over training
    edges (i < j) plus ``lam · ‖E‖²_F``; with ``val_regions`` an
    `spatiomol.models.training.EarlyStopping` tracker (the one the neural models use)
    keeps the parameters of the epoch with the lowest validation MSE and stops training
    after ``patience`` epochs without improvement.

    Parameters
    ----------
    rank : int
        Embedding dimension ``k``.
    lam : float
        Ridge on ``E`` (on the √g-normalized feature scale).
    learning_rate, weight_decay : float
        AdamW step size and decoupled weight decay (on ``E`` only).
    epochs : int
        Full-batch steps (the maximum with validation regions, the exact number without).
    patience : int
        Early-stopping patience in epochs (with validation regions), >= 1.
    init_scale : float
        SD of the initial ``E`` entries.
    dtype : {"float32", "float64"}
    device : str
        Torch device ("cpu").
    seed : int
        Seed of the `torch.Generator` for the initialization.

    Attributes
    ----------
    E_ : (g, k) array, bias_ : (k,) array, offset_ : float
    history_ : dict of lists (``"train"``, ``"val"`` MSE per epoch)
    best_epoch_ : int
    n_parameters_ : int
        ``g·k + k + 1``.
    """

    config_name: ClassVar[str] = "bilinear-lowrank"
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "rank": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "init_scale": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str, torch.device],
        "seed": [Integral],
    }

    def __init__(
        self,
        *,
        rank: int = 10,
        lam: float = 1e-4,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        epochs: int = 500,
        patience: int = 200,
        init_scale: float = 0.1,
        dtype: str = "float64",
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.rank = rank
        self.lam = lam
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.init_scale = init_scale
        self.dtype = dtype
        self.device = device
        self.seed = seed

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self.scaler_.transform(X) / np.sqrt(X.shape[1])

    def _fit(self, brain: Brain, train: np.ndarray, val: np.ndarray | None) -> None:
        dtype = getattr(torch, self.dtype)
        device = torch.device(self.device)
        X_train = check_expression(brain, train, "training")
        Y_train, mean_target = training_target_matrix(brain, train)
        self.scaler_ = StandardScaler().fit(X_train)
        g = X_train.shape[1]

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        # Edges are handled as matrices (Z Zᵀ masked to i < j): one GEMM per epoch
        # instead of gathering every pair.
        F_train = tensor(self._features(X_train))
        Y_train_t = tensor(Y_train)
        mask_train = torch.triu(torch.ones(len(train), len(train), dtype=torch.bool, device=device), 1)
        if val is not None and len(val) >= 2:
            F_val = tensor(self._features(check_expression(brain, val, "validation")))
            Y_val_t = tensor(np.asarray(brain.Y[np.ix_(val, val)], dtype=np.float64))
            mask_val = torch.triu(torch.ones(len(val), len(val), dtype=torch.bool, device=device), 1)
        else:
            F_val = None

        generator = torch.Generator(device="cpu").manual_seed(int(self.seed))
        E = torch.nn.Parameter(
            (torch.randn(g, self.rank, generator=generator, dtype=torch.float64) * self.init_scale).to(
                dtype=dtype, device=device
            )
        )
        bias = torch.nn.Parameter(torch.zeros(self.rank, dtype=dtype, device=device))
        offset = torch.nn.Parameter(torch.tensor(mean_target, dtype=dtype, device=device))
        parameters = (E, bias, offset)
        optimizer = torch.optim.AdamW(
            [
                {"params": [E], "weight_decay": self.weight_decay},
                {"params": [bias, offset], "weight_decay": 0.0},
            ],
            lr=self.learning_rate,
        )

        def edge_mse(F: torch.Tensor, Y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            Z = F @ E + bias
            residual = (offset + Z @ Z.T - Y)[mask]
            return torch.mean(residual**2)

        def snapshot() -> list[torch.Tensor]:
            return [p.detach().clone() for p in parameters]

        history: dict[str, list[float]] = {"train": [], "val": []}
        tracker = EarlyStopping(self.patience)
        for epoch in range(int(self.epochs)):
            optimizer.zero_grad()
            mse = edge_mse(F_train, Y_train_t, mask_train)
            loss = mse + self.lam * (E**2).sum()
            loss.backward()
            optimizer.step()
            history["train"].append(float(mse.detach()))
            if F_val is not None:
                with torch.no_grad():
                    val_mse = float(edge_mse(F_val, Y_val_t, mask_val))
                history["val"].append(val_mse)
                tracker.update(epoch, val_mse, snapshot)
                if tracker.should_stop:
                    break
        if tracker.best_state is not None:
            with torch.no_grad():
                for p, saved in zip(parameters, tracker.best_state):
                    p.copy_(saved)
            self.best_epoch_ = tracker.best_epoch
        else:
            self.best_epoch_ = len(history["train"]) - 1
        self.history_ = history
        self.E_ = E.detach().cpu().numpy().astype(np.float64)
        self.bias_ = bias.detach().cpu().numpy().astype(np.float64)
        self.offset_ = float(offset.detach().cpu())
        self.n_parameters_ = g * self.rank + self.rank + 1

    def refit_params(self) -> dict:
        """``{"epochs": best_epoch + 1}`` when validation regions drove early stopping, else ``{}``."""
        if self.history_["val"]:
            return {"epochs": int(self.best_epoch_) + 1}
        return {}

    def embed(self, brain: Brain, regions: np.ndarray) -> np.ndarray:
        """Region embeddings ``z`` (k_regions, rank)."""
        regions = np.asarray(regions, dtype=np.int64)
        X = check_expression(brain, regions, "prediction")
        return self._features(X) @ self.E_ + self.bias_

    def _predict_pairs(self, brain: Brain, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        regions, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
        Z = self.embed(brain, regions)
        a, b = inverse[: i.size], inverse[i.size :]
        return self.offset_ + np.einsum("kr,kr->k", Z[a], Z[b])
