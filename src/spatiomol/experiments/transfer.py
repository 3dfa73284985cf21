"""Cross-dataset transfer (paper App. A.6, Fig. 4B / Fig. 12).

Train a model on *every* edge of a source dataset, then predict *every* edge of a target
dataset from the target's own expression and coordinates, using only the genes both
datasets share (in the source's gene order). The chance level is a model of the same
configuration trained on one of the source's top CGE-matched nulls (true coordinates,
spun expression) and applied to the same target: transfer means beating it.

Results go to a `ResultsStore` (``split_type="transfer"``, ``dataset="SOURCE->TARGET"``),
so they are resumable and reportable like any grid.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain
from spatiomol.experiments.store import ResultsStore
from spatiomol.hashing import canonical_json


def shared_gene_brains(source: Brain, target: Brain) -> tuple[Brain, Brain]:
    """Both brains restricted to the genes they share, in the source's order.

    Raises
    ------
    ValueError
        When the brains share no gene.
    """
    target_genes = set(target.genes)
    shared = [g for g in source.genes if g in target_genes]
    if not shared:
        raise ValueError(
            f"transfer {source.name!r} → {target.name!r}: no shared genes "
            f"(source has {source.n_genes}, target {target.n_genes})"
        )
    return source.select_genes(shared), target.select_genes(shared)


def _resolve(item: str | Brain, gene_order: str) -> tuple[str, Brain]:
    if isinstance(item, Brain):
        return item.name, item
    from spatiomol.experiments.runner import load_source

    return item, load_source(item, gene_order)


def _null_permutation(
    store: ResultsStore, name: str, brain: Brain, nulls: dict[str, Any], index: int, gene_order: str
) -> np.ndarray:
    from spatiomol.experiments.runner import check_nulls_expression, nulls_file, nulls_from_settings
    from spatiomol.nulls import NullSet

    path = nulls_file(store, name, nulls, gene_order)
    if not path.exists():
        nulls_from_settings(brain, nulls).save(path)  # atomic (tmp file + os.replace)
    nullset = NullSet.load(path)
    nullset.check_brain(brain)
    check_nulls_expression(nullset, brain, path, name)
    perms = nullset.permutations
    if not 0 <= index < perms.shape[0]:
        raise ValueError(f"null index {index} out of range: {path} holds {perms.shape[0]} nulls")
    return perms[index]


def run_transfer(
    pairs: Iterable[tuple[str | Brain, str | Brain]],
    model: str,
    results_dir: str | os.PathLike,
    *,
    model_params: dict[str, Any] | None = None,
    null_index: int = 0,
    nulls: dict[str, Any] | None = None,
    seed: int = 0,
    gene_order: str = "as_given",
) -> pd.DataFrame:
    """Train on each full source, predict each full target, with true and null source expression.

    Parameters
    ----------
    pairs : iterable of (source, target)
        Dataset sources (bundled name, user YAML, ``synthetic:...``) or `Brain` objects.
    model : str
        Registry name; fitted at its default configuration plus ``model_params``
        (no tuning: the paper fixes defaults before seeing the target).
    results_dir : path of the `ResultsStore` (resumable).
    null_index : int
        Which of the source's top nulls trains the null model.
    nulls : dict
        ``n, top, method, seed, min_moved`` for `spatiomol.nulls.generate_nulls` (cached per source).
    seed : int
        Model seed (the same for the true and the null model).

    Returns
    -------
    DataFrame
        The store's rows for these pairs (``dataset = "SOURCE->TARGET"``,
        ``split_type = "transfer"``, ``input`` ``"true"``/``"null"``); metrics are over all
        target edges, on the target's scale.
    """
    from spatiomol.evaluation import evaluate
    from spatiomol.experiments.runner import _with_seed
    from spatiomol.models import registry

    store = ResultsStore(results_dir)
    from spatiomol.experiments.config import NULL_DEFAULTS, _validate_nulls

    nulls = {**NULL_DEFAULTS, **(nulls or {})}
    unknown = sorted(set(nulls) - set(NULL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"transfer: field 'nulls' has unknown keys {unknown}; expected keys among {sorted(NULL_DEFAULTS)}"
        )

    def fail(field_name: str, expected: str, got: Any) -> None:
        raise ValueError(f"transfer: field {field_name!r} must be {expected}, got {got!r}")

    _validate_nulls(nulls, fail)
    if isinstance(null_index, bool) or not isinstance(null_index, int) or not 0 <= null_index < nulls["top"]:
        fail("null_index", f"an integer between 0 and nulls.top - 1 ({nulls['top'] - 1})", null_index)
    model_params = dict(model_params or {})
    names = []
    ids: list[tuple[str, str]] = []
    for source_item, target_item in pairs:
        source_name, source = _resolve(source_item, gene_order)
        target_name, target = _resolve(target_item, gene_order)
        src, tgt = shared_gene_brains(source, target)
        label = f"{source_name}->{target_name}"
        names.append(label)
        i, j = tgt.pairs()
        for inp in ("true", "null"):
            settings = {"model_params": model_params, "gene_order": gene_order, "n_shared_genes": src.n_genes}
            if inp == "null":
                settings["nulls"] = nulls
            key = {
                "dataset": label,
                "model": model,
                "split_type": "transfer",
                "repeat": 0,
                "fold": 0,
                "input": inp,
                "null_index": null_index if inp == "null" else -1,
                "seed": seed,
                "settings": canonical_json(settings),
            }
            from spatiomol.experiments.store import run_id

            ids.append((run_id(key), label))
            if store.is_done(run_id(key)):
                continue
            train = src
            if inp == "null":
                perm = _null_permutation(store, source_name, source, nulls, null_index, gene_order)
                train = src.permute_expression(perm, note=f"CGE-matched null #{null_index} of {source_name}")
            default, _ = registry.search_space(model)
            params = _with_seed(model, {**default, **model_params}, seed)
            estimator = registry.make_model(model, **params)
            t0 = time.perf_counter()
            estimator.fit(train, np.arange(train.n_regions))
            fit_seconds = time.perf_counter() - t0
            y_pred = estimator.predict(tgt, i, j)
            rows = evaluate(tgt, i, j, y_pred)
            store.write_run(
                key,
                rows,
                hyperparameters=estimator.get_params(),
                n_parameters=int(getattr(estimator, "n_parameters_", -1)),
                fit_seconds=fit_seconds,
                predictions={"i": i, "j": j, "y_pred": y_pred, "y_true": tgt.targets(i, j)},
            )
    # the report shows, per (pair, model), only the runs of the latest call's settings
    current_ids = dict(store.read_manifest().get("transfer_run_ids", {}))
    for label in names:
        current_ids[f"{label} {model}"] = sorted(r for r, lab in ids if lab == label)
    store.write_manifest(
        {
            "transfer": {
                "model": model,
                "model_params": model_params,
                "null_index": null_index,
                "nulls": nulls,
                "seed": seed,
                "pairs": names,
            }
        },
        extra={"transfer_run_ids": current_ids},
    )
    df = store.load()
    return df[df["dataset"].isin(names) & (df["model"] == model)].reset_index(drop=True)


def transfer_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (source → target, model): Pearson r and MSE of the true and null models.

    ``gain_r`` = r(true) − r(null); positive means transfer beyond the source's null.
    """
    glob = df[(df["stratum"] == "all") & df["metric"].isin(["pearson", "mse", "geodesic"])]
    wide = glob.pivot_table(index=["dataset", "model"], columns=["metric", "input"], values="value", aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    for metric in ("pearson", "mse", "geodesic"):
        for inp in ("true", "null"):
            if (metric, inp) in wide.columns:
                out[f"{metric}_{inp}"] = wide[(metric, inp)]
    if {"pearson_true", "pearson_null"} <= set(out.columns):
        out["gain_r"] = out["pearson_true"] - out["pearson_null"]
    out = out.reset_index()
    out[["source", "target"]] = out["dataset"].str.split("->", n=1, expand=True)
    return out.drop(columns="dataset")[
        ["source", "target", *[c for c in out.columns if c not in ("dataset", "source", "target")]]
    ]
