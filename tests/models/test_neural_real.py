"""End to end on real data: hcp-s100 (114 regions, 810 AHBA genes, HCP functional connectivity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatiomol.data.datasets import load_dataset
from spatiomol.evaluation.splits import inner_validation, make_splits
from spatiomol.models.registry import make_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def hcp(data_mirror):
    brain = load_dataset("hcp-s100")
    split = make_splits(brain, "random", n_repeats=1, n_folds=4, seed=0)[0]
    inner_train, val = inner_validation(brain, split.train, "random", fraction=0.2, seed=0)
    return brain, split, inner_train, val


@pytest.mark.slow
def test_smt_with_tss_tokens_trains_end_to_end_on_hcp_s100(hcp, data_mirror):
    brain, split, inner_train, val = hcp
    # the paper's default architecture (d_model 128, 4 heads, 4 layers, k = 60), two epochs
    model = make_model("smt-cls", epochs=2, learning_rate=1e-3, device="cpu")
    model.fit(brain, inner_train, val)
    assert model.n_tokens_ == 14 and model.n_padding_genes_ == 14 * 60 - 810
    assert any("genes ordered by 'tss'" in note for note in model.notes_)
    assert any("no subject stack" in note for note in model.notes_)  # default aug_prob 0.3, no stack
    assert len(model.history_.val_loss) == 2
    i, j = brain.pairs(split.test)
    predicted = model.predict(brain, i, j)
    assert predicted.shape == i.shape and np.all(np.isfinite(predicted))
    np.testing.assert_allclose(predicted, model.predict(brain, j, i), atol=1e-6)
    # tokens follow transcription-start order: the genome table lists genes in genome order,
    # so the fitted gene order must visit table lines in increasing order, unknown genes last
    line_of: dict[str, int] = {}
    with open(data_mirror / "genome" / "hg38_gencode_v27.txt") as table:
        for n, line in enumerate(table):
            line_of.setdefault(line.split("\t")[0], n)
    lines = np.array([line_of.get(g, -1) for g in model.genes_])
    n_found = int(np.sum(lines >= 0))
    assert n_found > 0.95 * len(lines) and np.all(lines[n_found:] == -1)
    assert np.all(np.diff(lines[:n_found]) > 0)
    assert sorted(model.genes_) == sorted(brain.genes) and model.genes_ != brain.genes


@pytest.mark.slow
def test_mlp_with_coordinates_learns_on_hcp_s100(hcp):
    brain, split, inner_train, val = hcp
    model = make_model("mlp-coords", epochs=2, learning_rate=1e-3, device="cpu")
    model.fit(brain, inner_train, val)
    i, j = brain.pairs(split.test)
    y = brain.targets(i, j)
    predicted = model.predict(brain, i, j)
    assert np.all(np.isfinite(predicted))
    # two epochs already carry signal to unseen regions (connectivity is spatially structured)
    assert np.corrcoef(predicted, y)[0, 1] > 0.2
