"""Cross-dataset transfer: shared genes, true vs source-null model, checked against a direct fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spatiomol.data.sources import resolve_source
from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.experiments import execute, runner
from spatiomol.experiments.store import ResultsStore
from spatiomol.experiments.transfer import run_transfer, shared_gene_brains, transfer_table
from spatiomol.models import registry
from spatiomol.nulls import NULL_DEFAULTS, generate_nulls


@pytest.fixture(scope="module")
def brains():
    # one planted rule, two "datasets": disjoint-ish region sets and different gene panels
    brain = make_synthetic_brain(60, 40, rule="bilinear", decay_weight=0.2, signal_scale=0.3, seed=11)
    rng = np.random.default_rng(0)
    order = rng.permutation(60)
    source = brain.subset_regions(np.sort(order[:40])).replace(name="source")
    target_genes = list(rng.permutation(np.array(brain.genes))[:32])
    target = brain.subset_regions(np.sort(order[30:])).select_genes(target_genes).replace(name="target")
    return source, target


def test_shared_genes_in_source_order(brains):
    source, target = brains
    src, tgt = shared_gene_brains(source, target)
    assert src.genes == tgt.genes and len(src.genes) == 32
    assert list(src.genes) == [g for g in source.genes if g in set(target.genes)]
    with pytest.raises(ValueError, match="no shared genes"):
        shared_gene_brains(source, target.replace(genes=tuple(f"X{k}" for k in range(32))))


def test_transfer_beats_source_null_and_matches_direct_fit(brains, tmp_path, monkeypatch):
    source, target = brains
    nulls = {"n": 200, "top": 10, "method": "cge", "seed": 0}
    df = run_transfer([(source, target)], "cm", tmp_path, nulls=nulls, null_index=0)
    table = transfer_table(df)
    assert list(table[["source", "target"]].iloc[0]) == ["source", "target"]
    assert table["pearson_true"].iloc[0] > 0.7 and table["gain_r"].iloc[0] > 0.3
    for brain in (source, target):  # the folder keeps the region tables of both brains
        stored = ResultsStore(tmp_path).load_regions(brain.name)
        pd.testing.assert_frame_equal(stored.drop(columns="region"), brain.regions, check_dtype=False)

    src, tgt = shared_gene_brains(source, target)
    i, j = tgt.pairs()
    direct = registry.make_model("cm").fit(src, np.arange(src.n_regions))
    assert table["pearson_true"].iloc[0] == pytest.approx(
        stats.pearsonr(tgt.Y[i, j], direct.predict(tgt, i, j))[0], abs=1e-12
    )
    null_src = generate_nulls(source, **nulls).apply(src, 0)
    null_fit = registry.make_model("cm").fit(null_src, np.arange(src.n_regions))
    assert table["pearson_null"].iloc[0] == pytest.approx(
        stats.pearsonr(tgt.Y[i, j], null_fit.predict(tgt, i, j))[0], abs=1e-12
    )

    # resumable: a second call computes nothing new and returns the same rows
    def no_compute(spec, store):
        raise AssertionError(f"{spec.label()} recomputed")

    monkeypatch.setattr(execute, "compute_run", no_compute)
    again = run_transfer([(source, target)], "cm", tmp_path, nulls=nulls, null_index=0)
    assert again.equals(df)
    from spatiomol.reports.report import write_report

    text = write_report(tmp_path).read_text()
    assert "Cross-dataset transfer" in text and f"{table['gain_r'].iloc[0]:.3f}" in text


def test_transfer_cli_passes_min_moved_and_top_to_the_nulls(tmp_path, capsys):
    from spatiomol.cli.main import main
    from spatiomol.nulls import NullSet

    source, target = "synthetic:n_regions=30,n_genes=20,seed=1", "synthetic:n_regions=30,n_genes=20,seed=2"
    out = tmp_path / "t"
    assert (
        main(
            [
                "transfer",
                "--source",
                source,
                "--target",
                target,
                "--model",
                "cm",
                "--null-method",
                "cge",
                "--null-spins",
                "100",
                "--top",
                "3",
                "--min-moved",
                "0",
                "--null-index",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    files = list((out / "nulls").glob("*.npz"))
    assert len(files) == 1
    stored = NullSet.load(files[0])
    direct = generate_nulls(resolve_source(source), n=100, top=3, seed=0, method="cge", min_moved=0.0)
    assert stored.permutations.shape == (3, 30) and np.array_equal(stored.permutations, direct.permutations)
    assert stored.metadata["min_moved"] == 0.0
    manifest = ResultsStore(out).read_manifest()
    expected = {**NULL_DEFAULTS, "n": 100, "top": 3, "method": "cge", "seed": 0, "min_moved": 0.0, "cge_match": True}
    assert manifest["config"]["transfer"]["nulls"] == expected
    assert manifest["config"]["transfer"]["null_families"] == {"cge(n=100,top=3,min_moved=0.0)": expected}
    # each stored transfer run is refitted from its key alone (sources read from "SOURCE->TARGET")
    store = ResultsStore(out)
    for rid in store.done_ids():
        refit = runner.fit_run(runner.run_spec(out, rid), out)
        y_pred = refit.model.predict(refit.data.predict_brain, refit.data.i, refit.data.j)
        np.testing.assert_array_equal(y_pred, store.load_predictions(rid)["y_pred"])
    # a null index beyond --top and a floor outside [0, 1] are clear errors (exit 2)
    assert (
        main(
            [
                "transfer",
                "--source",
                source,
                "--target",
                target,
                "--model",
                "cm",
                "--null-spins",
                "100",
                "--top",
                "3",
                "--null-index",
                "3",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "'null_index' must be an integer between 0 and nulls.top - 1 (2), got 3" in capsys.readouterr().err
    assert (
        main(
            ["transfer", "--source", source, "--target", target, "--model", "cm", "--min-moved", "2", "--out", str(out)]
        )
        == 2
    )
    assert "'nulls.min_moved' must be a number between 0 and 1" in capsys.readouterr().err


def test_failed_transfer_runs_are_recorded_and_the_others_stored(brains, tmp_path):
    source, target = brains
    nulls = {"n": 100, "top": 3, "method": "cge", "seed": 0}
    pairs = [(source, target), (target, source)]
    with pytest.raises(RuntimeError, match=r"4 of 4 runs failed"):
        run_transfer(pairs, "cm", tmp_path, nulls=nulls, model_params={"alpha": -5.0}, log=lambda m: None)
    store = ResultsStore(tmp_path)
    failures = sorted(store.failures_dir.glob("*.txt"))
    assert len(failures) == 4 and all("Traceback" in f.read_text() for f in failures)
    assert store.done_ids() == set() and not any(store.claims_dir.glob("*.claim"))
    assert sorted(store.read_manifest()["transfer_run_ids"]) == ["source->target cm", "target->source cm"]

    # the same call with a valid configuration stores every run; the failures of others stay on record
    df = run_transfer(pairs, "cm", tmp_path, nulls=nulls, log=lambda m: None)
    assert df["run_id"].nunique() == 4 and set(df["dataset"]) == {"source->target", "target->source"}


def test_transfer_with_two_null_families_labels_each_null_run(brains, tmp_path):
    """One null run per family for each pair; each equals a direct fit on that family's null source."""
    source, target = brains
    families = [{"method": "cge", "n": 200, "top": 3}, {"method": "moran", "n": 200, "top": 3}]
    df = run_transfer([(source, target)], "cm", tmp_path, nulls=families, null_index=1)
    table = transfer_table(df).set_index("null_family")
    assert list(table.index) == ["cge(n=200,top=3)", "moran(n=200,top=3)"]
    assert table["pearson_true"].nunique() == 1  # one true run, repeated on each family's row
    src, tgt = shared_gene_brains(source, target)
    i, j = tgt.pairs()
    for settings in families:
        null_src = generate_nulls(source, **settings).apply(src, 1)
        fit = registry.make_model("cm").fit(null_src, np.arange(src.n_regions))
        expected = stats.pearsonr(tgt.Y[i, j], fit.predict(tgt, i, j))[0]
        label = f"{settings['method']}(n=200,top=3)"
        assert table.loc[label, "pearson_null"] == pytest.approx(expected, abs=1e-12)
        assert table.loc[label, "gain_r"] == pytest.approx(table.loc[label, "pearson_true"] - expected, abs=1e-12)
    assert sorted(p.name.rsplit("-", 1)[1] for p in ResultsStore(tmp_path).nulls_dir.iterdir()) == [
        "cge.npz",
        "moran.npz",
    ]
    with pytest.raises(ValueError, match=r"'null_index' must be an integer between 0 and nulls.top - 1 \(1\)"):
        run_transfer(
            [(source, target)], "cm", tmp_path, nulls=[families[0], {"method": "moran", "top": 2}], null_index=2
        )
