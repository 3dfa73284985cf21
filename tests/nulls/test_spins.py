"""Spins and shuffles: identity with neuromaps, uniform rotations, bijections that respect
hemisphere, structure and bilateral symmetry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spatiomol.data.synthetic import make_synthetic_brain
from spatiomol.nulls import class_permutations, spins
from spatiomol.nulls.draw import draw_nulls
from spatiomol.nulls.select import generate_nulls

F = np.diag([-1.0, 1.0, 1.0])


# ------------------------------------------------------------ identity with neuromaps
def test_vasa_assignment_and_cost_identical_to_neuromaps_on_hcp_s100_cortex(
    atlas_s100_cortex, neuromaps_with_rotations
):
    coords, hemisphere = atlas_s100_cortex
    sphere = spins.sphere_coordinates(coords, hemisphere)
    left, right = spins.random_rotations(300, np.random.default_rng(2024))
    reference, reference_cost = neuromaps_with_rotations(sphere, (hemisphere == "R").astype(int), left, right)

    assignment = np.empty((300, len(coords)), dtype=np.int64)
    cost = np.empty((300, len(coords)))
    for h, rotations in (("L", left), ("R", right)):
        idx = np.flatnonzero(hemisphere == h)
        source, region_cost = spins.vasa_assignment(sphere[idx], np.matmul(sphere[idx][None], rotations))
        assignment[:, idx] = idx[source]
        cost[:, idx] = region_cost
    np.testing.assert_array_equal(assignment, reference.T)
    np.testing.assert_array_equal(cost, reference_cost.T)  # bit-identical, not just close


def test_spin_plan_of_loaded_hcp_s100_matches_neuromaps(hcp_s100, neuromaps_with_rotations):
    brain = hcp_s100
    plan = spins.plan_spins(brain, 40, np.random.default_rng(5))
    cortex = np.concatenate([plan.groups.cortex_left, plan.groups.cortex_right])
    assert cortex.size == 100 and set(brain.structure[cortex]) == {"cortex"}
    perms, total_cost = spins.spin_batch(plan, np.arange(40), brain.n_regions)
    reference, reference_cost = neuromaps_with_rotations(
        plan.sphere[cortex],
        (brain.hemisphere[cortex] == "R").astype(int),
        plan.rotations_left,
        plan.rotations_right,
    )
    np.testing.assert_array_equal(perms[:, cortex], cortex[reference.T])
    np.testing.assert_allclose(total_cost, reference_cost.sum(axis=0), rtol=1e-13)


def test_tie_rules_on_duplicate_coordinates_match_neuromaps(neuromaps_with_rotations):
    # neuromaps' own docstring example: duplicated points make argmin/argmax ties
    coords = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    hemiid = np.array([0, 0, 1, 1])
    left, right = spins.random_rotations(50, np.random.default_rng(0))
    reference, reference_cost = neuromaps_with_rotations(coords, hemiid, left, right)
    for h, rotations in ((0, left), (1, right)):
        idx = np.flatnonzero(hemiid == h)
        source, cost = spins.vasa_assignment(coords[idx], np.matmul(coords[idx][None], rotations))
        np.testing.assert_array_equal(idx[source], reference[idx].T)
        np.testing.assert_array_equal(cost, reference_cost[idx].T)
    # identity rotation: every point has two equidistant candidates; the first index wins
    source, cost = spins.vasa_assignment(coords[:2], coords[None, :2])
    np.testing.assert_array_equal(source, [[0, 1]])
    np.testing.assert_array_equal(cost, [[0.0, 0.0]])


def test_hand_worked_vasa_assignment():
    # a quarter turn about z moves e_x to e_y and e_y to -e_x on a 4-point circle
    circle = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], dtype=float)
    quarter = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], dtype=float)  # row vectors: x @ R
    source, cost = spins.vasa_assignment(circle, (circle @ quarter)[None])
    # region i receives the data of the region rotated onto it: i - 1 (mod 4)
    np.testing.assert_array_equal(source, [[3, 0, 1, 2]])
    np.testing.assert_allclose(cost, 0.0, atol=1e-15)


@pytest.mark.parametrize("assignment", spins.ASSIGNMENTS)
def test_spin_nulls_do_not_depend_on_the_number_of_threads(hcp_s100, assignment):
    # every rotation is drawn up front, and each thread assigns whole spins in the same arithmetic
    plan = spins.plan_spins(hcp_s100, 37, np.random.default_rng(11), assignment=assignment)
    rows = np.arange(37)
    perms, cost = spins.spin_batch(plan, rows, hcp_s100.n_regions, n_jobs=1)
    for n_jobs in (2, 3):
        other_perms, other_cost = spins.spin_batch(plan, rows, hcp_s100.n_regions, n_jobs=n_jobs)
        np.testing.assert_array_equal(other_perms, perms)
        np.testing.assert_array_equal(other_cost, cost)
    # nor on the batch a spin is assigned in
    alone = [spins.spin_batch(plan, np.array([k]), hcp_s100.n_regions, n_jobs=1)[0][0] for k in (0, 20, 36)]
    np.testing.assert_array_equal(alone, perms[[0, 20, 36]])
    method = "hungarian" if assignment == "hungarian" else "cge"
    one = draw_nulls(hcp_s100, 24, 4, method, subcortex="shuffle", n_jobs=1)
    two = draw_nulls(hcp_s100, 24, 4, method, subcortex="shuffle", n_jobs=2, batch_size=10)
    np.testing.assert_array_equal(two.permutations, one.permutations)
    np.testing.assert_array_equal(two.costs, one.costs)


# --------------------------------------------------------------------- rotations
def test_rotation_recipe_matches_neuromaps_gen_rotation():
    from neuromaps.nulls.spins import _gen_rotation

    state = np.random.RandomState(11)
    expected = [_gen_rotation(seed=state) for _ in range(20)]
    state = np.random.RandomState(11)
    gaussians = np.stack([state.normal(size=(3, 3)) for _ in range(20)])
    left = spins.rotations_from_gaussians(gaussians)
    np.testing.assert_allclose(left, [e[0] for e in expected], rtol=0, atol=1e-15)
    np.testing.assert_allclose(F @ left @ F, [e[1] for e in expected], rtol=0, atol=1e-15)


def test_rotations_are_uniform_on_so3_and_mirrored():
    left, right = spins.random_rotations(4000, np.random.default_rng(1))
    np.testing.assert_allclose(left @ np.swapaxes(left, 1, 2), np.broadcast_to(np.eye(3), left.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(left), 1.0, atol=1e-12)
    np.testing.assert_array_equal(right, F @ left @ F)
    # Haar measure: rotation angle θ has CDF (θ − sin θ) / π on [0, π]
    angle = np.arccos(np.clip((np.trace(left, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0))
    assert stats.kstest(angle, lambda t: (t - np.sin(t)) / np.pi).pvalue > 0.01
    # and the rotated north pole is uniform on the sphere: its z is uniform on [-1, 1]
    assert stats.kstest(left[:, 2, 2], stats.uniform(-1, 2).cdf).pvalue > 0.01


def test_sphere_coordinates_centre_each_hemisphere(atlas_s100_cortex):
    coords, hemisphere = atlas_s100_cortex
    sphere = spins.sphere_coordinates(coords, hemisphere)
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1.0, rtol=1e-15)
    for h in "LR":
        idx = hemisphere == h
        centred = coords[idx] - coords[idx].mean(axis=0)
        np.testing.assert_allclose(sphere[idx], centred / np.linalg.norm(centred, axis=1, keepdims=True))
    with pytest.raises(ValueError, match="coincides"):
        spins.sphere_coordinates(np.array([[1.0, 2.0, 3.0]]), np.array(["L"]))


# ----------------------------------------------------------------- homologues
def test_homologous_pairs_by_label_and_by_mirrored_coordinates():
    labels = np.array(["Lthal", "LH-Pu", "Left-Caudate", "blobA", "Rthal", "RH-Pu", "Right-Caudate", "blobB"])
    coords = np.array(
        [
            [-10, -20, 5],
            [-25, 0, 0],
            [-14, 6, 9],
            [-30, -50, -30],
            [11, -19, 5],
            [26, 2, 0],
            [15, 7, 9],
            [31, -52, -29],
        ],
        dtype=float,
    )
    pairs, methods, rest_left, rest_right = spins.homologous_pairs(labels, coords, np.arange(4), np.arange(4, 8))
    assert pairs.tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert methods.tolist() == ["label", "label", "label", "coordinates"]
    assert rest_left.size == 0 and rest_right.size == 0


def test_coordinate_pairing_is_the_optimal_mirrored_matching():
    rng = np.random.default_rng(3)
    left = rng.uniform(-40, -5, size=(5, 3)) * [1, 1, 1]
    right = left * [-1, 1, 1] + rng.normal(0, 1.5, size=(5, 3))
    order = rng.permutation(5)
    coords = np.vstack([left, right[order], [[20.0, -60, -40]]])  # one extra right region
    labels = np.array([f"nuc{k}" for k in range(11)])  # no hemisphere marker: coordinates decide
    pairs, methods, rest_left, rest_right = spins.homologous_pairs(labels, coords, np.arange(5), np.arange(5, 11))
    # brute force over all assignments of the 5 left regions to 5 of the 6 right ones
    from itertools import permutations

    mirrored = coords[:5] * [-1, 1, 1]
    best = min(
        permutations(range(5, 11), 5),
        key=lambda rs: sum(np.linalg.norm(mirrored[k] - coords[r]) for k, r in enumerate(rs)),
    )
    assert pairs.tolist() == [[k, r] for k, r in enumerate(best)]
    assert set(methods) == {"coordinates"}
    assert rest_left.size == 0 and rest_right.tolist() == [10]


def test_enigma_subcortex_of_hcp_s100_pairs_by_label(hcp_s100):
    groups = spins.region_groups(hcp_s100)
    labels = hcp_s100.labels
    assert len(groups.symmetric_pairs) == 1
    pairs = groups.symmetric_pairs[0]
    assert len(pairs) == 7 and groups.unpaired == []
    for a, b in pairs:  # ENIGMA labels: "Lthal" <-> "Rthal"
        assert labels[a][0] == "L" and labels[b][0] == "R" and labels[a][1:] == labels[b][1:]
    assert set(groups.pairing_methods[0]) == {"label"}


# ------------------------------------------------------------------- properties
def _check_permutation_properties(brain, perms, symmetric_pairs, respect_hemisphere=True):
    r = brain.n_regions
    hemi, struct = brain.hemisphere, brain.structure
    for p in perms:
        assert np.array_equal(np.sort(p), np.arange(r))  # bijection
        assert np.array_equal(struct[p], struct)  # never across structure classes
        if respect_hemisphere:
            assert np.array_equal(hemi[p], hemi)
    for pairs in symmetric_pairs:
        slot_of = {int(a): s for s, a in enumerate(pairs[:, 0])} | {int(b): s for s, b in enumerate(pairs[:, 1])}
        for p in perms:
            # the same slot permutation on both hemispheres
            assert [slot_of[int(p[a])] for a in pairs[:, 0]] == [slot_of[int(p[b])] for b in pairs[:, 1]]
            assert set(p[pairs[:, 0]]) == set(pairs[:, 0].tolist())


@settings(max_examples=12, deadline=None)
@given(
    n_regions=st.integers(8, 40).map(lambda k: 2 * (k // 2)),
    subcortical_fraction=st.sampled_from([0.0, 0.2, 0.4]),
    seed=st.integers(0, 10_000),
)
def test_spin_nulls_are_bijections_within_hemisphere_and_structure(n_regions, subcortical_fraction, seed):
    brain = make_synthetic_brain(n_regions, 12, subcortical_fraction=subcortical_fraction, seed=seed)
    plan = spins.plan_spins(brain, 25, np.random.default_rng(seed))
    perms, cost = spins.spin_batch(plan, np.arange(25), brain.n_regions)
    _check_permutation_properties(brain, perms, plan.groups.symmetric_pairs)
    assert np.all(cost >= 0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n_midline=st.integers(0, 3))
def test_unpaired_and_midline_regions_shuffle_within_their_own_group(seed, n_midline):
    brain = make_synthetic_brain(24, 10, subcortical_fraction=0.3, seed=seed)
    regions = brain.regions.copy()
    sub = np.flatnonzero(regions["structure"] == "subcortex")
    # make a cerebellum class: some midline (B) regions and one unmatched left region
    regions.loc[sub[:n_midline], "hemisphere"] = "B"
    regions.loc[sub[:n_midline], "structure"] = "cerebellum"
    regions.loc[sub[n_midline], "structure"] = "cerebellum"
    brain = brain.replace(regions=regions)
    plan = spins.plan_spins(brain, 30, np.random.default_rng(seed))
    perms, _ = spins.spin_batch(plan, np.arange(30), brain.n_regions)
    _check_permutation_properties(brain, perms, plan.groups.symmetric_pairs)


def test_random_nulls_are_bijections_within_structure_only():
    brain = make_synthetic_brain(40, 10, subcortical_fraction=0.2, seed=4)
    plan = class_permutations.plan_random(brain, 200, np.random.default_rng(0))
    perms, cost = class_permutations.random_batch(plan, np.arange(200), brain.n_regions)
    _check_permutation_properties(brain, perms, [], respect_hemisphere=False)
    crossed = (brain.hemisphere[perms] != brain.hemisphere).any(axis=1)
    assert crossed.mean() > 0.9  # naive nulls do mix hemispheres
    cortex = brain.structure == "cortex"
    expected = np.linalg.norm(brain.coords[perms[:, cortex]] - brain.coords[cortex], axis=2).sum(axis=1)
    np.testing.assert_allclose(cost, expected)


def test_generated_nulls_keep_hemisphere_and_structure_on_real_data(hcp_s100):
    nulls = generate_nulls(hcp_s100, n=300, top=20, seed=9, subcortex="shuffle")
    groups = spins.region_groups(hcp_s100)
    _check_permutation_properties(
        hcp_s100, np.vstack([nulls.permutations, nulls.worst_permutation]), groups.symmetric_pairs
    )


def test_nearest_search_on_squares_breaks_root_ties_like_numpy_argmin():
    """Distinct squared distances can share a square root; numpy's argmin on the roots then
    picks the earlier column, and so must the squared-distance search of the kernel."""
    from spatiomol.nulls import _kernels

    rng = np.random.default_rng(0)
    for trial in range(200):
        row = rng.uniform(0.5, 4.0, size=8)
        low = rng.uniform(0.01, 0.4)
        high = np.nextafter(low, np.inf)
        while np.sqrt(high) != np.sqrt(low):  # adjacent doubles sharing a root
            low = rng.uniform(0.01, 0.4)
            high = np.nextafter(low, np.inf)
        first, second = sorted(rng.choice(8, 2, replace=False))
        # the larger square first: numpy's argmin of the roots picks it (equal roots)
        row[first], row[second] = (high, low) if trial % 2 == 0 else (low, high)
        roots = np.sqrt(row)
        assert np.argmin(roots) == first and row[first] != row[second]
        best, root = _kernels._nearest(row[None].copy(), 0)
        assert best == first and root == roots.min()
