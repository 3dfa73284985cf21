"""One record per model: name → `ModelSpec` (estimator class, fixed hyperparameters, properties).

Every fact about a model that other stages need (what it reads, which category it belongs
to, how tables name it, whether it is a Table 1 row) lives in its `ModelSpec`, so that
adding a model touches this file and its configuration YAML only. Classes are imported
lazily so that torch loads only when a neural model is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module, resources
from types import MappingProxyType
from typing import Any, Literal

from spatiomol.hashing import json_sha256
from spatiomol.models.base import ConnectivityModel, load_config

Category = Literal["rules", "linear", "nonlinear"]
CATEGORIES: tuple[str, ...] = ("rules", "linear", "nonlinear")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the package knows about one registry model.

    Attributes
    ----------
    name : str
        Registry name (``"mlp-coords"``).
    estimator : str
        ``"module:Class"`` of its `ConnectivityModel`.
    display : str
        Name in tables and figures (the paper's Table 1 / 3 row name).
    category : {"rules", "linear", "nonlinear"}
        Distance/CGE rules and the anatomy baseline, bilinear (linear in the features of each region), or neural.
    reads_expression, reads_coords : bool
        Which region features the fitted model uses. A model that reads no expression
        gets no null or permuted runs (swapping expression cannot change it).
    reads_structural : bool
        Whether it reads structural-connectivity features (`spatiomol.data.structural`);
        such a model needs a dataset with SC (issue 27).
    table1 : bool
        Whether it is a row of the paper's Table 1 (the ``models: table1`` shorthand).
    fixed : mapping
        Hyperparameters that define the variant; they override any user value.
    """

    name: str
    estimator: str
    display: str
    category: Category
    reads_expression: bool
    reads_coords: bool
    table1: bool = True
    reads_structural: bool = False
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"model {self.name!r}: category must be one of {CATEGORIES}, got {self.category!r}")
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))

    @property
    def cls(self) -> type[ConnectivityModel]:
        module, _, cls = self.estimator.partition(":")
        return getattr(import_module(module), cls)


def _specs(*specs: ModelSpec) -> dict[str, ModelSpec]:
    return {s.name: s for s in specs}


_RULES, _CM, _MLP, _SMT = (
    "spatiomol.models.rules",
    "spatiomol.models.bilinear:ConnectomeModel",
    "spatiomol.models.mlp:MLP",
    "spatiomol.models.smt:SMT",
)
_GENES, _COORDS, _BOTH, _SC_ONLY = (
    {"reads_expression": True, "reads_coords": False},
    {"reads_expression": False, "reads_coords": True},
    {"reads_expression": True, "reads_coords": True},
    {"reads_expression": False, "reads_coords": False, "reads_structural": True},
)

#: every model, in the order of the paper's Table 1 (then Table 3's extra rows)
MODELS: dict[str, ModelSpec] = _specs(
    ModelSpec("cge-pca", f"{_RULES}:CGEModel", "CGE (PCA)", "rules", **_GENES),
    ModelSpec("gaussian-kernel", f"{_RULES}:GaussianKernel", "Dist. Gauss. Kernel", "rules", **_COORDS),
    ModelSpec("exp-decay", f"{_RULES}:ExponentialDecay", "Dist. Exp. Decay", "rules", **_COORDS),
    ModelSpec(
        "exp-decay-mirrored",
        f"{_RULES}:ExponentialDecay",
        "Dist. Exp. Decay (mirrored x)",
        "rules",
        **_COORDS,
        fixed={"mirror_x": True},
    ),
    ModelSpec(
        "anatomy", "spatiomol.models.anatomy:AnatomyBaseline", "Anatomy baseline (no expression)", "rules", **_COORDS
    ),
    ModelSpec("cm-pca", _CM, "Bilinear CM (PCA)", "linear", **_GENES, fixed={"features": "pca"}),
    ModelSpec("cm", _CM, "Bilinear CM", "linear", **_GENES, fixed={"features": "genes"}),
    ModelSpec(
        "cm-paper",
        _CM,
        "Bilinear CM (paper's formula)",
        "linear",
        **_GENES,
        fixed={"features": "genes", "penalty": "paper"},
    ),
    ModelSpec("cm-pls", _CM, "Bilinear CM (PLS)", "linear", **_GENES, fixed={"features": "pls"}),
    ModelSpec("bilinear-lowrank", "spatiomol.models.lowrank:BilinearLowRank", "Bilinear Low-rank", "linear", **_GENES),
    ModelSpec("mlp", _MLP, "MLP", "nonlinear", **_GENES, fixed={"use_coords": False}),
    ModelSpec("smt", _SMT, "SMT", "nonlinear", **_GENES, fixed={"use_cls": False}),
    ModelSpec("mlp-coords", _MLP, "MLP w/ coords", "nonlinear", **_BOTH, fixed={"use_coords": True}),
    ModelSpec("smt-cls", _SMT, "SMT w/ [CLS]", "nonlinear", **_BOTH, fixed={"use_cls": True}),
    ModelSpec(
        "mlp-coords-only",
        _MLP,
        "MLP (coords only)",
        "nonlinear",
        **_COORDS,
        table1=False,
        fixed={"use_coords": True, "use_expression": False},
    ),
    # structural connectivity as an input (issue 27): SC alone, expression + SC, all three, and the CM on SC
    ModelSpec(
        "mlp-sc",
        _MLP,
        "MLP (SC only)",
        "nonlinear",
        **_SC_ONLY,
        table1=False,
        fixed={"use_coords": False, "use_expression": False, "use_structural": True},
    ),
    ModelSpec(
        "mlp-expr-sc",
        _MLP,
        "MLP w/ SC",
        "nonlinear",
        **_GENES,
        reads_structural=True,
        table1=False,
        fixed={"use_coords": False, "use_expression": True, "use_structural": True},
    ),
    ModelSpec(
        "mlp-coords-sc",
        _MLP,
        "MLP w/ coords + SC",
        "nonlinear",
        **_BOTH,
        reads_structural=True,
        table1=False,
        fixed={"use_coords": True, "use_expression": True, "use_structural": True},
    ),
    ModelSpec(
        "cm-sc",
        _CM,
        "Bilinear CM (SC features)",
        "linear",
        **_SC_ONLY,
        table1=False,
        fixed={"features": "genes", "region_input": "structural"},
    ),
)


#: fixed hyperparameters that only switch a model's inputs on or off: two registry models with
#: the same estimator whose other fixed values agree are one architecture read with different
#: inputs (`architecture`), which the report's input comparison pairs (issue 27). The SMT's
#: ``use_cls`` is not one: the [CLS] token adds coordinates *and* a token every gene token
#: attends to, so SMT w/ [CLS] − SMT mixes an input with an architecture change (the ladder
#: pairs each SMT variant with the MLP that reads its inputs instead).
INPUT_SWITCHES = ("use_coords", "use_expression", "use_structural", "region_input")
#: the region inputs a model can read, in table order, and how tables name each
MODALITIES = ("expression", "coordinates", "structural")
MODALITY_NAMES = {"expression": "expression", "coordinates": "coordinates", "structural": "SC"}


def inputs(name: str) -> frozenset[str]:
    """The `MODALITIES` model ``name`` reads (``"mlp-coords"`` → expression and coordinates)."""
    s = spec(name)
    flags = (s.reads_expression, s.reads_coords, s.reads_structural)
    return frozenset(m for m, on in zip(MODALITIES, flags) if on)


def architecture(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What model ``name`` is apart from its inputs: its estimator and the fixed hyperparameters
    that are not `INPUT_SWITCHES` (``mlp``, ``mlp-sc`` and ``mlp-coords`` share one)."""
    s = spec(name)
    rest = tuple(sorted((k, repr(v)) for k, v in s.fixed.items() if k not in INPUT_SWITCHES))
    return s.estimator, rest


def spec(name: str) -> ModelSpec:
    """The `ModelSpec` of ``name``; ValueError naming the known models otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def names(*, category: str | None = None, table1: bool | None = None) -> list[str]:
    """Registry names in registry order, optionally only one ``category`` or only Table 1 rows."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown model category {category!r}; expected one of {CATEGORIES}")
    return [
        s.name
        for s in MODELS.values()
        if (category is None or s.category == category) and (table1 is None or s.table1 == table1)
    ]


def table1() -> list[str]:
    """The rows of the paper's Table 1, in order."""
    return names(table1=True)


def model_class(name: str) -> type[ConnectivityModel]:
    return spec(name).cls


def fixed_params(name: str) -> dict[str, Any]:
    return dict(spec(name).fixed)


def display_name(name: str) -> str:
    """Table name of a registry model; any other label is returned unchanged."""
    return MODELS[name].display if name in MODELS else name


def variant_config(name: str) -> dict[str, Any]:
    """``{"default", "grid"}`` of model ``name``.

    The default is the estimator's signature (`ConnectivityModel.default_params`), updated
    by the ``overrides`` of ``configs/<name>.yaml`` when the variant has a file of its own,
    whose ``grid`` then replaces the class grid (e.g. ``cm`` does not search PCA components).
    """
    cls = model_class(name)
    default, grid = cls.default_params(), dict(cls.config()["grid"])
    if name != cls.config_name and resources.files("spatiomol.models").joinpath("configs", f"{name}.yaml").is_file():
        own = load_config(name)
        default.update(own["overrides"])
        if own["grid"]:
            grid = dict(own["grid"])
    return {"default": default, "grid": grid}


def make_model(name: str, **hyperparameters: Any) -> ConnectivityModel:
    """Instantiate model ``name`` at its default, updated by ``hyperparameters``.

    The variant's fixed hyperparameters always win.
    """
    cls = model_class(name)
    params = variant_config(name)["default"]
    params.update(hyperparameters)
    params.update(fixed_params(name))
    return cls(**params)


def search_space(name: str) -> tuple[dict[str, Any], dict[str, list]]:
    """``(default, grid)`` for model ``name``, with the variant's fixed values removed from the grid."""
    cfg = variant_config(name)
    fixed = fixed_params(name)
    default = {**cfg["default"], **fixed}
    grid = {k: v for k, v in cfg["grid"].items() if k not in fixed}
    return default, grid


def search_space_digest(name: str) -> str:
    """A short SHA-256 of model ``name``'s `search_space` (default and grid), 16 hex digits.

    A run's stored settings carry it, so that a run fitted under other defaults or another
    grid (an upgraded package, an edited ``models/configs/*.yaml``) is never taken for the
    same run when a results folder is resumed.
    """
    default, grid = search_space(name)
    return json_sha256((_without_unused_sc(default), grid))[:16]


#: hyperparameters of structural-connectivity inputs (issue 27), added after results were stored
SC_HYPERPARAMETERS = ("use_structural", "structural_components", "structural_raw_row", "region_input")


def _without_unused_sc(default: dict[str, Any]) -> dict[str, Any]:
    """``default`` without the SC hyperparameters when the model reads no SC, so the stored
    runs of models that do not use them keep their keys; a variant that reads SC has them."""
    if default.get("use_structural") or default.get("region_input", "expression") != "expression":
        return default
    return {k: v for k, v in default.items() if k not in SC_HYPERPARAMETERS}


#: the rows of Table 1, in order (derived from the specs)
TABLE1: list[str] = table1()
