"""A registry model that kills its own process once, for the worker-death tests.

`SelfKillingCM` is the bilinear connectome model (``cm``), except that when it is fitted
on the training regions named by ``$SPATIOMOL_TEST_KILL_TRAIN`` (comma-separated) and the
marker file ``$SPATIOMOL_TEST_KILL_MARKER`` does not exist yet, it creates the marker and
SIGKILLs the process it runs in (a Dask worker, mid-run). Every later fit is ``cm``'s.

Importing this module registers the model as ``killer-cm`` (workers import it as a Dask
preload; the test process imports it directly).
"""

from __future__ import annotations

import os
import signal

import numpy as np

from spatiomol.models import registry
from spatiomol.models.bilinear import ConnectomeModel

NAME = "killer-cm"
MARKER_ENV = "SPATIOMOL_TEST_KILL_MARKER"
TRAIN_ENV = "SPATIOMOL_TEST_KILL_TRAIN"


class SelfKillingCM(ConnectomeModel):
    def fit(self, brain, train_regions, val_regions=None):
        marker, chosen = os.environ.get(MARKER_ENV), os.environ.get(TRAIN_ENV)
        if marker and chosen and ",".join(map(str, np.sort(train_regions))) == chosen:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # killed once already
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(brain, train_regions, val_regions)


registry.MODELS.setdefault(
    NAME,
    registry.ModelSpec(
        NAME,
        f"{__name__}:SelfKillingCM",
        "CM (kills its worker once)",
        "linear",
        reads_expression=True,
        reads_coords=False,
        table1=False,
        fixed={"features": "genes"},
    ),
)


def dask_setup(worker) -> None:  # noqa: ARG001 — Dask preload hook; importing registered the model
    pass
