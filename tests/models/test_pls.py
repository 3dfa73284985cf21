"""PLS encoder + closed-form bilinear decoder: the Connectome Model on PLS features ("cm-pls").

References: `sklearn.cross_decomposition.PLSRegression` fitted independently, the
Kronecker ridge solved directly on the resulting embeddings, the planted bilinear rule,
and a hand-counted number of parameters.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from spatiomol.models import registry
from spatiomol.models.bilinear import ConnectomeModel


def training_block(bilinear_brain, train):
    Y = bilinear_brain.Y[np.ix_(train, train)].copy()
    np.fill_diagonal(Y, Y[np.triu_indices(len(train), 1)].mean())
    return Y


def test_pls_bilinear_recovers_planted_rule(bilinear_brain, bilinear_split):
    model = registry.make_model("cm-pls", alpha=0.01).fit(bilinear_brain, bilinear_split.train)
    i, j = bilinear_split.test_pairs()
    pred = model.predict(bilinear_brain, i, j)
    assert np.corrcoef(pred, bilinear_brain.targets(i, j))[0, 1] > 0.95
    np.testing.assert_allclose(model.predict(bilinear_brain, j, i), pred, atol=1e-12)
    g, k = 20, 10
    assert model.n_parameters_ == g * k + (k + 1) ** 2


def test_embeddings_equal_sklearn_pls_and_decoder_equals_kronecker(bilinear_brain, bilinear_split):
    k, lam = 4, 0.3
    model = ConnectomeModel(features="pls", n_components=k, alpha=lam, alpha_scale="absolute").fit(
        bilinear_brain, bilinear_split.train
    )
    reference = PLSRegression(n_components=k, scale=True, max_iter=1000).fit(
        bilinear_brain.X[bilinear_split.train], training_block(bilinear_brain, bilinear_split.train)
    )
    np.testing.assert_allclose(
        model.region_features(bilinear_brain, np.arange(80)), reference.transform(bilinear_brain.X), atol=1e-8
    )

    T = reference.transform(bilinear_brain.X[bilinear_split.train])
    T_aug = np.column_stack([T, np.full(len(T), model.solver_.intercept_value_)])
    K = np.kron(T_aug, T_aug)
    penalty = np.ones((k + 1) ** 2)
    penalty[-1] = 0.0  # the offset is unpenalized
    O = np.linalg.solve(
        K.T @ K + lam * np.diag(penalty), K.T @ training_block(bilinear_brain, bilinear_split.train).ravel()
    ).reshape(k + 1, k + 1)
    np.testing.assert_allclose(model.interaction_matrix(), O, atol=1e-6)


def test_pls_components_are_validated(bilinear_brain, bilinear_split):
    with pytest.raises(ValueError, match="The 'n_components' parameter of ConnectomeModel must be"):
        registry.make_model("cm-pls", n_components=2.5).fit(bilinear_brain, bilinear_split.train)
    with pytest.raises(ValueError, match="n_components for PLS must be a positive int"):  # a cross-parameter check
        registry.make_model("cm-pls", n_components=0.5).fit(bilinear_brain, bilinear_split.train)
    model = registry.make_model("cm-pls", n_components=500).fit(
        bilinear_brain, bilinear_split.train
    )  # clipped to what data allow
    assert model.feature_map_.n_features_ == 20
