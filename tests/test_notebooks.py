"""Colab twins: output-free copies of the MyST sources, Colab cell from _config.yml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jupytext
import pytest

from crystal_course import assignments, notebooks


def test_every_chapter_twin_is_in_sync(root):
    """Fails when a chapter was edited without `make notebooks`."""
    assert notebooks.chapter_sources(root / "book"), "no chapters found"
    assert assignments.check(root / "_config.yml", root / "book") == []


@pytest.fixture
def book_copy(tmp_path, root):
    shutil.copy(root / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(root / "references.bib", tmp_path / "references.bib")
    shutil.copytree(root / "book", tmp_path / "book")
    (tmp_path / "crystal_course").mkdir()  # a project: its package receives the shipped tests
    shutil.copy(root / "crystal_course" / "__init__.py", tmp_path / "crystal_course")
    return tmp_path


def test_editing_a_source_is_detected_and_sync_repairs_it(book_copy):
    source = notebooks.chapter_sources(book_copy / "book")[0]
    source.write_text(source.read_text() + "\n```{code-cell} ipython3\nx = 1\n```\n")
    problems = assignments.check(book_copy / "_config.yml", book_copy / "book")
    assert any("out of sync" in p for p in problems)
    changed = assignments.sync(book_copy / "_config.yml", book_copy / "book")
    assert source.with_suffix(".ipynb") in changed
    assert assignments.check(book_copy / "_config.yml", book_copy / "book") == []
    assert "x = 1" in source.with_suffix(".ipynb").read_text()


def test_outputs_in_a_twin_are_detected(book_copy):
    twin = notebooks.chapter_sources(book_copy / "book")[0].with_suffix(".ipynb")
    nb = json.loads(twin.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    code["execution_count"] = 1
    twin.write_text(json.dumps(nb))
    problems = assignments.check(book_copy / "_config.yml", book_copy / "book")
    assert any("carries outputs" in p for p in problems)


def test_orphan_and_missing_twins_are_detected(book_copy):
    (book_copy / "book" / "stray.ipynb").write_text("{}")
    twin = notebooks.chapter_sources(book_copy / "book")[0].with_suffix(".ipynb")
    twin.unlink()
    problems = assignments.check(book_copy / "_config.yml", book_copy / "book")
    assert any("stray.ipynb: has no .md source" in p for p in problems)
    assert any("missing twin" in p for p in problems)


def test_colab_cell_follows_the_repository_url(book_copy):
    config = book_copy / "_config.yml"
    new_url = "https://github.com/someone-else/fork-of-course"
    config.write_text(config.read_text().replace(notebooks.repository_url(config), new_url))
    problems = assignments.check(config, book_copy / "book")
    assert any("Colab cell" in p for p in problems)
    assignments.sync(config, book_copy / "book")
    for source in notebooks.chapter_sources(book_copy / "book"):
        twin = jupytext.read(source.with_suffix(".ipynb"))
        cell = next(c for c in twin.cells if notebooks.COLAB_TAG in c.metadata.get("tags", []))
        assert f"crystal_course @ git+{new_url}@{notebooks.release_tag()}" in cell.source


def test_colab_cell_installs_the_release_of_this_version(root, monkeypatch):
    import crystal_course

    for source in notebooks.chapter_sources(root / "book"):
        assert f'@v{crystal_course.__version__}"' in source.read_text(), source.name
    # A version bump without `make notebooks` is caught.
    monkeypatch.setattr(crystal_course, "__version__", "99.0.0")
    problems = assignments.check(root / "_config.yml", root / "book")
    assert problems and all("v99.0.0" in p for p in problems if "Colab cell" in p)


def test_changelog_describes_the_current_version(root):
    import crystal_course

    changelog = (root / "CHANGELOG.md").read_text()
    assert f"## {crystal_course.__version__} " in changelog, "no CHANGELOG entry for this version"


def test_every_chapter_has_one_colab_cell_first_and_skipped(root):
    for source in notebooks.chapter_sources(root / "book"):
        code_cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
        tags = code_cells[0].metadata.get("tags", [])
        assert notebooks.COLAB_TAG in tags, f"{source.name}: first code cell is not the Colab cell"
        assert {"nbval-skip", "skip-execution", "remove-cell"} <= set(tags)
        assert sum(notebooks.COLAB_TAG in c.metadata.get("tags", []) for c in code_cells) == 1


def test_colab_cell_does_nothing_off_colab(root, monkeypatch):
    """Run the generated cell here: it must not try to install anything."""
    import subprocess

    source = notebooks.colab_cell_source(notebooks.repository_url(root / "_config.yml"))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(compile(source, "<colab-cell>", "exec"), {})
    assert calls == []
    assert "tensorflow" not in source  # never a second TensorFlow on Colab


def test_a_chapter_without_colab_cell_is_refused(book_copy):
    source = notebooks.chapter_sources(book_copy / "book")[0]
    nb = jupytext.read(source)
    nb.cells = [c for c in nb.cells if notebooks.COLAB_TAG not in c.metadata.get("tags", [])]
    source.write_text(jupytext.writes(nb, fmt="md:myst"))
    with pytest.raises(ValueError, match="exactly one code cell tagged 'colab-install'"):
        assignments.sync(book_copy / "_config.yml", book_copy / "book")


def test_noexec_config_turns_execution_off_and_keeps_the_rest(root, tmp_path):
    import yaml

    out = tmp_path / "noexec.yml"
    notebooks.write_noexec_config(root / "_config.yml", out)
    original = yaml.safe_load((root / "_config.yml").read_text())
    copy = yaml.safe_load(out.read_text())
    assert original["execute"]["execute_notebooks"] == "force"
    assert copy["execute"]["execute_notebooks"] == "off"
    assert "mystnb.glue" in copy["sphinx"]["config"]["suppress_warnings"]
    assert copy["repository"] == original["repository"]
    assert copy["sphinx"]["extra_extensions"] == original["sphinx"]["extra_extensions"]
    # The copy lives elsewhere: its local extensions must still be found.
    for name, path in copy["sphinx"]["local_extensions"].items():
        assert (Path(path) / f"{name}.py").is_file(), name


def test_launch_link_check_accepts_ipynb_and_rejects_md(tmp_path, root):
    html = tmp_path / "html" / "book"
    html.mkdir(parents=True)
    sources = notebooks.chapter_sources(root / "book")
    base = "https://colab.research.google.com/github/o/r/blob/main/book"
    for source in sources:
        (html / f"{source.stem}.html").write_text(f'<a href="{base}/{source.stem}.ipynb">')
    assert notebooks.check_launch_links(tmp_path / "html", root / "book") == []
    first = sources[0]
    (html / f"{first.stem}.html").write_text(f'<a href="{base}/{first.stem}.md">')
    problems = notebooks.check_launch_links(tmp_path / "html", root / "book")
    assert len(problems) == 1 and "no Colab link" in problems[0]
    (html / f"{first.stem}.html").unlink()
    assert "missing" in notebooks.check_launch_links(tmp_path / "html", root / "book")[0]


def test_glue_works_where_myst_nb_is_absent(monkeypatch, capsys):
    """Colab has no myst-nb: the chapters' glue calls must not fail there."""
    import sys

    import numpy as np

    from crystal_course.notebooks import glue

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb -> ImportError
    assert glue("quiet", np.float64(0.25)) is None
    assert capsys.readouterr().out == ""
    glue("shown", np.float64(0.5), display=True)
    assert capsys.readouterr().out.strip() == "0.5"


def _card(correct_a, correct_b):
    """A Chapter 6 card with one spots+cnn and one grey+msdn run per seed."""
    from conftest import zone_card

    return zone_card({("spots", "cnn"): correct_a, ("grey", "msdn"): correct_b})


def test_the_statistics_example_follows_the_card():
    # 40 crystals: A gets 30 right, B 24, all of B's among A's. The Wilson intervals
    # overlap, the 6 discordant crystals all go to A: McNemar p = 2 / 2**6.
    a = [True] * 30 + [False] * 10
    b = [True] * 24 + [False] * 16
    text = notebooks.statistics_example(_card([a, a], [b, b]))
    assert "75.0 % [59.8, 85.8] (30/40)" in text and "intervals overlap. Yet the paired" in text
    assert "6 go to the CNN and 0 to the MSDN (McNemar's p = 0.031)" in text
    assert "separates the methods for 2 of the 2 seeds" in text
    assert "28 right out of 28 gives [87.9, 100] %" in text
    # Far apart: the intervals do not overlap and the paired test agrees ("And", not "Yet").
    text = notebooks.statistics_example(_card([[True] * 40], [[False] * 40]))
    assert "intervals do not overlap. And the paired test separates them" in text
    # Equal: no ranking.
    text = notebooks.statistics_example(_card([a], [a]))
    assert "cannot separate them" in text and "for 0 of the 1 seeds" in text
    with pytest.raises(ValueError, match="spots\\+cnn and grey\\+msdn"):
        notebooks.statistics_example({"runs": []})
