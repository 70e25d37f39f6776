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
