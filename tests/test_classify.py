"""Classifying the user's own structure files with every shipped classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from crystal_course import classify, structures, zone_axis


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("structures")
    copper = bulk("Cu", "fcc", a=3.61, cubic=True)
    copper.write(folder / "Cu.cif")
    iron = bulk("Fe", "bcc", a=2.87)
    iron.set_cell(Rotation.from_euler("xyz", [20, 35, 50], degrees=True).apply(iron.cell),
                  scale_atoms=True)  # an arbitrary frame  # fmt: skip
    iron.write(folder / "POSCAR", format="vasp")
    cut = zone_axis.spherical_cluster(bulk("Ni", "fcc", a=3.52, cubic=True), 200)
    Atoms(numbers=cut.numbers, positions=cut.positions).write(folder / "particle.xyz")  # no cell
    (folder / "empty.cif").write_bytes(b"")
    (folder / "notes.txt").write_text("these are not atoms\n")
    Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]]).write(folder / "dummy.xyz")
    text = (folder / "dummy.xyz").read_text().replace("Cu", "X")  # X: no form factors
    (folder / "dummy.xyz").write_text(text)
    many = structures.MAX_ATOMS + 1
    lines = [str(many), "too many"] + [f"Cu {i * 2.5:.1f} 0 0" for i in range(many)]
    (folder / "huge.xyz").write_text("\n".join(lines) + "\n")
    return folder


def test_every_classifier_answers_for_a_crystal_in_any_frame(files, capsys):
    code = classify.main([str(files / "Cu.cif"), str(files / "POSCAR"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in report] == [str(files / "Cu.cif"), str(files / "POSCAR")]
    expected = ["fcc (225)", "bcc (229)"]
    for entry, name in zip(report, expected, strict=True):
        assert entry["error"] is None
        assert list(entry["classifiers"]) == list(classify.SHIPPED)
        for answer in entry["classifiers"].values():
            assert answer["class"] == name
            assert 0 < answer["probability"] <= 1
            assert 0 <= answer["uncertainty"] <= np.log(7) + 1e-6
            assert -1e-6 <= answer["mutual_information"] <= answer["uncertainty"] + 1e-3
            assert answer["unknown"] in (True, False)


def test_a_cluster_without_a_cell_gets_the_orientation_free_answers(files, capsys):
    assert classify.main([str(files / "particle.xyz")]) == 0
    out = capsys.readouterr().out
    assert "ziletti_cnn   cannot answer: needs a periodic cell" in out
    for name in ("powder_cnn", "soap_network"):
        assert f"{name:<13} fcc (225)" in out


def test_bad_files_get_one_line_each_and_the_rest_is_classified(files, capsys):
    bad = ["empty.cif", "notes.txt", "dummy.xyz", "huge.xyz", "missing.cif"]
    code = classify.main([str(files / name) for name in bad] + [str(files / "Cu.cif"), "--json"])
    assert code == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(bad)
    for line, name, expected in zip(errors, bad, ["empty", "cannot read it as a structure",
                                                  "1 <= Z <= 98", "more than the 50000",
                                                  "no such file"], strict=True):  # fmt: skip
        assert line.startswith(f"classify: {files / name}: ") and expected in line
    report = json.loads(captured.out)
    assert [r["error"] is None for r in report] == [False] * len(bad) + [True]
    assert report[-1]["classifiers"]["soap_network"]["class"] == "fcc (225)"
    assert all(r["classifiers"] == {} for r in report[:-1])


def test_answers_flag_what_passes_the_threshold():
    certain = np.tile([[[1.0, 0, 0, 0, 0, 0, 0]]], (3, 1, 1))
    unsure = np.full((3, 1, 7), 1 / 7)
    answers = classify.answers(np.concatenate([certain, unsure], axis=1), threshold=1.0)
    assert [a.unknown for a in answers] == [False, True]
    assert answers[0].name == structures.CLASSES[0] and answers[0].probability == 1.0
    assert answers[1].uncertainty == pytest.approx(np.log(7), abs=1e-4)
    # every pass agrees: all of the doubt is the crystal's, none the model's
    assert answers[1].information == pytest.approx(0, abs=1e-4)
    split = np.zeros((2, 1, 7))
    split[0, 0, 0] = split[1, 0, 1] = 1  # two passes, two confident answers
    disagree = classify.answers(split, threshold=None)[0]
    assert disagree.information == pytest.approx(np.log(2), abs=1e-4)
    assert disagree.uncertainty == pytest.approx(np.log(2), abs=1e-4)
    assert classify.answers(certain, threshold=None)[0].unknown is None
