"""Model names → estimator classes (imported lazily so torch loads only when needed).

Each entry is ``"module:Class"`` plus fixed hyperparameters that define the variant
(e.g. the MLP with coordinates). Names follow the rows of the paper's Table 1 and 3.
"""

from __future__ import annotations

from importlib import import_module, resources
from typing import Any

from spatiomol.models.base import ConnectivityModel, load_config

#: name → (import path, fixed hyperparameters, Table-1 display name)
MODELS: dict[str, tuple[str, dict[str, Any], str]] = {
    "cge-pca": ("spatiomol.models.rules:CGEModel", {}, "CGE (PCA)"),
    "gaussian-kernel": ("spatiomol.models.rules:GaussianKernel", {}, "Dist. Gauss. Kernel"),
    "exp-decay": ("spatiomol.models.rules:ExponentialDecay", {}, "Dist. Exp. Decay"),
    "cm-pca": ("spatiomol.models.bilinear:ConnectomeModel", {"features": "pca"}, "Bilinear CM (PCA)"),
    "cm": ("spatiomol.models.bilinear:ConnectomeModel", {"features": "genes"}, "Bilinear CM"),
    "cm-pls": ("spatiomol.models.pls:PLSBilinear", {}, "Bilinear CM (PLS)"),
    "bilinear-lowrank": ("spatiomol.models.bilinear:BilinearLowRank", {}, "Bilinear Low-rank"),
    "mlp": ("spatiomol.models.mlp:MLP", {"use_coords": False}, "MLP"),
    "smt": ("spatiomol.models.smt:SMT", {"use_cls": False}, "SMT"),
    "mlp-coords": ("spatiomol.models.mlp:MLP", {"use_coords": True}, "MLP w/ coords"),
    "smt-cls": ("spatiomol.models.smt:SMT", {"use_cls": True}, "SMT w/ [CLS]"),
    "mlp-coords-only": (
        "spatiomol.models.mlp:MLP",
        {"use_coords": True, "use_expression": False},
        "MLP (coords only)",
    ),
}

#: the rows of Table 1, in order
TABLE1 = [
    "cge-pca",
    "gaussian-kernel",
    "exp-decay",
    "cm-pca",
    "cm",
    "cm-pls",
    "bilinear-lowrank",
    "mlp",
    "smt",
    "mlp-coords",
    "smt-cls",
]


def model_class(name: str) -> type[ConnectivityModel]:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    module, _, cls = MODELS[name][0].partition(":")
    return getattr(import_module(module), cls)


def fixed_params(name: str) -> dict[str, Any]:
    return dict(MODELS[name][1])


def display_name(name: str) -> str:
    return MODELS[name][2]


def variant_config(name: str) -> dict[str, Any]:
    """``{"default", "grid"}`` of model ``name``.

    The class's configuration file, overridden by ``configs/<name>.yaml`` when the
    variant has one of its own: its ``default`` entries update the class default and its
    ``grid`` replaces the class grid (e.g. ``cm`` does not search PCA components).
    """
    cls = model_class(name)
    cfg = cls.config()
    default, grid = dict(cfg["default"]), dict(cfg["grid"])
    if name != cls.config_name and resources.files("spatiomol.models").joinpath("configs", f"{name}.yaml").is_file():
        own = load_config(name)
        default.update(own["default"])
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
