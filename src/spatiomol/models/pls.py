"""PLS encoder + bilinear decoder (paper §2.2, App. A.3, "PLS-based encoder-decoder").

The encoder is `sklearn.cross_decomposition.PLSRegression` fitted on the training
regions: inputs ``X_train`` (n_train × g expression), outputs ``Y_train`` (n_train ×
n_train, the training block of the connectome, each region's connectivity profile to the
other training regions; its diagonal filled with the mean off-diagonal training target).
Region embeddings are the PLS x-scores ``t = x̃ W*`` (``x̃``: expression centred and
scaled with training statistics, ``W*``: ``x_rotations_``), available for any region.

The decoder ``ŷ_ij = b + a·t_i + a·t_j + t_iᵀ O t_j`` is fitted in closed form by the
ridge bilinear regression of `spatiomol.models.bilinear.BilinearClosedForm` (same
objective, penalty, diagonal handling and ``alpha`` scale as `ConnectomeModel`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from spatiomol.data.brain import Brain
from spatiomol.models.bilinear import ConnectomeModel


class PLSBilinear(ConnectomeModel):
    """Bilinear Connectome Model on PLS components ("Bilinear CM (PLS)" of Table 1).

    Parameters
    ----------
    n_components : int
        PLS components ``k`` (clipped to ``min(n_train − 1, g)``).
    alpha : float
        Ridge strength of the decoder (relative to the data scale by default).
    penalty : {"frobenius", "paper"}
    alpha_scale : {"relative", "absolute"}
    intercept : bool
    diagonal : {"mean", "em"}

    Attributes
    ----------
    feature_map_ : spatiomol.models.bilinear.FeatureMap
        Holds the fitted ``PLSRegression`` as ``feature_map_.model_``.
    solver_ : spatiomol.models.bilinear.BilinearClosedForm
    n_parameters_ : int
        ``g · k`` PLS weights plus ``(k + intercept)²`` decoder entries.
    """

    config_name: ClassVar[str] = "pls-bilinear"

    def __init__(
        self,
        n_components: int = 10,
        alpha: float = 0.1,
        penalty: str = "frobenius",
        alpha_scale: str = "relative",
        intercept: bool = True,
        diagonal: str = "mean",
    ) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.penalty = penalty
        self.alpha_scale = alpha_scale
        self.intercept = intercept
        self.diagonal = diagonal

    # ConnectomeModel reads these two; PLS always centres and scales X itself
    features = "pls"
    standardize = True

    def embed(self, brain: Brain, regions: np.ndarray) -> np.ndarray:
        """PLS x-scores ``t`` (k_regions, n_components) of any regions."""
        return self.region_features(brain, regions)
