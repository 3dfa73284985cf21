"""Experiment configuration: a YAML (or TOML) file, optionally overridden by CLI flags.

Example (see the packaged demo, `demo_config_path`, and ``configs/full.yaml``)::

    name: demo
    datasets: [hcp-s100]        # bundled names, paths to a user YAML, or "synthetic:k=v,..."
    models: table1              # "table1", "all", or a list of registry names
    splits: [random, spatial]
    repeats: 1
    folds: 4
    inputs: [true, null]
    variants:                   # Table 3 feature-access cells (model, input), random splits
      - {model: mlp-coords-only, input: "true"}
      - {model: mlp-coords, input: permuted}
    variant_splits: [random]
    seed: 0
    tuning: true                # nested inner-CV selection; false = default configuration
    n_configs: 4
    untuned_models: [smt]       # fitted at their default configuration regardless
    model_params:               # fixed hyperparameters per model (win over the grid)
      mlp: {epochs: 20}
    null_models: [cm, cm-pls]   # models that get "null" runs (default: all that read expression)
    nulls: {n: 10000, top: 99, neural_top: 19, method: moran, seed: 0, min_moved: 0.9}
    # or several null families side by side, each merged over NULL_DEFAULTS:
    # nulls: [{method: moran}, {method: cge, top: 10}, {method: variogram}]
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spatiomol.data.sources import split_source_list
from spatiomol.evaluation.splits import SPLIT_KINDS
from spatiomol.models import registry
from spatiomol.nulls import FAMILIES, NULL_DEFAULTS, SUBCORTEX_NULLS

INPUT_KINDS = ("true", "null", "permuted")

#: Table 3 of the paper: null models with varying feature access (random splits)
TABLE3_VARIANTS = (
    {"model": "mlp-coords-only", "input": "true"},
    {"model": "mlp-coords", "input": "permuted"},
    {"model": "mlp-coords", "input": "null"},
    {"model": "smt-cls", "input": "permuted"},
    {"model": "smt-cls", "input": "null"},
)


@dataclass
class ExperimentConfig:
    """Everything that defines an experiment grid.

    Attributes
    ----------
    name : str
        Free label, written to the manifest and the report header.
    datasets : list of str
        Sources for `spatiomol.data.sources.resolve_source`: bundled dataset names
        (``spatiomol.data.bundled_files.list_datasets()``), paths to a user dataset YAML
        (as accepted by ``spatiomol validate``), or ``"synthetic:n_regions=60,n_genes=120,seed=0"``
        for a planted-rule brain. A single string is split with `spatiomol.data.sources.split_source_list` (a synthetic
        spec's commas stay inside it).
    models : list of str
        Registry names (``spatiomol.models.registry.MODELS``).
    splits : list of {"random", "spatial"}
    repeats, folds : int
        Repeats of ``folds``-fold cross-validation (paper: 10 × 4).
    inputs : list of {"true", "null", "permuted"}
        Expression given to the models; ``"null"`` scores each of the kept nulls of each
        null family on every split of the true runs (``top`` nulls for closed-form
        models, ``min(top, neural_top)`` for neural ones, `spatiomol.experiments.grid.null_count`),
        ``"permuted"`` a plain seeded shuffle of rows.
        Models that read no expression (distance rules) only get ``"true"``.
    null_models : list of str
        Models of the main grid that get ``"null"`` runs: registry names, ``"table1"``
        or ``"all"`` (default ``["all"]``: every model that reads expression). Null runs
        cost K × ``repeats`` × ``folds`` runs per family and split type (K = ``top`` for
        closed-form models, ``min(top, neural_top)`` for neural ones), so a CPU demo may
        restrict them to the closed-form models. Variants are not affected.
    variants : list of {"model", "input"}
        Extra (model, input) cells, run on ``variant_splits`` (Table 3).
    seed : int
        Root seed: splits, nulls, permutations and model seeds derive from it.
    tuning : bool
        Nested inner-CV hyperparameter selection (``n_configs`` sampled configurations
        plus the default); ``False`` fits the default configuration.
    untuned_models : list of str
        Models fitted at their default configuration (plus ``model_params``) even when
        ``tuning`` is on, e.g. the neural models of a CPU demo.
    model_params : dict
        ``{model: {hyperparameter: value}}`` fixed for every run of that model.
    nulls : dict or list of dict
        One null family's settings, or a list of families run side by side (each gets
        its own ``"null"`` runs, labelled by `null_family_label`): ``n`` nulls to draw,
        ``top`` kept (99), ``method`` (`spatiomol.nulls.NULL_METHODS`), ``seed``,
        ``min_moved`` (fraction of regions a selected null must move), ``subcortex`` and
        ``cge_match`` (None: the method's default), passed to
        `spatiomol.nulls.generate_nulls`; and ``neural_top`` (19), how many of the kept
        nulls the neural models are scored on (`GRID_NULL_KEYS`: it shapes the grid, not
        the nulls or any run's numbers). Each is merged over `NULL_DEFAULTS`; see
        `null_families` for the settings the runs use.
    gene_order : str
        ``"as_given"`` or a method of `spatiomol.data.genome.order_genes` (e.g. ``"tss"``).
    save_models : bool
        Save each run's fitted model in the results folder
        (`spatiomol.experiments.store.ResultsStore.model_path`, read back with
        `spatiomol.experiments.execute.load_run_model`). Not part of the run key.
    notes : str
        Text for the report header (e.g. that epochs are reduced).
    """

    name: str = "experiment"
    datasets: list[str] = field(default_factory=lambda: ["hcp-s100"])
    models: list[str] = field(default_factory=lambda: ["table1"])
    splits: list[str] = field(default_factory=lambda: ["random", "spatial"])
    repeats: int = 10
    folds: int = 4
    inputs: list[str] = field(default_factory=lambda: ["true", "null"])
    variants: list[dict[str, str]] = field(default_factory=list)
    variant_splits: list[str] = field(default_factory=lambda: ["random"])
    seed: int = 0
    tuning: bool = True
    n_configs: int = 4
    untuned_models: list[str] = field(default_factory=list)
    null_models: list[str] = field(default_factory=lambda: ["all"])
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    nulls: dict[str, Any] | list[dict[str, Any]] = field(default_factory=lambda: dict(NULL_DEFAULTS))
    gene_order: str = "as_given"
    save_models: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------ validation
    def validate(self, source: str = "config") -> None:
        """Raise a ValueError naming the field and what was expected."""

        def fail(field_name: str, expected: str, got: Any) -> None:
            raise ValueError(f"{source}: field {field_name!r} must be {expected}, got {got!r}")

        if isinstance(self.inputs, list):
            self.inputs = [_input_name(v) if v is True or v is None else v for v in self.inputs]
        for name in ("datasets", "models", "splits", "inputs", "variant_splits", "untuned_models", "null_models"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, split_source_list(value) if name == "datasets" else split_names(value))
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail(name, "a list of strings (or a comma-separated string)", value)
        self.inputs = [_input_name(v) for v in self.inputs]
        if not self.datasets:
            fail("datasets", "a non-empty list", self.datasets)
        if not self.models:
            fail("models", "a non-empty list", self.models)
        for s in (*self.splits, *self.variant_splits):
            if s not in SPLIT_KINDS:
                fail("splits", f"a subset of {list(SPLIT_KINDS)}", s)
        for s in self.inputs:
            if s not in INPUT_KINDS:
                fail("inputs", f"a subset of {list(INPUT_KINDS)}", s)
        for name in ("repeats", "folds", "n_configs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                fail(name, "a positive integer" if name != "seed" else "a non-negative integer", value)
        if self.folds < 2:
            fail("folds", "at least 2", self.folds)
        if not isinstance(self.tuning, bool):
            fail("tuning", "true or false", self.tuning)
        if not isinstance(self.save_models, bool):
            fail("save_models", "true or false", self.save_models)
        if not isinstance(self.model_params, dict) or not all(isinstance(v, dict) for v in self.model_params.values()):
            fail("model_params", "a mapping {model: {hyperparameter: value}}", self.model_params)
        if not isinstance(self.variants, list):
            fail("variants", "a list of {model, input} mappings", self.variants)
        cleaned = []
        for v in self.variants:
            if not isinstance(v, dict) or set(v) != {"model", "input"}:
                fail("variants", "a list of {model, input} mappings", v)
            inp = _input_name(v["input"])
            if inp not in INPUT_KINDS:
                fail("variants[].input", f"one of {list(INPUT_KINDS)}", v["input"])
            cleaned.append({"model": str(v["model"]), "input": inp})
        self.variants = cleaned
        self.nulls = validated_null_families(self.nulls, fail)
        self._validate_models(fail)

    def _validate_models(self, fail) -> None:
        """model_params and null_models name known models; variants need expression."""
        for model in self.null_models:
            if model not in (*registry.MODELS, "table1", "all"):
                fail("null_models", f"registry model names ({', '.join(registry.MODELS)}), 'table1' or 'all'", model)
        for model, params in self.model_params.items():
            if model not in registry.MODELS:
                fail("model_params", f"keyed by registry model names ({', '.join(registry.MODELS)})", model)
            accepted = sorted(registry.model_class(model)._get_param_names())
            unknown = sorted(set(params) - set(accepted))
            if unknown:
                fail(f"model_params.{model}", f"hyperparameters of {model} among {accepted}", unknown)
        for v in self.variants:
            if (
                v["input"] != "true"
                and v["model"] in registry.MODELS
                and not registry.spec(v["model"]).reads_expression
            ):
                fail(
                    "variants",
                    f"a (model, input) cell whose model reads expression when input is "
                    f"{v['input']!r} ({v['model']} ignores expression, so a {v['input']} run would "
                    f"repeat its true run; use input 'true')",
                    v,
                )

    # ------------------------------------------------------------ conversions
    def null_families(self) -> dict[str, dict[str, Any]]:
        """Every null family of the experiment: label → settings as the runs use them.

        Config order; settings completed from `NULL_DEFAULTS` with ``cge_match`` resolved
        (`resolved_nulls`); labels from `null_family_label` (the method name, plus the
        settings that differ from the defaults).
        """
        entries = self.nulls if isinstance(self.nulls, list) else [self.nulls]
        resolved = [resolved_nulls(entry) for entry in entries]
        return {null_family_label(settings): settings for settings in resolved}

    def resolved_models(self) -> list[str]:
        """Model names with ``table1`` / ``all`` expanded, order kept, no duplicates."""
        for v in self.variants:
            if v["model"] not in registry.MODELS:
                raise ValueError(f"config field 'variants': unknown model {v['model']!r}")
        return self._expanded(self.models, "models")

    def gets_null_runs(self, model: str) -> bool:
        """Whether ``model`` of the main grid gets ``"null"`` runs (``null_models``)."""
        return "all" in self.null_models or model in self._expanded(self.null_models, "null_models")

    @staticmethod
    def _expanded(names: list[str], field_name: str) -> list[str]:
        out: list[str] = []
        for name in names:
            for n in {"table1": registry.TABLE1, "all": registry.TABLE1}.get(name, [name]):
                if n not in registry.MODELS:
                    raise ValueError(
                        f"config field {field_name!r}: unknown model {n!r}; known: {', '.join(registry.MODELS)}"
                    )
                if n not in out:
                    out.append(n)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExperimentConfig:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping of configuration fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown configuration fields {unknown}; known: {sorted(known)}")
        cfg = cls.__new__(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            setattr(cfg, f.name, data.get(f.name, getattr(defaults, f.name)))
        cfg.validate(source)
        return cfg

    def updated(self, **changes: Any) -> ExperimentConfig:
        """A copy with fields replaced (None values are ignored), validated."""
        data = self.to_dict()
        data.update({k: v for k, v in changes.items() if v is not None})
        return ExperimentConfig.from_dict(data, "command-line flags")


def validate_nulls(nulls: dict[str, Any], fail, field: str = "nulls") -> None:
    """Types and ranges of one family's ``nulls`` settings (see `spatiomol.nulls.generate_nulls`).

    ``nulls`` holds every key of `NULL_DEFAULTS`; ``fail(field, expected, got)`` raises,
    with fields named ``f"{field}.KEY"``. ``min_moved`` is turned into a float in place.
    """

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(nulls["method"], str) or nulls["method"] not in FAMILIES:
        fail(f"{field}.method", f"one of {list(FAMILIES)}", nulls["method"])
    if not is_int(nulls["n"]) or nulls["n"] < 2:
        fail(f"{field}.n", "an integer >= 2 (nulls drawn)", nulls["n"])
    if not is_int(nulls["top"]) or not 1 <= nulls["top"] <= nulls["n"]:
        fail(f"{field}.top", f"an integer between 1 and {field}.n ({nulls['n']})", nulls["top"])
    if not is_int(nulls["neural_top"]) or nulls["neural_top"] < 1:
        fail(
            f"{field}.neural_top",
            f"an integer >= 1 (neural models are scored on the first min({field}.top, {field}.neural_top) nulls)",
            nulls["neural_top"],
        )
    if not is_int(nulls["seed"]) or nulls["seed"] < 0:
        fail(f"{field}.seed", "a non-negative integer", nulls["seed"])
    mm = nulls["min_moved"]
    if isinstance(mm, bool) or not isinstance(mm, (int, float)) or not 0.0 <= float(mm) <= 1.0:
        fail(f"{field}.min_moved", "a number between 0 and 1 (fraction of regions a null must move)", mm)
    nulls["min_moved"] = float(mm)
    if not isinstance(nulls["subcortex"], str) or nulls["subcortex"] not in SUBCORTEX_NULLS:
        fail(f"{field}.subcortex", f"one of {list(SUBCORTEX_NULLS)}", nulls["subcortex"])
    if nulls["cge_match"] is not None and not isinstance(nulls["cge_match"], bool):
        fail(f"{field}.cge_match", "true, false or null (the method's default)", nulls["cge_match"])


def validated_null_families(
    nulls: dict[str, Any] | list[dict[str, Any]], fail
) -> dict[str, Any] | list[dict[str, Any]]:
    """The config's ``nulls`` checked and completed from `NULL_DEFAULTS`, in the shape given.

    One mapping (one family) or a non-empty list of mappings (families side by side);
    two entries that resolve to the same settings are refused.
    """
    entries = nulls if isinstance(nulls, list) else [nulls]
    if isinstance(nulls, list) and not nulls:
        fail("nulls", "a mapping of null settings or a non-empty list of them", nulls)
    completed = []
    for k, entry in enumerate(entries):
        where = f"nulls[{k}]" if isinstance(nulls, list) else "nulls"
        if not isinstance(entry, dict):
            fail(where, f"a mapping with keys among {sorted(NULL_DEFAULTS)}", entry)
        unknown = sorted(set(entry) - set(NULL_DEFAULTS))
        if unknown:
            fail(where, f"a mapping with keys among {sorted(NULL_DEFAULTS)}", unknown)
        settings = {**NULL_DEFAULTS, **entry}
        validate_nulls(settings, fail, where)
        completed.append(settings)
    labels: dict[str, int] = {}
    for k, settings in enumerate(completed):
        label = null_family_label(settings)
        if label in labels:
            fail(
                f"nulls[{k}]",
                f"a null family different from nulls[{labels[label]}] (both resolve to {label!r})",
                entries[k],
            )
        labels[label] = k
    return completed if isinstance(nulls, list) else completed[0]


#: null settings that shape the grid (which null cells exist), not the nulls or any run's
#: numbers: left out of the run settings (`null_run_settings`: run ids, cached null files)
#: and of the family label, so changing ``neural_top`` re-uses every finished run, as
#: changing ``repeats`` does
GRID_NULL_KEYS = ("neural_top",)


def resolved_nulls(settings: dict[str, Any]) -> dict[str, Any]:
    """One family's settings as the runs use them: every `NULL_DEFAULTS` key, ``cge_match`` a bool.

    ``cge_match: None`` becomes the method's default (``NullFamily.cge_match_default`` of
    `spatiomol.nulls.FAMILIES`), so
    that the settings hash (run ids, cached null files) changes if that default does.
    """
    out = {**NULL_DEFAULTS, **settings}
    if out["cge_match"] is None:
        out["cge_match"] = FAMILIES[out["method"]].cge_match_default
    if isinstance(out["min_moved"], int) and not isinstance(out["min_moved"], bool):
        out["min_moved"] = float(out["min_moved"])
    return out


def null_run_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """One family's settings as they enter a run's settings and its null file's name.

    `resolved_nulls` without `GRID_NULL_KEYS`: the keys that decide which nulls exist and
    what they are, and nothing that only decides how many of them a model is scored on.
    """
    return {k: v for k, v in resolved_nulls(settings).items() if k not in GRID_NULL_KEYS}


def null_family_label(settings: dict[str, Any]) -> str:
    """Short name of a null family: its method, plus the settings that differ from the defaults.

    ``{"method": "cge"}`` → ``"cge"``; ``{"method": "hungarian", "cge_match": True,
    "subcortex": "shuffle"}`` → ``"hungarian(cge_match=true,subcortex=shuffle)"``. A pure
    function of the resolved settings (`resolved_nulls`), so a stored run's label
    follows from its key, and distinct settings have distinct labels (`GRID_NULL_KEYS`
    excepted: they change no null, so two families differing only there are one family).
    """
    resolved = resolved_nulls(settings)
    defaults = resolved_nulls({"method": resolved["method"]})
    options = [
        f"{key}={_label_value(resolved[key])}"
        for key in NULL_DEFAULTS
        if key != "method" and key not in GRID_NULL_KEYS and resolved[key] != defaults[key]
    ]
    return resolved["method"] + (f"({','.join(options)})" if options else "")


def run_null_family(settings: str | dict[str, Any], input_kind: str) -> str:
    """The null family label of a run (its ``settings`` JSON and ``input``); ``""`` unless a null run."""
    if input_kind != "null":
        return ""
    nulls = (json.loads(settings) if isinstance(settings, str) else settings).get("nulls")
    return null_family_label(nulls) if isinstance(nulls, dict) else ""


def _label_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def split_names(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (comma-separated names; blanks dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _input_name(value: Any) -> str:
    # YAML reads bare `true` / `null` as a boolean / None; the input kinds are strings
    if value is True:
        return "true"
    if value is None:
        return "null"
    return str(value).strip().lower()


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read an `ExperimentConfig` from a ``.yaml``/``.yml`` or ``.toml`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: experiment configuration file not found")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: cannot parse configuration ({err})") from err
    return ExperimentConfig.from_dict(data or {}, str(path))


def demo_config_path() -> Path:
    """The demo configuration shipped with the package (``spatiomol demo``, ``make demo``)."""
    return Path(str(resources.files("spatiomol.experiments").joinpath("configs", "demo.yaml")))
