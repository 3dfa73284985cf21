"""Gene order: genomic (TSS) order on a hand-made table and on GENCODE v27; random, mean, as given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spatiomol.data.brain import Brain
from spatiomol.data.datasets import load_dataset
from spatiomol.data.genome import order_genes, read_gene_positions
from spatiomol.data.synthetic import make_synthetic_brain

TABLE = (
    "G_chr10\tchr10\t500\t900\n"
    "G_chr2\tchr2\t100\t200\n"
    "G_chr1_late\tchr1\t5000\t6000\n"
    "G_chr1_early\tchr1\t40\t80\t\n"  # trailing tab, as in the real file
    "G_chrM\tchrM\t1\t50\n"
    "G_chrX\tchrX\t10\t20\n"
    "G_chrY\tchrY\t10\t20\n"
    "G_chr1_late\tchr5\t1\t2\n"  # listed twice: the first position in genome order (chr1) wins
)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "genes.txt"
    path.write_text(TABLE)
    return path


def _brain_with_genes(genes, seed=0):
    base = make_synthetic_brain(n_regions=8, n_genes=len(genes), seed=seed)
    return base.replace(genes=tuple(genes))


def test_read_gene_positions_sorts_chromosomes_numerically(table):
    positions = read_gene_positions(table)
    assert positions["symbol"].tolist() == [
        "G_chr1_early",
        "G_chr1_late",
        "G_chr2",
        "G_chr10",
        "G_chrX",
        "G_chrY",
        "G_chrM",
    ]
    assert positions.set_index("symbol").loc["G_chr1_late", "start"] == 5000


def test_tss_order_puts_unknown_genes_last_and_reports_them(table):
    genes = ["UNKNOWN_B", "G_chrX", "G_chr10", "G_chr2", "UNKNOWN_A", "G_chrM", "G_chr1_late", "G_chr1_early"]
    brain = _brain_with_genes(genes)
    out = order_genes(brain, "tss", table=table)
    assert out.genes == (
        "G_chr1_early",
        "G_chr1_late",
        "G_chr2",
        "G_chr10",
        "G_chrX",
        "G_chrM",
        "UNKNOWN_B",
        "UNKNOWN_A",
    )
    report = out.provenance["gene_order"]
    assert (report["n_found"], report["n_not_found"]) == (6, 2)
    assert report["not_found"] == ["UNKNOWN_B", "UNKNOWN_A"]
    assert report["chromosomes"] == ["chr1", "chr1", "chr2", "chr10", "chrX", "chrM", None, None]
    # columns of X move with their genes
    for k, g in enumerate(out.genes):
        np.testing.assert_array_equal(out.X[:, k], brain.X[:, genes.index(g)])


def test_random_order_is_the_seeded_permutation():
    brain = make_synthetic_brain(n_regions=8, n_genes=30, seed=2)
    out = order_genes(brain, "random", seed=11)
    perm = np.random.default_rng(11).permutation(30)
    assert out.genes == tuple(brain.genes[k] for k in perm)
    np.testing.assert_array_equal(out.X, brain.X[:, perm])
    assert order_genes(brain, "random", seed=11).genes == out.genes
    assert order_genes(brain, "random", seed=12).genes != out.genes


def test_mean_expression_order_is_descending_and_ignores_nan_rows():
    brain = make_synthetic_brain(n_regions=8, n_genes=20, seed=4)
    X = brain.X.copy()
    X[3] = np.nan
    brain = brain.replace(X=X)
    out = order_genes(brain, "mean_expression")
    means = np.array([np.mean(np.delete(X[:, k], 3)) for k in range(20)])
    assert out.genes == tuple(brain.genes[k] for k in np.argsort(-means, kind="stable"))
    assert np.all(np.diff(np.nanmean(out.X, axis=0)) <= 0)


def test_as_given_and_unknown_method():
    brain = make_synthetic_brain(n_regions=8, n_genes=5, seed=0)
    assert order_genes(brain, "as_given").genes == brain.genes
    with pytest.raises(ValueError, match="gene_order must be one of"):
        order_genes(brain, "alphabetical")


def test_bad_table_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_text("A\tchr1\t10\t20\nB\tchr1\tten\t20\n")
    with pytest.raises(ValueError, match=r"broken.txt: line 2: start/end must be integers"):
        read_gene_positions(path)


def test_real_tss_order_against_an_independent_parse(data_mirror):
    brain = load_dataset("hcp-s100", gene_order="tss", mirror=data_mirror)
    given = load_dataset("hcp-s100", mirror=data_mirror)
    table = pd.read_csv(
        data_mirror / "genome/hg38_gencode_v27.txt",
        sep="\t",
        header=None,
        usecols=[0, 1, 2],
        names=["symbol", "chrom", "start"],
    )
    chrom_rank = {f"chr{c}": k for k, c in enumerate([*map(str, range(1, 23)), "X", "Y", "M"])}
    key = {s: (chrom_rank[c], p) for s, c, p in zip(table["symbol"], table["chrom"], table["start"])}
    found = [g for g in brain.genes if g in key]
    absent = [g for g in given.genes if g not in key]
    report = brain.provenance["gene_order"]
    assert report["n_not_found"] == len(absent) == 13 and report["n_found"] == 797
    assert report["not_found"] == absent and list(brain.genes[-13:]) == absent
    assert [key[g] for g in found] == sorted(key[g] for g in found)
    assert sorted(brain.genes) == sorted(given.genes)  # nothing dropped
    np.testing.assert_array_equal(brain.X, given.select_genes(list(brain.genes)).X)
    assert report["table"]["sha256"] == "21bad4f8c68c96488886b109bba7c3feaa0b983bfccd650abde83bd61ec78f9b"


def test_order_genes_returns_a_new_brain():
    brain = make_synthetic_brain(n_regions=8, n_genes=6, seed=0)
    out = order_genes(brain, "random", seed=1)
    assert isinstance(out, Brain) and out is not brain and "gene_order" not in brain.provenance
