"""Where and how a neural model computes: the device, seeded deterministic torch, CPU threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA if available else CPU; ``"cpu"``/``"cuda"``/``"cuda:N"`` as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


@contextmanager
def seeded_torch(
    seed: int, device: torch.device, deterministic: bool = True, num_threads: int | None = None
) -> Iterator[None]:
    """Seed torch's default generators, optionally force deterministic kernels and set the
    number of CPU threads; restore all three on exit.

    The caller's global RNG state, determinism flag and thread count are restored on exit
    (``num_threads=None`` leaves the thread count alone; anything but None or a positive
    int is a ValueError, `check_num_threads`).
    """
    num_threads = check_num_threads(num_threads)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(int(seed))
        # On CUDA some kernels have no deterministic version: warn rather than fail there.
        torch.use_deterministic_algorithms(deterministic, warn_only=device.type == "cuda")
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
            if num_threads is not None:
                torch.set_num_threads(previous_threads)


def check_num_threads(num_threads: int | None) -> int | None:
    """``None`` or a positive int; a ValueError naming ``num_threads`` otherwise."""
    if num_threads is None:
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return int(num_threads)
