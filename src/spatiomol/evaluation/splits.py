"""Region-level train/test splits (paper §4, Fig. 2B and Fig. 11) and inner validation.

A split divides the *regions* of a brain, not its edges: the model learns from every
unordered pair of training regions and is scored on every unordered pair of test regions.
Pairs with one end in each set are never used, so no test region's expression or
connectivity is seen during training.

Two protocols, each repeated ``n_repeats`` times with ``n_folds`` folds:

``random``
    The regions are shuffled and cut into ``n_folds`` contiguous blocks of the shuffled
    order with `numpy.array_split`; fold ``f`` tests block ``f``.
``spatial``
    Adapted from Hansen et al. (2021). Fold sizes ``n_f`` come from `numpy.array_split`
    of the regions. For fold ``f = 0, 1, ...`` a source region is drawn uniformly among
    the regions *not yet used as test* in this repeat, and the test set is the ``n_f`` of
    those unassigned regions nearest to it (Euclidean distance between MNI centroids,
    ties broken by region index). The source itself is at distance 0, so it is always a
    test region of its fold.

Three held-out-system protocols (issue 27; GeneEx2Conn's harder generalisation tests) have
a layout fixed by the brain rather than by ``n_repeats × n_folds`` (`split_layout`): one
repeat, and

``network``
    one fold per network label (``brain.network``, in order of first appearance; the
    subcortex is its own label): fold ``f`` tests every region of label ``f`` and trains on
    all the others. Regions labelled ``Unknown`` (or empty) are never held out; a label
    with a single region (no test edge) is an error. A brain without network labels (every cortical label ``Unknown`` or
    empty, as the Desikan–Killiany dataset) is a ``ValueError``.
``hemisphere``
    two folds: fold 0 trains on the left hemisphere and tests on the right, fold 1 the
    reverse. Regions with another hemisphere value (midline) are in neither set.
``structure``
    one fold: train on the cortex, test on the subcortex (regions of any other structure
    class, e.g. cerebellum, are in neither set).

No randomness is involved, so ``seed`` is only recorded. Test sets differ in size between
folds (a network of 6 regions against one of 30); every downstream statistic is per split
and pairs splits, so unequal folds need no weighting.

Coverage guarantee (``random`` and ``spatial``): within one repeat the test sets of the folds are
pairwise disjoint and their union is every region, i.e. every region is tested exactly
once per repeat; each split's training set is the complement of its test set. For
``spatial`` this holds because each fold only draws from regions no earlier fold used,
and the fold sizes sum to the number of regions, so the last fold takes exactly the
regions that remain (which may be less compact than the first folds' neighbourhoods).

Seeds: the generator of repeat ``k`` is ``numpy.random.default_rng(SeedSequence(seed,
spawn_key=(k,)))``, identical to ``SeedSequence(seed).spawn(n)[k]``, so repeat ``k``
does not depend on how many repeats are drawn. The dataset name is only a label.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spatiomol.data.brain import Brain, pairs_within

#: every split protocol; the last three have a layout fixed by the brain (`split_layout`)
SPLIT_KINDS = ("random", "spatial", "network", "hemisphere", "structure")
#: protocols whose layout the brain fixes: one repeat, folds by network / hemisphere / structure
HELD_OUT_KINDS = ("network", "hemisphere", "structure")
#: network labels that mean "no network assigned"
NO_NETWORK = ("", "Unknown", "nan")
_FORMAT = "spatiomol-splits"
_FORMAT_VERSION = 1


def _as_index_array(values: Any, field: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"Split.{field}: expected a 1-d array of region indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(f"Split.{field}: expected integer region indices")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError(f"Split.{field}: region indices must be non-negative")
    if np.any(np.diff(array) <= 0):
        raise ValueError(f"Split.{field}: region indices must be sorted and unique")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test division of the regions of a dataset.

    Attributes
    ----------
    dataset : str
        Name of the brain the split was drawn for (a label only).
    kind : one of `SPLIT_KINDS`
        Split protocol.
    repeat : int
        Repeat (round of cross-validation), ``0 .. n_repeats-1``.
    fold : int
        Fold within the repeat, ``0 .. n_folds-1``.
    seed : int
        Master seed passed to `make_splits`; with ``repeat`` it determines the split.
    train : (n_train,) int64 array
        Sorted training region indices (read-only).
    test : (n_test,) int64 array
        Sorted test region indices (read-only), disjoint from ``train``.
    source : int or None
        For ``spatial`` splits, the source region whose neighbourhood is the test set;
        ``None`` for the other protocols.
    held_out : str or None
        For the held-out-system protocols, what the test set is (``"Vis"``, ``"L→R"``,
        ``"cortex→subcortex"``); ``None`` for ``random`` and ``spatial``.
    """

    dataset: str
    kind: str
    repeat: int
    fold: int
    seed: int
    train: np.ndarray
    test: np.ndarray
    source: int | None = None
    held_out: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise ValueError(f"Split.kind must be one of {SPLIT_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "train", _as_index_array(self.train, "train"))
        object.__setattr__(self, "test", _as_index_array(self.test, "test"))
        if np.intersect1d(self.train, self.test).size:
            raise ValueError("Split.train and Split.test share regions; they must be disjoint")
        object.__setattr__(self, "repeat", int(self.repeat))
        object.__setattr__(self, "fold", int(self.fold))
        object.__setattr__(self, "seed", int(self.seed))
        if self.source is not None:
            object.__setattr__(self, "source", int(self.source))
            if self.source not in set(self.test.tolist()):
                raise ValueError(f"Split.source {self.source} must be one of the test regions")

    @property
    def key(self) -> str:
        """Short unique id, e.g. ``"hcp-s100:spatial:seed0:r03:f2"``."""
        return f"{self.dataset}:{self.kind}:seed{self.seed}:r{self.repeat:02d}:f{self.fold}"

    @property
    def n_regions(self) -> int:
        return int(self.train.size + self.test.size)

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(i, j)`` of every unordered pair within the training regions, ``i < j``."""
        return pairs_within(self.train)

    def test_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(i, j)`` of every unordered pair within the test regions, ``i < j``."""
        return pairs_within(self.test)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "repeat": self.repeat,
            "fold": self.fold,
            "seed": self.seed,
            "source": self.source,
            "held_out": self.held_out,
            "train": self.train.tolist(),
            "test": self.test.tolist(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            (self.dataset, self.kind, self.repeat, self.fold, self.seed, self.source, self.held_out)
            == (other.dataset, other.kind, other.repeat, other.fold, other.seed, other.source, other.held_out)
            and np.array_equal(self.train, other.train)
            and np.array_equal(self.test, other.test)
        )

    def __hash__(self) -> int:
        return hash((self.key, self.train.tobytes(), self.test.tobytes()))

    def __repr__(self) -> str:
        return f"Split({self.key!r}, n_train={self.train.size}, n_test={self.test.size})"


# --------------------------------------------------------------------------- seeds
def repeat_rng(seed: int, repeat: int) -> np.random.Generator:
    """Generator for repeat ``repeat``: ``default_rng(SeedSequence(seed, spawn_key=(repeat,)))``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(repeat),)))


# ------------------------------------------------------------------ fold assignment
def _check_seed(seed: Any, where: str) -> int:
    """A seed as a plain non-negative int; anything else (1.5, None, "3", -1) is a ValueError."""
    try:
        value = operator.index(seed)
    except TypeError:
        raise ValueError(f"{where}: 'seed' must be a non-negative integer, got {seed!r}") from None
    if value < 0:
        raise ValueError(f"{where}: 'seed' must be a non-negative integer, got {seed!r}")
    return int(value)


def _check_counts(n_regions: int, n_folds: int, n_repeats: int) -> None:
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    if n_regions < 2 * n_folds:
        raise ValueError(
            f"{n_regions} regions are too few for {n_folds} folds: every test fold needs at "
            f"least 2 regions (one edge), so at least {2 * n_folds} regions are required"
        )


def _fold_sizes(n_regions: int, n_folds: int) -> list[int]:
    return [len(block) for block in np.array_split(np.arange(n_regions), n_folds)]


def random_folds(n_regions: int, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test sets of one random repeat: a permutation cut by `numpy.array_split`.

    Returns
    -------
    list of (n_f,) int64 arrays
        Sorted test regions of each fold; together a partition of ``range(n_regions)``.
    """
    order = rng.permutation(n_regions)
    return [np.sort(block).astype(np.int64) for block in np.array_split(order, n_folds)]


def spatial_folds(coords: np.ndarray, n_folds: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[int]]:
    """Test sets of one spatial repeat: nearest unassigned neighbourhoods of seeded sources.

    Parameters
    ----------
    coords : (n_regions, 3) float array
        Region centroids, mm (MNI).
    n_folds : int
    rng : numpy.random.Generator
        Draws the source region of each fold.

    Returns
    -------
    tests : list of (n_f,) int64 arrays
        Sorted test regions per fold; together a partition of ``range(n_regions)``.
    sources : list of int
        Source region of each fold.
    """
    coords = np.asarray(coords, dtype=np.float64)
    n_regions = coords.shape[0]
    unassigned = np.arange(n_regions)
    tests: list[np.ndarray] = []
    sources: list[int] = []
    for size in _fold_sizes(n_regions, n_folds):
        source = int(unassigned[rng.integers(unassigned.size)])
        dist = np.linalg.norm(coords[unassigned] - coords[source], axis=1)
        # stable sort on distance: equal distances keep ascending region order
        nearest = unassigned[np.argsort(dist, kind="stable")[:size]]
        tests.append(np.sort(nearest).astype(np.int64))
        sources.append(source)
        unassigned = np.setdiff1d(unassigned, nearest, assume_unique=True)
    return tests, sources


def _checked_coords(brain: Brain) -> np.ndarray:
    coords = brain.coords
    if not np.all(np.isfinite(coords)):
        bad = np.flatnonzero(~np.isfinite(coords).all(axis=1))
        raise ValueError(
            f"Brain {brain.name!r}: regions columns x, y, z must be finite MNI coordinates (mm) "
            f"for spatial splits; regions {brain.labels[bad][:5].tolist()} are not"
        )
    return coords


def network_labels(regions: pd.DataFrame, name: str = "") -> list[str]:
    """The network labels of a regions table in order of first appearance (the subcortex's
    included; `NO_NETWORK` values are not a system: such regions stay in every training set).

    Raises
    ------
    ValueError
        When the brain has no network assignment: no cortical region carries a label other
        than `NO_NETWORK` values, or fewer than two labels exist.
    """
    network = regions["network"].astype(str).to_numpy()
    cortical = network[regions["structure"].astype(str).to_numpy() == "cortex"]
    labels = [label for label in dict.fromkeys(network.tolist()) if label not in NO_NETWORK]
    if not np.any(~np.isin(cortical, NO_NETWORK)) or len(labels) < 2:
        raise ValueError(
            f"Brain {name!r}: network splits need a network label per region (regions column "
            f"'network', e.g. the Schaefer 7-network names); found {list(dict.fromkeys(network.tolist()))[:8]}"
        )
    single = [label for label in labels if np.sum(network == label) < 2]
    if single:
        raise ValueError(
            f"Brain {name!r}: regions column 'network': labels {single} have a single region, so holding one out "
            "leaves no test edge; merge them into a neighbouring label"
        )
    return labels


def _two_sides(regions: pd.DataFrame, column: str, values: tuple[str, str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Regions whose ``column`` is ``values[0]`` and ``values[1]``; each side needs 2 regions (one edge)."""
    labels = regions[column].astype(str).to_numpy()
    sides = tuple(np.flatnonzero(labels == v) for v in values)
    if min(side.size for side in sides) < 2:
        raise ValueError(
            f"Brain {name!r}: {column} splits need at least 2 regions with {column} {values[0]!r} and 2 with "
            f"{values[1]!r} (regions column {column!r}); found {sides[0].size} and {sides[1].size}"
        )
    return sides


def held_out_folds(brain: Brain | pd.DataFrame, kind: str, name: str = "") -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(train, test, what is held out) of each fold of a held-out-system protocol.

    ``brain`` may be a `Brain` or just its regions table (columns ``network``,
    ``hemisphere``, ``structure``); ``name`` labels errors for a table.

    Raises
    ------
    ValueError
        No network labels (``network``); a hemisphere or the subcortex with fewer than 2
        regions (no test edge), naming the brain and the field.
    """
    regions, name = (brain.regions, brain.name) if isinstance(brain, Brain) else (brain, name)
    everything = np.arange(len(regions))
    if kind == "network":
        network = regions["network"].astype(str).to_numpy()
        return [
            (everything[network != label], everything[network == label], label)
            for label in network_labels(regions, name)
        ]
    if kind == "hemisphere":
        left, right = _two_sides(regions, "hemisphere", ("L", "R"), name)
        return [(left, right, "L→R"), (right, left, "R→L")]
    if kind == "structure":
        cortex, subcortex = _two_sides(regions, "structure", ("cortex", "subcortex"), name)
        return [(cortex, subcortex, "cortex→subcortex")]
    raise ValueError(f"{kind!r} is not one of the held-out protocols {HELD_OUT_KINDS}")


def split_layout(brain: Brain, kind: str, n_repeats: int, n_folds: int) -> tuple[int, int]:
    """(repeats, folds) of protocol ``kind`` on ``brain``.

    ``random`` and ``spatial`` take ``(n_repeats, n_folds)`` as given; the held-out
    protocols have one repeat and as many folds as their layout (`held_out_folds`):
    ``network`` one per label, ``hemisphere`` 2, ``structure`` 1.
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"kind must be one of {SPLIT_KINDS}, got {kind!r}")
    if kind in HELD_OUT_KINDS:
        return 1, len(held_out_folds(brain, kind))
    return int(n_repeats), int(n_folds)


def make_splits(brain: Brain, kind: str, n_repeats: int = 10, n_folds: int = 4, seed: int = 0) -> list[Split]:
    """All splits of one protocol: ``n_repeats × n_folds`` `Split` objects (the held-out
    protocols: their fixed layout, `split_layout`, whatever ``n_repeats`` and ``n_folds``).

    A pure function of ``(brain.n_regions, brain.coords, kind, n_repeats, n_folds, seed)``
    (the held-out protocols: of the regions table's network, hemisphere and structure
    columns); ``brain.name`` is recorded as a label only.

    Parameters
    ----------
    brain : Brain
    kind : one of `SPLIT_KINDS`
    n_repeats : int
        Rounds of cross-validation (paper: 10).
    n_folds : int
        Folds per round (paper: 4, i.e. 25 % test regions).
    seed : int
        Master seed, a non-negative integer (``operator.index``: no floats, no None;
        else ``ValueError``); repeat ``k`` uses ``SeedSequence(seed, spawn_key=(k,))``.

    Returns
    -------
    list of Split
        Ordered by repeat, then fold.
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"kind must be one of {SPLIT_KINDS}, got {kind!r}")
    seed = _check_seed(seed, "make_splits")
    if kind in HELD_OUT_KINDS:
        return [
            Split(dataset=brain.name, kind=kind, repeat=0, fold=fold, seed=seed, train=train, test=test, held_out=what)
            for fold, (train, test, what) in enumerate(held_out_folds(brain, kind))
        ]
    n_regions = brain.n_regions
    _check_counts(n_regions, n_folds, n_repeats)
    coords = _checked_coords(brain) if kind == "spatial" else None
    all_regions = np.arange(n_regions)
    splits: list[Split] = []
    for repeat in range(int(n_repeats)):
        rng = repeat_rng(seed, repeat)
        if kind == "random":
            tests, sources = random_folds(n_regions, int(n_folds), rng), [None] * int(n_folds)
        else:
            tests, sources = spatial_folds(coords, int(n_folds), rng)
        for fold, (test, source) in enumerate(zip(tests, sources)):
            splits.append(
                Split(
                    dataset=brain.name,
                    kind=kind,
                    repeat=repeat,
                    fold=fold,
                    seed=int(seed),
                    train=np.setdiff1d(all_regions, test, assume_unique=True),
                    test=test,
                    source=source,
                )
            )
    return splits


# ------------------------------------------------------------------ inner validation
def inner_validation(
    brain: Brain, train: np.ndarray, kind: str, fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out validation regions from a training set, with the outer split's rule.

    ``n_val = max(2, round(fraction * n_train))`` validation regions are taken from
    ``train``: for ``kind="random"`` a uniformly random subset; for ``kind="spatial"`` and
    the held-out protocols (`HELD_OUT_KINDS`: their test set is a whole system, so the
    validation set is a contiguous block too) a spatial block, the ``n_val`` training
    regions nearest (Euclidean, mm; ties by index) to a source drawn uniformly among the
    training regions. Validation edges are the pairs
    within the validation regions; pairs between inner-train and validation regions are
    never used, as in the outer split.

    Parameters
    ----------
    brain : Brain
    train : (n_train,) int array
        Outer training regions.
    kind : one of `SPLIT_KINDS`
    fraction : float in (0, 1)
    seed : int
        Seed of the ``numpy.random.Generator`` drawing the subset or source; a
        non-negative integer (else ``ValueError``).

    Returns
    -------
    inner_train, val : sorted int64 arrays
        Disjoint, with union ``train``.
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"kind must be one of {SPLIT_KINDS}, got {kind!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    seed = _check_seed(seed, "inner_validation")
    train = np.unique(np.asarray(train, dtype=np.int64))
    if train.size and (train.min() < 0 or train.max() >= brain.n_regions):
        raise ValueError(f"train region indices must lie in 0..{brain.n_regions - 1}")
    n_val = max(2, int(round(fraction * train.size)))
    if train.size - n_val < 2:
        raise ValueError(
            f"{train.size} training regions cannot give {n_val} validation regions and keep "
            "at least 2 inner-training regions"
        )
    rng = np.random.default_rng(seed)
    if kind == "random":
        val = rng.choice(train, size=n_val, replace=False)
    else:
        coords = _checked_coords(brain)[train]
        source = int(rng.integers(train.size))
        dist = np.linalg.norm(coords - coords[source], axis=1)
        val = train[np.argsort(dist, kind="stable")[:n_val]]
    val = np.sort(val).astype(np.int64)
    return np.setdiff1d(train, val, assume_unique=True), val


# ---------------------------------------------------------------------- storage
_REQUIRED_FIELDS = ("dataset", "kind", "repeat", "fold", "seed", "train", "test")


def save_splits(splits: list[Split], path: str | Path) -> Path:
    """Write splits to ``path``; returns the path.

    A ``.npz`` suffix gives a NumPy archive (``train_<k>``, ``test_<k>`` int64 arrays and
    a JSON ``meta`` string with the other fields); any other suffix gives a JSON file with
    plain lists of region indices. `load_splits` reads either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [s.to_dict() for s in splits]
    if path.suffix == ".npz":
        meta = [{k: v for k, v in r.items() if k not in ("train", "test")} for r in records]
        arrays = {}
        for k, split in enumerate(splits):
            arrays[f"train_{k}"] = np.asarray(split.train, dtype=np.int64)
            arrays[f"test_{k}"] = np.asarray(split.test, dtype=np.int64)
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "splits": meta}
        with path.open("wb") as handle:  # a file handle keeps numpy from appending ".npz"
            np.savez(handle, meta=np.array(json.dumps(header)), **arrays)
        return path
    payload = {"format": _FORMAT, "version": _FORMAT_VERSION, "splits": records}
    path.write_text(json.dumps(payload, indent=1))
    return path


def _read_payload(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"
    if not is_zip:
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a JSON or npz splits file ({err})") from err
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "meta" not in archive.files:
                raise ValueError(f"{path}: npz splits file lacks the array 'meta'")
            payload = json.loads(str(archive["meta"]))
            records = payload.get("splits") if isinstance(payload, dict) else None
            if isinstance(records, list):
                for k, record in enumerate(records):
                    for field in ("train", "test"):
                        name = f"{field}_{k}"
                        if name not in archive.files:
                            raise ValueError(f"{path}: npz splits file lacks the array {name!r}")
                        record[field] = archive[name]
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable npz splits file ({err})") from err
    return payload


def load_splits(path: str | Path, brain: Brain | None = None) -> list[Split]:
    """Read splits written by `save_splits` (JSON or npz); the result equals what was saved.

    With ``brain`` given, also check that every split partitions exactly its regions (a
    held-out split: that its regions are the brain's).
    A missing file is a ``ValueError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"splits file {path}: does not exist (expected a file written by save_splits)")
    payload = _read_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path}: field 'format' must be {_FORMAT!r}")
    if payload.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: field 'version' must be {_FORMAT_VERSION}, got {payload.get('version')!r}")
    records = payload.get("splits")
    if not isinstance(records, list):
        raise ValueError(f"{path}: field 'splits' must be a list")
    splits = []
    for k, record in enumerate(records):
        missing = [f for f in _REQUIRED_FIELDS if f not in record]
        if missing:
            raise ValueError(f"{path}: splits[{k}] lacks fields {missing}")
        try:
            splits.append(
                Split(
                    **{f: record[f] for f in _REQUIRED_FIELDS},
                    source=record.get("source"),
                    held_out=record.get("held_out"),
                )
            )
        except ValueError as err:
            raise ValueError(f"{path}: splits[{k}]: {err}") from err
    if brain is not None:
        for split in splits:
            largest = max(split.train.max(initial=-1), split.test.max(initial=-1))
            # a held-out split may leave regions out (midline, cerebellum), but never names one the brain lacks
            partial = split.kind in HELD_OUT_KINDS
            if (not partial and split.n_regions != brain.n_regions) or largest >= brain.n_regions:
                raise ValueError(
                    f"{path}: split {split.key} does not {'fit' if partial else 'partition'} the "
                    f"{brain.n_regions} regions of brain {brain.name!r}"
                )
    return splits
