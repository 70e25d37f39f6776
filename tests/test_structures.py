"""Structures, spglib and supercells (crystal_course.structures)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk

from crystal_course import structures
from crystal_course.structures import (
    PROTOTYPES,
    nearest_neighbour_distance,
    reference_structure,
    space_group,
    spglib_cell,
    standard_conventional_cell,
    supercell,
)


def test_spglib_gets_a_tuple_not_atoms():
    atoms = bulk("Cu")
    cell, scaled, numbers = spglib_cell(atoms)
    assert cell.shape == (3, 3) and scaled.shape == (1, 3) and numbers.tolist() == [29]
    # The reason for the tuple: spglib 2.x gives no dataset for an ase.Atoms
    # (it returns None under its old error handling, raises under the new one).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's old-mode notice
        try:
            result = spglib.get_symmetry_dataset(atoms)
        except Exception:  # noqa: BLE001 - any failure proves the point
            result = None
    assert result is None
    assert space_group(atoms) == 225


@pytest.mark.parametrize("proto", PROTOTYPES, ids=lambda p: str(p.space_group))
def test_each_prototype_round_trips_through_spglib(proto):
    atoms = reference_structure(proto.space_group)
    assert space_group(atoms) == proto.space_group
    assert space_group(atoms, symprec=0.1) == proto.space_group
    assert 200 <= len(atoms) <= 320
    assert space_group(bulk(proto.example)) == proto.space_group


def test_standard_orientation_puts_cubic_axes_on_x_y_z():
    primitive = bulk("Fe")  # bcc primitive cell, oblique
    conventional = standard_conventional_cell(primitive)
    assert len(conventional) == 2
    np.testing.assert_allclose(np.array(conventional.cell), 2.87 * np.eye(3), atol=0.02)
    hexagonal = standard_conventional_cell(bulk("Bi"))  # rhombohedral, hexagonal setting
    assert len(hexagonal) == 6
    np.testing.assert_allclose(hexagonal.cell[2, :2], 0, atol=1e-8)  # c along z
    np.testing.assert_allclose(hexagonal.cell[0, 1:], 0, atol=1e-8)  # a along x


def test_supercell_is_compact_and_near_the_target():
    for cell in (standard_conventional_cell(bulk("Mg")), bulk("Cu", cubic=True)):
        big = supercell(cell, 250)
        assert 150 <= len(big) <= 350
        # Equally thick along each axis: thickness = volume / area of the opposite face.
        c = np.array(big.cell)
        faces = [np.linalg.norm(np.cross(c[(k + 1) % 3], c[(k + 2) % 3])) for k in range(3)]
        thickness = abs(np.linalg.det(c)) / np.array(faces)
        assert thickness.max() / thickness.min() < 1.3, thickness
    assert len(supercell(bulk("Cu", cubic=True), 4)) == 4


def test_nearest_neighbour_distance_of_known_lattices():
    assert nearest_neighbour_distance(bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)) == (
        pytest.approx(3.6 / np.sqrt(2))
    )
    assert nearest_neighbour_distance(bulk("Fe", "bcc", a=2.87, cubic=True).repeat(3)) == (
        pytest.approx(2.87 * np.sqrt(3) / 2)
    )


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda: reference_structure(230), ValueError, "space_group_number"),
        (lambda: supercell(bulk("Cu"), 0), ValueError, "n_atoms"),
        (lambda: supercell(bulk("Cu"), 2.5), ValueError, "n_atoms"),
        (lambda: space_group(Atoms("Cu2", positions=[[0, 0, 0], [1, 0, 0]])), ValueError, "cell"),
        (lambda: space_group("Cu"), TypeError, "ase.Atoms"),
        (lambda: nearest_neighbour_distance(Atoms("Cu")), ValueError, "at least 2"),
    ],
)
def test_bad_input_gets_clear_errors(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_prototypes_are_the_eight_space_groups_of_the_paper():
    assert [p.space_group for p in PROTOTYPES] == [139, 141, 166, 194, 221, 225, 227, 229]
    assert structures.MAX_Z == 98


# ---------------------------------------------------------------------------
# Building, rotating and damaging structures (Chapter 2)
# ---------------------------------------------------------------------------

from crystal_course.diffraction import fingerprint  # noqa: E402
from crystal_course.structures import (  # noqa: E402
    CLASSES,
    CLASSES_8,
    add_displacements,
    add_vacancies,
    build_prototype,
    class_index,
    prototype,
    random_rotation,
    sample_structure,
    variants,
)


@pytest.mark.parametrize("proto", PROTOTYPES, ids=lambda p: str(p.space_group))
def test_built_prototypes_have_their_space_group_for_sampled_shapes(proto):
    rng = np.random.default_rng(proto.space_group)
    for _ in range(5):
        atoms = build_prototype(proto.space_group, "Cu", rng)
        assert space_group(atoms) == proto.space_group == atoms.info["space_group"]
        nn = 2 * 1.32  # twice copper's covalent radius
        assert nearest_neighbour_distance(atoms.repeat(3)) == pytest.approx(nn, rel=0.1)
        kind = next(k for k in variants(proto) if k.name == atoms.info["variant"])
        if proto.c_over_a or proto.variants:
            assert kind.c_over_a[0] <= atoms.info["c_over_a"] <= kind.c_over_a[1]
            assert min(abs(atoms.info["c_over_a"] - c) for c in kind.collapse or [99]) > 0.05
        if kind.u:
            assert kind.u[0] <= atoms.info["u"] <= kind.u[1]


def _experimental_shape(element: str) -> tuple[float, float | None]:
    """c/a (hexagonal setting for rhombohedral) and u of an element's ASE reference state."""
    from ase.data import atomic_numbers, reference_states

    state = reference_states[atomic_numbers[element]]
    if state["symmetry"] == "rhombohedral":
        alpha = np.radians(state["alpha"])
        ratio = np.sqrt(3 * (1 + 2 * np.cos(alpha))) / (2 * np.sin(alpha / 2))
        u = float(np.max(np.abs(state["basis_x"])))  # (x, x, x) is (0, 0, x) in hexagonal axes
        return float(ratio), (u if u > 0 else None)
    return float(state["c/a"]), None


@pytest.mark.parametrize(
    "space_group, elements",
    [
        (139, ["In"]),
        (141, ["Sn"]),
        (166, ["As", "Sb", "Bi", "Hg"]),
        (194, ["Be", "Mg", "Zn", "Cd"]),
    ],
)
def test_sampled_ranges_contain_the_experimental_structures(space_group, elements):
    """Every non-cubic range holds its examples' measured c/a (and u for A7)."""
    kinds = variants(prototype(space_group))
    for element in elements:
        ratio, u = _experimental_shape(element)
        inside = [
            k
            for k in kinds
            if k.c_over_a[0] <= ratio <= k.c_over_a[1]
            and (u is None) == (k.u is None)
            and (u is None or k.u[0] <= u <= k.u[1])
        ]
        assert inside, f"{element}: c/a {ratio:.3f}, u {u} outside {kinds}"
    assert {k.example for k in kinds} <= set(elements) | {prototype(space_group).example}


def test_space_group_166_samples_both_elemental_structure_types():
    rng = np.random.default_rng(3)
    built = [build_prototype(166, "Sb", rng) for _ in range(20)]
    kinds = {a.info["variant"] for a in built}
    assert kinds == {"A7 (alpha-As)", "A10 (alpha-Hg)"}
    assert {len(a) for a in built if a.info["variant"].startswith("A7")} == {6}  # 2 per rh. cell
    assert {len(a) for a in built if a.info["variant"].startswith("A10")} == {3}
    assert build_prototype(166, "Bi", variant="A7").info["u"] == pytest.approx(0.232)
    with pytest.raises(ValueError, match="A7 .alpha-As., A10"):
        build_prototype(166, "Bi", variant="A9")


def test_collapse_values_are_refused_but_near_ones_allowed():
    with pytest.raises(ValueError, match="collapses"):
        build_prototype(139, c_over_a=1.0)
    with pytest.raises(ValueError, match="collapses"):
        build_prototype(166, c_over_a=np.sqrt(6), variant="A10")
    near = build_prototype(139, c_over_a=1.02)  # a slightly distorted bcc
    assert space_group(near, symprec=1e-3) == 139
    assert space_group(near, symprec=0.1) == 229  # a loose tolerance sees bcc


def test_rotation_then_standardisation_restores_the_canonical_orientation():
    rng = np.random.default_rng(0)
    cell = build_prototype(194, "Mg", rng)
    rotated = random_rotation(cell, rng)
    assert not np.allclose(np.array(rotated.cell), np.array(cell.cell))
    np.testing.assert_allclose(
        np.sort(np.linalg.norm(rotated.positions[:, None] - rotated.positions[None], axis=-1)),
        np.sort(np.linalg.norm(cell.positions[:, None] - cell.positions[None], axis=-1)),
        atol=1e-10,
    )
    a = supercell(standard_conventional_cell(rotated), 120)
    b = supercell(standard_conventional_cell(cell), 120)
    np.testing.assert_allclose(fingerprint(a), fingerprint(b), atol=1e-5)


def test_a_finite_cluster_turns_too():
    cluster = supercell(build_prototype(225, "Al"), 32)
    cluster.set_cell(np.zeros((3, 3)))
    cluster.pbc = False
    turned = random_rotation(cluster, 4)
    assert np.abs(turned.positions - cluster.positions).max() > 1.0  # it moved
    np.testing.assert_allclose(np.linalg.norm(turned.positions, axis=1),
                               np.linalg.norm(cluster.positions, axis=1), atol=1e-10)  # fmt: skip


def test_vacancies_remove_the_right_number_of_existing_atoms():
    atoms = supercell(build_prototype(225, "Al"), 256)
    damaged = add_vacancies(atoms, 0.25, np.random.default_rng(1))
    assert len(damaged) == len(atoms) - int(len(atoms) * 0.25)
    kept = {tuple(np.round(p, 8)) for p in damaged.positions}
    assert kept <= {tuple(np.round(p, 8)) for p in atoms.positions}
    again = add_vacancies(atoms, 0.25, np.random.default_rng(1))
    np.testing.assert_array_equal(again.positions, damaged.positions)
    assert len(add_vacancies(atoms, 0.0, 1)) == len(atoms)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            add_vacancies(atoms, bad, 1)


def test_displacements_have_sigma_times_nn_per_axis():
    atoms = supercell(build_prototype(229, "Fe"), 2000)
    nn = nearest_neighbour_distance(atoms)
    moved = add_displacements(atoms, 0.05, np.random.default_rng(2))
    step = moved.positions - atoms.positions
    assert step.std(axis=0) == pytest.approx([0.05 * nn] * 3, rel=0.1)
    np.testing.assert_array_equal(add_displacements(atoms, 0.0, 2).positions, atoms.positions)
    with pytest.raises(ValueError, match="sigma"):
        add_displacements(atoms, -0.01, 2)


def test_sample_structure_runs_the_pipeline_in_order():
    atoms = sample_structure(225, 7, vacancies=0.1, displacements=0.01)
    assert atoms.info["space_group"] == 225 and atoms.info["element"] in structures.ELEMENTS
    assert 200 <= len(atoms) / 0.9 <= 320
    # Defects come after standardisation: the cell is the canonical cubic one.
    cell = np.array(atoms.cell)
    np.testing.assert_allclose(cell - np.diag(np.diag(cell)), 0, atol=1e-8)
    same = sample_structure(225, 7, vacancies=0.1, displacements=0.01)
    np.testing.assert_array_equal(same.positions, atoms.positions)


def test_class_labels():
    assert len(CLASSES) == 7 and len(CLASSES_8) == 8
    assert class_index(166) == class_index(194) == 2
    assert [class_index(p.space_group, merged=False) for p in PROTOTYPES] == list(range(8))
    with pytest.raises(ValueError, match="space_group_number"):
        class_index(1)
    with pytest.raises(ValueError, match="unknown prototype"):
        build_prototype(1)
    with pytest.raises(ValueError, match="element"):
        build_prototype(225, "Xx")
    with pytest.raises(TypeError, match="rng"):
        random_rotation(bulk("Cu"), "seed")


def test_identification_rates_on_pristine_and_damaged_structures():
    from crystal_course.structures import identification_rates

    rng = np.random.default_rng(5)
    pristine = [sample_structure(g, rng, n_atoms=60) for g in (225, 194)]
    rates = identification_rates(pristine, "vacancies", [0.0, 0.3], n_jobs=1, progress=False)
    assert rates.shape == (2, 2)
    np.testing.assert_array_equal(rates[:, 0], 1.0)  # nothing removed: always right
    np.testing.assert_array_equal(rates[:, 1], 0.0)  # 30 % removed: never
    again = identification_rates(pristine, "displacements", [0.0, 0.002], n_jobs=2, progress=False)
    assert again[1, 1] >= again[0, 1]  # the loose tolerance forgives at least as much
    with pytest.raises(ValueError, match="defect"):
        identification_rates(pristine, "strain", [0.1], progress=False)
    with pytest.raises(ValueError, match="space_group"):
        identification_rates([bulk("Cu")], "vacancies", [0.1], progress=False)


def test_sample_classes_is_balanced_deterministic_and_can_skip_standardisation():
    from crystal_course.structures import CLASSES_8, class_index, sample_classes

    first, labels = sample_classes(2, seed=1, n_atoms=40)
    again, _ = sample_classes(2, seed=1, n_atoms=40)
    assert np.bincount(labels).tolist() == [2] * 7
    assert all(class_index(a.info["space_group"]) == y for a, y in zip(first, labels, strict=True))
    groups = [a.info["space_group"] for a, y in zip(first, labels, strict=True) if y == 2]
    assert sorted(groups) == [166, 194]  # the merged class alternates its groups
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    turned, _ = sample_classes(2, seed=1, n_atoms=40, standardise=False)
    for a, b in zip(first, turned, strict=True):  # same crystals, different orientation
        assert a.info["element"] == b.info["element"]
        assert a.info["c_over_a"] == b.info["c_over_a"]
    fcc = [a for a, y in zip(first, labels, strict=True) if y == class_index(225)][0]
    fcc_turned = [a for a, y in zip(turned, labels, strict=True) if y == class_index(225)][0]
    # Standardised cubic cells have their axes on x, y, z; the turned one does not.
    np.testing.assert_allclose(fcc.cell.array, np.diag(np.diag(fcc.cell.array)), atol=1e-8)
    assert np.abs(fcc_turned.cell.array - np.diag(np.diag(fcc_turned.cell.array))).max() > 0.1
    _, eight = sample_classes(1, seed=0, merged=False, n_atoms=40)
    assert len(eight) == len(CLASSES_8)
    with pytest.raises(ValueError, match="n_per_class"):
        sample_classes(0)


def test_damage_copies_and_keeps_the_label():
    from crystal_course.structures import damage, damage_seed

    pristine = sample_structure(225, 0, n_atoms=100)
    holes = damage(pristine, "vacancies", 0.25, damage_seed(0, 1, 2))
    again = damage(pristine, "vacancies", 0.25, damage_seed(0, 1, 2))
    assert len(holes) == len(pristine) - int(0.25 * len(pristine))
    np.testing.assert_array_equal(holes.positions, again.positions)
    assert holes.info["space_group"] == 225 and len(pristine) >= 100
    shaken = damage(pristine, "displacements", 0.02, 0)
    assert len(shaken) == len(pristine) and not np.allclose(shaken.positions, pristine.positions)
    with pytest.raises(ValueError, match="defect"):
        damage(pristine, "strain", 0.1, 0)


def test_real_elements_cover_every_class_with_measured_structures():
    from crystal_course.structures import class_index, real_element_crystal, real_elements

    found = real_elements()
    assert {class_index(g) for g in found.values()} == set(range(7))
    # Elemental R-3m: the A7 semimetals and A10 mercury; In and Sn are the bct examples.
    assert {found[e] for e in ("As", "Sb", "Bi", "Hg")} == {166}
    assert (found["In"], found["Sn"], found["Po"], found["Cu"]) == (139, 141, 221, 225)
    holed = real_element_crystal("Bi", 0, vacancies=0.25)
    assert holed.info["space_group"] == 166 and holed.info["vacancies"] == 0.25
    assert 150 <= len(holed) <= 260
    with pytest.raises(ValueError, match="one of the"):
        real_element_crystal("U")


# Every entry point that hands a tolerance to spglib, called with a bad one. spglib itself
# segfaults on a negative or NaN tolerance and hangs on 0, so the probes run in a child
# process: a crash fails this test instead of killing pytest.
_BAD_TOLERANCE_PROBES = """
import math, sys
import numpy as np
from crystal_course import evaluation, models, structures
atoms = structures.reference_structure(225, n_atoms=32)
atoms.info["space_group"] = 225
calls = {
    "space_group": lambda s: structures.space_group(atoms, symprec=s),
    "standard_conventional_cell": lambda s: structures.standard_conventional_cell(atoms, s),
    "spglib_class": lambda s: structures.spglib_class(atoms, s),
    "practitioner_view": lambda s: structures.practitioner_view(atoms, 0, s),
    "identified": lambda s: structures.identified(atoms, 225, (1e-3, s)),
    "identification_rates": lambda s: structures.identification_rates(
        [atoms], "vacancies", [0.1], symprecs=(s,), n_jobs=1, progress=False),
    "predict_structures": lambda s: models.predict_structures([atoms], model=None, symprec=s),
    "practical_sweep": lambda s: evaluation.practical_sweep([atoms], "vacancies", [0.1], {}, s),
}
for bad in (-1, 0, 0.0, -0.0, math.nan, math.inf, np.float64("nan"), "0.1", None, True):
    for name, call in calls.items():
        try:
            call(bad)
        except (ValueError, TypeError) as error:
            assert "symprec" in str(error), (name, bad, str(error))
        else:
            raise AssertionError(f"{name} accepted symprec={bad!r}")
print("all refused")
"""


def test_every_bad_tolerance_is_refused_before_spglib_sees_it():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _BAD_TOLERANCE_PROBES], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "all refused" in result.stdout


@pytest.mark.parametrize("good", [0.1, np.float32(0.1), np.float64(1e-3), 1])
def test_a_tolerance_of_any_real_type_is_accepted(good):
    assert structures.check_symprec(good) == pytest.approx(float(good))
    assert space_group(bulk("Cu", cubic=True), symprec=good) == 225


def test_one_limit_on_atoms_wherever_a_structure_or_a_size_enters():
    from crystal_course import dataset, diffraction, models, zone_axis

    limit = structures.MAX_ATOMS
    too_many = f"more than the {limit}"
    with pytest.raises(ValueError, match=too_many):
        structures.sample_structure(225, 0, n_atoms=10**7)
    with pytest.raises(ValueError, match=too_many):
        structures.supercell(bulk("Cu"), limit + 1)
    with pytest.raises(ValueError, match=too_many):
        models.predict_structures([bulk("Cu")], n_atoms=limit + 1)
    with pytest.raises(ValueError, match=too_many):
        dataset.DatasetConfig(1, 1, n_atoms=limit + 1)
    with pytest.raises(ValueError, match=too_many):
        zone_axis.Config((221, 229), 1, 1, n_atoms=limit + 1)
    with pytest.raises(ValueError, match=too_many):
        zone_axis.spherical_cluster(bulk("Cu", cubic=True), limit + 1)
    huge = Atoms(
        "Cu" * (limit + 1), positions=np.zeros((limit + 1, 3)) + np.arange(limit + 1)[:, None]
    )
    with pytest.raises(ValueError, match=f"has {limit + 1} atoms, {too_many}"):
        diffraction.fingerprint(huge)
    with pytest.raises(ValueError, match="positive integer"):
        structures.check_n_atoms(0)


def test_misalignment_measures_the_angle_to_the_nearest_low_index_direction():
    cubic = np.eye(3) * 4.0
    np.testing.assert_allclose(structures.misalignment([[1, 1, 0], [0, 0, 5]], cubic), 0,
                               atol=1e-5)  # fmt: skip
    # [3, 1, 0] is 8.1 degrees from [2, 1, 0] and farther from every other direction.
    expected = np.degrees(np.arccos(7 / np.sqrt(10 * 5)))
    np.testing.assert_allclose(structures.misalignment([[3, 1, 0]], cubic), expected)
    with pytest.raises(ValueError, match="lattice"):
        structures.misalignment([[1, 0, 0]], np.eye(2))


def test_skewed_supercell_has_no_low_index_edge_nor_reduced_edge():
    import spglib

    for group in (225, 227, 194, 141):
        cell = structures.build_prototype(group, "Cu", 0)
        box = structures.skewed_supercell(cell, 250, rng=1)
        conventional = np.array(box.info["conventional_cell"])
        np.testing.assert_allclose(conventional, np.array(cell.cell))
        assert 0.8 * 250 <= len(box) <= 1.25 * 250 + len(cell)
        assert structures.space_group(box) == group  # the same crystal, another box
        for edges in (box.cell, structures._spglib(spglib.niggli_reduce, box.cell),
                      structures._spglib(spglib.delaunay_reduce, box.cell)):  # fmt: skip
            assert structures.misalignment(edges, conventional).min() > structures.SKEW_MARGIN
        # A diagonal supercell keeps the lattice's axes as its edges.
        assert structures.misalignment(structures.supercell(cell).cell, conventional).max() < 1e-6
    again = structures.skewed_supercell(cell, 250, rng=1)
    np.testing.assert_array_equal(again.positions, box.positions)  # seeded
    with pytest.raises(RuntimeError, match="draws"):
        structures.skewed_supercell(cell, 250, rng=1, max_tries=0)


def test_practitioner_view_details_give_spglib_s_cell_in_the_crystal_s_frame():
    atoms = structures.sample_structure(225, 0, n_atoms=100, skew=True)
    view, group, edges = structures.practitioner_view(atoms, 2, details=True)
    assert group == 225 and len(view) >= 100
    # Pristine: spglib's standard cell is the conventional cube, in the crystal's own frame.
    conventional = np.array(atoms.info["conventional_cell"])
    assert structures.misalignment(edges, conventional).max() < 1e-3
    np.testing.assert_allclose(np.linalg.norm(edges, axis=1), np.linalg.norm(conventional, axis=1),
                               rtol=1e-3)  # fmt: skip
    plain = structures.practitioner_view(atoms, 2)
    np.testing.assert_allclose(plain.positions, view.positions)


def test_pipeline_takes_any_crystal_to_a_standard_supercell():
    from ase.build import bulk

    atoms = structures.pipeline(bulk("NaCl", "rocksalt", a=5.64), 0, vacancies=0.1)
    assert atoms.info["element"] == "ClNa" and atoms.info["vacancies"] == 0.1
    assert 180 <= len(atoms) <= 260


def test_primitive_cell_holds_one_lattice_point_in_the_same_frame():
    fcc = structures.build_prototype(225, "Al")
    primitive = structures.primitive_cell(fcc)
    assert len(fcc) == 4 and len(primitive) == 1
    np.testing.assert_allclose(fcc.get_volume() / primitive.get_volume(), 4)
    # Its edges are a/2 <110> of the cube, in the cube's own frame.
    conventional = np.array(fcc.cell)
    assert structures.misalignment(primitive.cell, conventional, max_index=1).max() < 1e-6


def test_plot_cells_draws_twelve_edges_per_cell():
    import matplotlib

    matplotlib.use("Agg")
    fcc = structures.build_prototype(225, "Al")
    ax = structures.plot_cells({"conventional": fcc.cell, "primitive": structures.primitive_cell(
        fcc).cell}, atoms=fcc)  # fmt: skip
    assert len(ax.get_lines()) == 24 and ax.get_xlabel() == "x (Å)"
    with pytest.raises(ValueError, match="rows a, b, c"):
        structures.plot_cells({"bad": np.eye(2)})
