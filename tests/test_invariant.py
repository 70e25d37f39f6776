"""Orientation-free descriptors: SOAP from dscribe on rescaled, one-species clusters."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from crystal_course import invariant, structures, zone_axis


@pytest.fixture(scope="module")
def clusters():
    crystals = {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True),
                "bcc": bulk("Fe", "bcc", a=2.87, cubic=True),
                "big fcc": bulk("Pb", "fcc", a=4.95, cubic=True)}  # fmt: skip
    return {name: zone_axis.spherical_cluster(c, 150) for name, c in crystals.items()}


def test_rescaled_clusters_have_unit_nearest_neighbours(clusters):
    fcc = clusters["fcc"]
    unit = invariant.rescaled(fcc)
    assert structures.nearest_neighbour_distance(unit) == pytest.approx(1.0)
    np.testing.assert_allclose(unit.positions * 3.6 / np.sqrt(2), fcc.positions)
    assert set(unit.numbers) == {1} and not unit.pbc.any()
    assert set(invariant.rescaled(fcc, one_species=False).numbers) == {29}


def test_soap_sees_structure_not_orientation_element_or_size(clusters):
    features = invariant.soap(list(clusters.values()))
    assert features.shape[0] == 3 and np.isfinite(features).all()
    turned = clusters["fcc"].copy()
    turned.positions = Rotation.random(random_state=1).apply(turned.positions) - 3.0
    np.testing.assert_allclose(invariant.soap(turned)[0], features[0], rtol=1e-9, atol=1e-12)
    # Cu and Pb are both fcc: after rescaling, the same descriptor; bcc differs
    np.testing.assert_allclose(features[2], features[0], rtol=1e-9, atol=1e-12)
    assert np.abs(features[1] - features[0]).max() > 1e-3 * np.abs(features[0]).max()


def test_bad_input_is_named(clusters):
    with pytest.raises(TypeError, match="ase.Atoms"):
        invariant.rescaled(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        invariant.soap(Atoms("Cu"))
    with pytest.raises(ValueError, match="coincident"):
        invariant.rescaled(Atoms("Cu2", positions=np.zeros((2, 3))))
    with pytest.raises(ValueError, match="at least one"):
        invariant.soap([])
    with pytest.raises(ValueError, match="n_max"):
        invariant.SoapSettings(n_max=0)
    with pytest.raises(ValueError, match="r_cut"):
        invariant.SoapSettings(r_cut=0.5)


def test_dataset_holds_three_descriptors_of_the_same_crystals(tmp_path):
    from crystal_course import dataset

    config = invariant.Config(2, 1, n_q=64, n_atoms=120)
    assert config.splits == ("train", "train_damaged", "test_pristine", "test_standard",
                             "test_vacancies_0.25", "test_displacements_0.02")  # fmt: skip
    assert "train_damaged" not in invariant.Config(2, 1, train_damage=(0, 0)).splits
    path = invariant.generate(tmp_path / "inv", config, n_jobs=1, progress=False)
    train = dataset.load(path, "train")
    assert train.x.shape == (14, 64) and train.meta["soap"].shape[0] == 14
    assert train.meta["fingerprint"].shape == (14, 64, 64, 3)
    assert np.isclose(train.x.max(axis=1), 1).all()  # each pattern scaled to its maximum
    rotated, standard = dataset.load(path, "test_pristine"), dataset.load(path, "test_standard")
    assert np.array_equal(rotated.meta["parent"], standard.meta["parent"])
    assert np.array_equal(rotated.y, standard.y)
    damaged = dataset.load(path, "train_damaged")
    assert np.array_equal(damaged.meta["parent"], train.meta["parent"])
    assert (damaged.meta["n_atoms"] <= train.meta["n_atoms"]).all()  # vacancies only remove
    assert train.manifest["kind"] == "invariant"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir())
    invariant.generate(path, config, n_jobs=1, progress=False)  # complete: left untouched
    assert sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir()) == before
    with pytest.raises(ValueError, match="n_q"):
        invariant.Config(2, 1, n_q=4)
    with pytest.raises(ValueError, match="n_test_per_class"):
        invariant.Config(2, 0)
    with pytest.raises(ValueError, match="train_damage"):
        invariant.Config(2, 1, train_damage=(1.5, 0))
