"""The model registry: every name builds, variants keep their fixed values, configs are data."""

from __future__ import annotations

import inspect
from importlib import resources

import numpy as np
import pytest
import yaml

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.models import registry


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_every_model_builds_at_its_default(name):
    model = registry.make_model(name)
    default, grid = registry.search_space(name)
    params = model.get_params()
    for key, value in registry.fixed_params(name).items():
        assert params[key] == value and key not in grid
    for key, value in default.items():
        assert params[key] == value


def test_variant_file_overrides_class_grid():
    cm_grid = registry.search_space("cm")[1]
    pca_grid = registry.search_space("cm-pca")[1]
    assert "n_components" not in cm_grid and "n_components" in pca_grid
    text = resources.files("spatiomol.models").joinpath("configs", "cm.yaml").read_text()
    assert cm_grid == yaml.safe_load(text)["grid"]


def test_make_model_rejects_unknown_names_and_fixed_values_win():
    with pytest.raises(ValueError, match="unknown model 'no-such-model'; known: cge-pca"):
        registry.make_model("no-such-model")
    assert registry.make_model("mlp-coords-only", use_expression=True).use_expression is False
    assert registry.TABLE1 == [n for n, s in registry.MODELS.items() if s.table1]


def test_table1_variants_sit_beside_their_plain_forms():
    """The authors' mirrored decay and the paper's printed CM formula are Table 1 rows next to
    the forms the paper's text states."""
    rows = registry.TABLE1
    assert rows.index("exp-decay-mirrored") == rows.index("exp-decay") + 1
    assert rows.index("cm-paper") == rows.index("cm") + 1
    assert registry.fixed_params("exp-decay-mirrored") == {"mirror_x": True}
    assert registry.search_space("exp-decay")[0]["mirror_x"] is False
    assert registry.fixed_params("cm-paper") == {"features": "genes", "penalty": "paper"}
    assert registry.search_space("cm")[0]["penalty"] == "frobenius"
    assert len({registry.display_name(n) for n in rows}) == len(rows)


def test_every_estimator_takes_keyword_arguments_only_and_yaml_holds_no_defaults():
    from importlib import resources

    import yaml

    from spatiomol.models.base import CONFIG_KEYS

    for name in registry.names():
        signature = inspect.signature(registry.model_class(name).__init__).parameters
        assert all(p.kind is p.KEYWORD_ONLY for key, p in signature.items() if key != "self"), name
    for path in resources.files("spatiomol.models").joinpath("configs").iterdir():
        if path.name.endswith(".yaml"):
            assert set(yaml.safe_load(path.read_text())) <= set(CONFIG_KEYS), path.name


def test_mlp_and_smt_share_one_definition_of_their_training_hyperparameters():
    from spatiomol.models.mlp import MLP
    from spatiomol.models.neural import TRAINING_PARAMETERS
    from spatiomol.models.smt import SMT

    for cls in (MLP, SMT):
        defaults = cls.default_params()
        for name, parameter in TRAINING_PARAMETERS.items():
            expected = cls.training_defaults.get(name, parameter.default)
            assert defaults[name] == expected, (cls.__name__, name)
            assert cls._parameter_constraints[name] == list(parameter.constraints)
    # where the two differ, the difference is declared, not copied
    assert set(SMT.training_defaults) == {"dropout_rate", "hidden_norm", "batch_size", "epochs", "batching", "aug_prob"}
    assert MLP.training_defaults == {}


#: one invalid value per estimator class: (parameter, value)
INVALID_VALUE = {
    "CGEModel": ("n_components", 1),
    "GaussianKernel": ("sigma_min_mm", 0.0),
    "ExponentialDecay": ("form", "linear"),
    "AnatomyBaseline": ("max_leaf_nodes", 1),
    "ConnectomeModel": ("alpha", -1.0),
    "BilinearLowRank": ("rank", 0),
    "MLP": ("batch_size", 1),
    "SMT": ("dropout_rate", 1.0),
}
#: one registry name per estimator class
_BY_CLASS = {registry.model_class(name).__name__: name for name in reversed(list(registry.MODELS))}


@pytest.mark.parametrize("cls_name", sorted(_BY_CLASS))
def test_every_hyperparameter_is_constrained_and_checked_by_fit(cls_name):
    """Each estimator declares scikit-learn constraints for all of its ``__init__``
    parameters, and `fit` refuses an invalid value with a message naming the parameter."""
    name = _BY_CLASS[cls_name]
    cls = registry.model_class(name)
    assert sorted(cls._parameter_constraints) == sorted(cls._get_param_names())
    param, value = INVALID_VALUE[cls_name]
    model = registry.make_model(name, **{param: value})
    brain = make_synthetic_brain(12, 6, rule="none", seed=0)
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {cls_name} must be .* Got {value!r} instead"):
        model.fit(brain, np.arange(8))


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_input_flags_agree_with_the_switches_each_model_is_built_with(name):
    """`registry.inputs` (from the spec's reads_* flags) against the built model's own switches."""
    model = registry.make_model(name)
    reads = registry.inputs(name)
    if hasattr(model, "use_structural"):  # the MLP family
        assert reads == {
            m
            for m, on in (
                ("expression", model.use_expression),
                ("coordinates", model.use_coords),
                ("structural", model.use_structural),
            )
            if on
        }
    if hasattr(model, "region_input"):  # the Connectome Model
        assert reads == {"expression" if model.region_input == "expression" else "structural"}


def test_architecture_ignores_the_input_switches_only():
    assert registry.architecture("mlp") == registry.architecture("mlp-sc") == registry.architecture("mlp-coords-sc")
    assert registry.architecture("cm") == registry.architecture("cm-sc")  # region_input is a switch
    assert registry.architecture("cm") != registry.architecture("cm-pca")  # features is not
    assert registry.architecture("exp-decay") != registry.architecture("exp-decay-mirrored")
    assert registry.architecture("smt") != registry.architecture("smt-cls")  # [CLS] is not an input switch
    assert registry.inputs("mlp-coords-sc") == {"expression", "coordinates", "structural"}
    assert registry.inputs("cm-sc") == {"structural"}
