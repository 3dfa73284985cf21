"""PLS encoder + closed-form bilinear decoder ("Bilinear CM (PLS)").

References: `sklearn.cross_decomposition.PLSRegression` fitted independently, the
Kronecker ridge solved directly on the resulting embeddings, the planted bilinear rule,
and a hand-counted number of parameters.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.evaluation.splits import make_splits
from spatiomol.models import registry
from spatiomol.models.bilinear import ConnectomeModel
from spatiomol.models.pls import PLSBilinear


@pytest.fixture(scope="module")
def brain():
    return make_synthetic_brain(80, 20, rule="bilinear", rank=3, seed=1)


@pytest.fixture(scope="module")
def split(brain):
    return make_splits(brain, "random", n_repeats=1, n_folds=4, seed=0)[0]


def training_block(brain, train):
    Y = brain.Y[np.ix_(train, train)].copy()
    np.fill_diagonal(Y, Y[np.triu_indices(len(train), 1)].mean())
    return Y


def test_pls_bilinear_recovers_planted_rule(brain, split):
    model = registry.make_model("cm-pls", alpha=0.01).fit(brain, split.train)
    i, j = split.test_pairs()
    pred = model.predict(brain, i, j)
    assert np.corrcoef(pred, brain.targets(i, j))[0, 1] > 0.95
    np.testing.assert_allclose(model.predict(brain, j, i), pred, atol=1e-12)
    g, k = 20, 10
    assert model.n_parameters_ == g * k + (k + 1) ** 2


def test_embeddings_equal_sklearn_pls_and_decoder_equals_kronecker(brain, split):
    k, lam = 4, 0.3
    model = PLSBilinear(n_components=k, alpha=lam, alpha_scale="absolute").fit(brain, split.train)
    reference = PLSRegression(n_components=k, scale=True, max_iter=1000).fit(
        brain.X[split.train], training_block(brain, split.train))
    np.testing.assert_allclose(model.embed(brain, np.arange(80)), reference.transform(brain.X), atol=1e-8)

    T = reference.transform(brain.X[split.train])
    T_aug = np.column_stack([T, np.full(len(T), model.solver_.intercept_value_)])
    K = np.kron(T_aug, T_aug)
    penalty = np.ones((k + 1) ** 2)
    penalty[-1] = 0.0  # the offset is unpenalized
    O = np.linalg.solve(K.T @ K + lam * np.diag(penalty),
                        K.T @ training_block(brain, split.train).ravel()).reshape(k + 1, k + 1)
    np.testing.assert_allclose(model.interaction_matrix(), O, atol=1e-6)


def test_connectome_model_pls_features_is_the_same_model(brain, split):
    a = PLSBilinear(n_components=6, alpha=0.1).fit(brain, split.train)
    b = ConnectomeModel(features="pls", n_components=6, alpha=0.1).fit(brain, split.train)
    i, j = brain.pairs()
    np.testing.assert_allclose(a.predict(brain, i, j), b.predict(brain, i, j), atol=1e-12)
    assert a.n_parameters_ == b.n_parameters_


def test_pls_components_are_validated(brain, split):
    with pytest.raises(ValueError, match="n_components"):
        PLSBilinear(n_components=2.5).fit(brain, split.train)
    model = PLSBilinear(n_components=500).fit(brain, split.train)  # clipped to what data allow
    assert model.feature_map_.n_features_ == 20
