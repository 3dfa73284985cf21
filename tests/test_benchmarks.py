"""The benchmark suite (``benchmarks/``): every script's ``--quick`` smoke run, so that a
benchmark cannot rot unnoticed, and the shared harness's resumable CSV.

The quick runs call each script's ``main(["--quick", "--out", tmp])`` in this process (one
import of torch and the package for all of them; BLAS at one thread, as the scripts set it
for themselves when run on their own). One subprocess runs every script's ``--help`` the way
``python benchmarks/<folder>/<script>.py`` runs it, from another working directory, which
checks that each script finds the harness by itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RESULTS = BENCHMARKS / "results"


def scripts(folder: str) -> list[str]:
    """Module names (``perf.cm_speed``) of a folder's scripts; ``_*.py`` are helpers."""
    return [f"{folder}.{p.stem}" for p in sorted((BENCHMARKS / folder).glob("*.py")) if not p.name.startswith("_")]


SCRIPTS = scripts("perf") + scripts("studies")


@pytest.fixture(scope="module")
def on_path():
    """``benchmarks/`` on ``sys.path`` (as each script puts it), removed again afterwards."""
    sys.path.insert(0, str(BENCHMARKS))
    yield
    sys.path.remove(str(BENCHMARKS))
    for name in [m for m in sys.modules if m.split(".")[0] in ("harness", "perf", "studies")]:
        del sys.modules[name]


def brainspace_importable() -> bool:
    """Whether brainspace's Moran module imports: `make install` adds brainspace without VTK
    (for its atlas files only), where the import fails."""
    try:
        import brainspace.null_models.moran  # noqa: F401
    except ImportError:
        return False
    return True


def brainspace_stand_in(monkeypatch) -> None:
    """brainspace (the ``bench`` extra, with VTK) where it is not installed: a stand-in
    ``moran_randomization`` with brainspace's sign draws, so that the rest of
    ``perf/nulls_families.py`` runs; the real comparison is ``make bench``'s."""
    from spatiomol.nulls.spectral import moran_surrogates

    def moran_randomization(x, mem, n_rep=100, procedure="singleton", joint=False, random_state=None):
        signs = np.random.RandomState(random_state).choice([-1.0, 1.0], size=(n_rep, mem.shape[1], 1))[:, :, 0]
        return moran_surrogates(x, mem, signs)

    names = ("brainspace", "brainspace.null_models", "brainspace.null_models.moran")
    modules = {name: types.ModuleType(name) for name in names}
    modules["brainspace.null_models.moran"].moran_randomization = moran_randomization
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_run_writes_its_table_elsewhere_than_the_committed_results(name, on_path, tmp_path, monkeypatch):
    from threadpoolctl import threadpool_limits

    if name == "perf.nulls_families" and not brainspace_importable():
        brainspace_stand_in(monkeypatch)
    module = importlib.import_module(name)
    before = {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir() if p.is_file()}
    with threadpool_limits(1):
        assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    tables = sorted(p.name for p in tmp_path.glob("*.md"))
    assert tables, f"{name} --quick wrote no table"
    for table in tables:  # the committed table of the same name is untouched
        assert before.get(table) == ((RESULTS / table).stat().st_mtime_ns if (RESULTS / table).exists() else None)


def test_every_script_has_help_from_any_working_directory(tmp_path):
    """``--help`` of every script, run as ``python <script>`` runs it (its folder first on
    ``sys.path``), from a working directory outside the repository."""
    paths = [BENCHMARKS / f"{name.replace('.', '/')}.py" for name in SCRIPTS]
    paths += [BENCHMARKS / "run_all.py"]
    code = (
        "import runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv, sys.path[0] = [path, '--help'], path.rsplit('/', 1)[0]\n"
        "    try:\n"
        "        runpy.run_path(path, run_name='__main__')\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code in (0, None), (path, exit.code)\n"
        "    else:\n"
        "        raise AssertionError(path + ': --help did not exit')\n"
        "    print('ok', path)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, paths)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path in paths:
        assert f"ok {path}" in proc.stdout


def test_quick_options_and_where_a_quick_run_may_write(on_path, tmp_path):
    harness = importlib.import_module("harness")

    def parse(argv):
        parser = harness.make_parser("a benchmark")
        parser.add_argument("--n", type=int, default=100)
        return harness.parse_args(parser, argv, quick={"n": 2})

    with pytest.raises(SystemExit):  # the committed tables, or a folder inside them
        parse(["--quick", "--out", str(RESULTS / "null_calibration")])
    args = parse(["--quick", "--out", str(tmp_path)])
    assert (args.n, args.out) == (2, tmp_path)  # quick values replace defaults ...
    assert parse(["--quick", "--out", str(tmp_path), "--n", "5"]).n == 5  # ... not options given
    args = parse(["--n", "5"])
    assert (args.n, args.out) == (5, RESULTS)  # a full run writes the committed tables


def test_resumable_csv_appends_under_a_lock_and_replaces_rows(on_path, tmp_path):
    harness = importlib.import_module("harness")
    path = tmp_path / "rows.csv"
    assert harness.read_rows(path) == []
    harness.append_row(path, {"a": 1, "b": "x", "ignored": 0}, ("a", "b"))
    harness.append_rows(path, [{"a": 2, "b": "y"}, {"a": 3, "b": "z"}], ("a", "b"))
    assert harness.read_rows(path) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}, {"a": "3", "b": "z"}]
    assert (tmp_path / "rows.csv.lock").exists() and path.read_bytes().count(b"\r") == 0
    harness.append_rows(path, [{"a": 2, "b": "w"}], ("a", "b"), replace=lambda r: r["a"] == "2", lineterminator="\r\n")
    assert harness.read_rows(path) == [{"a": "1", "b": "x"}, {"a": "3", "b": "z"}, {"a": "2", "b": "w"}]
    assert path.read_bytes().endswith(b"2,w\r\n")
    assert harness.fmt([]) == "—" and harness.fmt([0.5]) == "0.500 ± nan (1)"
    assert harness.fmt([0.1, 0.3]) == "0.200 ± 0.141 (2)"


def test_run_all_finds_the_scripts_by_folder(on_path):
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    assert [p.parent.name for p in run_all.perf_scripts()] == ["perf"] * len(scripts("perf"))
    studies = [p.relative_to(BENCHMARKS).as_posix() for p in run_all.study_scripts()]
    assert studies == [f"{name.replace('.', '/')}.py" for name in scripts("studies")]
    assert not set(run_all.perf_scripts()) & set(run_all.study_scripts())
