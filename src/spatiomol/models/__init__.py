"""Models: one `ModelSpec` per registry name; ``make_model(name, **hyperparameters)`` builds one."""

from spatiomol.models.registry import MODELS, make_model, names, search_space, spec

__all__ = ["MODELS", "make_model", "names", "search_space", "spec"]
