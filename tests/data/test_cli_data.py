"""`spatiomol datasets | info | fetch | validate` on the real data (mirror) and on users' files."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import yaml

from spatiomol.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_datasets_lists_the_ten_bundled_datasets(capsys):
    code, out, _ = _run(capsys, "datasets")
    assert code == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == [
        f"hcp-{res}{target}" for res in ("dk", "s100", "s200", "s300", "s400") for target in ("", "-sc")
    ]


def test_info_hcp_s100(capsys, data_mirror):
    code, out, _ = _run(capsys, "info", "hcp-s100", "--mirror", str(data_mirror))
    assert code == 0
    assert "114 regions, 810 genes" in out
    assert "hemispheres: L 57, R 57" in out
    assert "structures: cortex 100, subcortex 14" in out
    networks = dict(re.findall(r"(\w+) (\d+)", re.search(r"networks: (.*)", out).group(1)))
    assert {k: int(v) for k, v in networks.items()} == {
        "Default": 24,
        "Vis": 17,
        "DorsAttn": 15,
        "SomMot": 14,
        "Subcortex": 14,
        "Cont": 13,
        "SalVentAttn": 12,
        "Limbic": 5,
    }
    assert "missing expression: 0 regions" in out and "0 regions filled" in out
    assert "target: fc (functional connectivity), scale r (Pearson r)" in out
    assert "tanh(Fisher-z" in out
    assert "unweighted mean of the MNI centroids" in out and "pallidum = GPe + GPi" in out


def test_info_hcp_s400_reports_the_49_filled_regions(capsys, data_mirror):
    code, out, _ = _run(capsys, "info", "hcp-s400", "--mirror", str(data_mirror))
    assert code == 0
    assert "414 regions, 282 genes" in out
    assert "hemispheres: L 207, R 207" in out and "structures: cortex 400, subcortex 14" in out
    assert "missing expression: 49 regions without samples" in out
    match = re.search(r"49 regions filled by mirror-interpolate: (\d+) copied .*, (\d+) by the inverse-distance", out)
    assert match and int(match.group(1)) + int(match.group(2)) == 49
    listed = [line for line in out.splitlines() if re.match(r"\s+7Networks_\S+\s+(mirror|interpolate)\s+from", line)]
    assert len(listed) == 49


def test_info_sc_and_drop(capsys, data_mirror):
    code, out, _ = _run(capsys, "info", "hcp-s400-sc", "--mirror", str(data_mirror), "--missing", "drop")
    assert code == 0
    assert "365 regions, 282 genes" in out and "49 regions dropped" in out
    assert "target: sc (structural connectivity), scale raw" in out


def test_fetch_prints_checked_paths(capsys, data_mirror):
    code, out, _ = _run(capsys, "fetch", "hcp-s100", "--mirror", str(data_mirror))
    assert code == 0
    assert f"{data_mirror}/enigma_hcp/funcMatrix_with_ctx_schaefer_100.csv" in out
    assert "afb3c0661e39530f67b3c24ca9dd4957bb0473780a8f7491857e3268d87cad0d (checked)" in out
    assert (
        len(out.strip().splitlines()) == 7
    )  # expression, connectome, labels, atlas, subcortex atlas, SC and its labels


def test_unknown_dataset_is_a_clean_error(capsys, data_mirror):
    code, _, err = _run(capsys, "fetch", "hcp-s999", "--mirror", str(data_mirror))
    assert code == 2 and "unknown dataset 'hcp-s999'" in err


def test_validate_good_files_prints_a_summary(capsys, user_files):
    code, out, _ = _run(
        capsys,
        "validate",
        "--expression",
        str(user_files["expression"]),
        "--connectome",
        str(user_files["connectome"]),
        "--regions",
        str(user_files["regions"]),
        "--subjects",
        str(user_files["subjects"]),
    )
    assert code == 0
    assert out.startswith("OK: no problems found")
    assert "12 regions, 9 genes" in out and "subjects: 3" in out


def test_validate_bad_files_prints_every_problem(capsys, user_files, small_brain):
    regions = pd.read_csv(user_files["regions"])
    regions.loc[0, "structure"] = "brainstem"
    regions.to_csv(user_files["regions"], index=False)
    Y = small_brain.Y.copy()
    Y[0, 1] += 0.5
    np.save(user_files["subjects"], np.stack([Y, Y]))
    code, out, _ = _run(
        capsys,
        "validate",
        "--expression",
        str(user_files["expression"]),
        "--connectome",
        str(user_files["connectome"]),
        "--regions",
        str(user_files["regions"]),
        "--subjects",
        str(user_files["subjects"]),
    )
    assert code == 1
    assert out.startswith("2 problem(s) found:")
    assert f"regions file {user_files['regions']}: field 'structure'" in out
    assert f"subjects file {user_files['subjects']} (subject 0): matrix is not symmetric" in out


def test_info_accepts_a_yaml_of_user_files(capsys, user_files):
    spec = user_files["regions"].parent / "mine.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "expression": "expression.csv",
                "connectome": "connectome.csv",
                "regions": "regions.csv",
                "name": "my-brain",
            }
        )
    )
    code, out, _ = _run(capsys, "info", str(spec))
    assert code == 0 and out.startswith("my-brain") and "12 regions, 9 genes" in out
