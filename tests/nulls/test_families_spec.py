"""The one home per null family (`spatiomol.nulls.families`): every family has a spec, the spec's
draw function is what `draw_nulls` calls, and the facts that used to be written in several
places (CGE-match defaults, calibration, spin families, the report's words) are unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.nulls import (
    CALIBRATED_METHODS,
    CGE_MATCH_DEFAULT,
    FAMILIES,
    NULL_DEFAULTS,
    NULL_METHODS,
    NULL_TUNING_DEFAULTS,
    SPIN_METHODS,
    NullFamily,
    draw_nulls,
    families,
    generate_nulls,
)
from spatiomol.nulls import draw as draw_module
from spatiomol.nulls import select as select_module

# the values as they were written before the specs existed (the reference), plus the
# family added after them ("anatomical", issue 26)
OLD_NULL_METHODS = ("cge", "pca-cge", "random", "hungarian", "moran", "variogram", "anatomical")
OLD_CGE_MATCH_DEFAULT = {
    "cge": True,
    "pca-cge": True,
    "random": False,
    "hungarian": False,
    "moran": False,
    "variogram": False,
    "anatomical": False,
}
# the calibration of issue 26 (docs/calibration.md) moved the calibrated family from moran
# (isotropic space only) to anatomical
OLD_CALIBRATED_METHODS = ("anatomical",)
OLD_SPIN_ASSIGNMENT = {"cge": "vasa", "pca-cge": "vasa", "hungarian": "hungarian"}
OLD_METHOD_WORDS = {
    "cge": "spins (Váša assignment)",
    "pca-cge": "spins (Váša assignment), CGE of PCA scores",
    "hungarian": "spins (Hungarian assignment)",
    "moran": "Moran spectral randomisation of all regions",
    "variogram": "variogram-matched surrogates of the PC scores, all regions",
    "random": "uniform shuffle within structure classes (naive)",
    "anatomical": "sign flips in a fitted space-and-anatomy covariance, group means and values kept",
}
OLD_DRAW = {
    "cge": "draw_permutations",
    "pca-cge": "draw_permutations",
    "random": "draw_permutations",
    "hungarian": "draw_permutations",
    "moran": "draw_moran",
    "variogram": "draw_variogram",
    "anatomical": "draw_anatomical",
}


def test_every_family_has_a_spec_in_order():
    assert NULL_METHODS == OLD_NULL_METHODS
    assert tuple(FAMILIES) == NULL_METHODS
    assert draw_module.NULL_METHODS is NULL_METHODS and select_module.NULL_METHODS is NULL_METHODS
    for name, spec in FAMILIES.items():
        assert isinstance(spec, NullFamily) and spec.name == name
        assert spec.description and spec.preserves and all(isinstance(p, str) and p for p in spec.preserves)
        assert spec.cge_features in ("genes", "pca")
        assert families.family(name) is spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAMILIES["cge"].cge_match_default = False
    with pytest.raises(ValueError, match="one of"):
        families.family("nope")


def test_facts_equal_the_values_before_the_specs():
    assert CGE_MATCH_DEFAULT == OLD_CGE_MATCH_DEFAULT
    assert select_module.CGE_MATCH_DEFAULT == OLD_CGE_MATCH_DEFAULT
    assert {name: spec.cge_match_default for name, spec in FAMILIES.items()} == OLD_CGE_MATCH_DEFAULT
    assert CALIBRATED_METHODS == OLD_CALIBRATED_METHODS
    assert tuple(name for name, spec in FAMILIES.items() if spec.calibrated) == OLD_CALIBRATED_METHODS
    assert SPIN_METHODS == ("cge", "pca-cge", "hungarian")
    assert {name: spec.assignment for name, spec in FAMILIES.items() if spec.spin} == OLD_SPIN_ASSIGNMENT
    assert all(spec.assignment is None for spec in FAMILIES.values() if not spec.spin)
    assert {name: spec.description for name, spec in FAMILIES.items()} == OLD_METHOD_WORDS
    assert [name for name, spec in FAMILIES.items() if spec.naive] == ["random"]
    assert [name for name, spec in FAMILIES.items() if spec.cge_features == "pca"] == ["pca-cge"]
    assert [name for name, spec in FAMILIES.items() if spec.uses_pca_variance] == ["pca-cge", "variogram"]
    assert NULL_TUNING_DEFAULTS == {"bin_mm": 5.0, "pca_variance": 0.95}
    # the config's keys (they enter every null run's settings hash); ``neural_top`` came with
    # the shared-fold scoring (issue 26)
    assert set(NULL_DEFAULTS) == {"n", "top", "method", "seed", "min_moved", "subcortex", "cge_match", "neural_top"}


def test_report_reads_the_specs():
    from spatiomol.reports import null_families

    assert null_families.METHOD_WORDS == OLD_METHOD_WORDS
    assert null_families.SPIN_METHODS == SPIN_METHODS


@pytest.mark.parametrize("method", OLD_NULL_METHODS)
def test_draw_nulls_calls_the_spec_draw(method, monkeypatch):
    spec = FAMILIES[method]
    assert spec.draw is getattr(families, OLD_DRAW[method])
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[3])
        return spec.draw(*args, **kwargs)

    brain = make_synthetic_brain(n_regions=40, n_genes=6, seed=1)
    expected = draw_nulls(brain, 6, 0, method)
    monkeypatch.setitem(FAMILIES, method, dataclasses.replace(spec, draw=spy))
    got = draw_nulls(brain, 6, 0, method)
    assert calls == [method]
    assert np.array_equal(got.permutations, expected.permutations)
    assert np.array_equal(got.costs, expected.costs)
    assert np.array_equal(got.replaced, expected.replaced)


@pytest.mark.parametrize("method", OLD_NULL_METHODS)
def test_generate_nulls_uses_the_cge_match_default(method):
    brain = make_synthetic_brain(n_regions=40, n_genes=6, seed=1)
    nulls = generate_nulls(brain, n=12, top=2, seed=0, method=method)
    assert nulls.metadata["cge_match"] is OLD_CGE_MATCH_DEFAULT[method]
    assert (nulls.metadata["pca_variance"] is not None) == (method in ("pca-cge", "variogram"))


def test_what_each_family_keeps_is_one_of_the_named_properties():
    from spatiomol.nulls.families import ANATOMY_PROPERTIES, kept_and_lost

    # the claims the report's headline makes; measured for moran and anatomical in
    # tests/nulls/test_anatomical.py (structure contrast, homotopy, values)
    assert kept_and_lost("anatomical") == (list(ANATOMY_PROPERTIES), [])
    kept, lost = kept_and_lost("moran")
    assert kept == ["spatial autocorrelation", "gene-gene covariance"]
    assert lost == ["the structure contrast", "hemispheric homotopy", "each gene's values"]
    assert "spatial autocorrelation" not in FAMILIES["random"].keeps
    with pytest.raises(ValueError, match=r"keeps \['anatomy'\] not among"):
        dataclasses.replace(FAMILIES["moran"], keeps=frozenset({"anatomy"}))
