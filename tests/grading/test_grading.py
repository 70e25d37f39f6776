"""Whole assignments, graded as an instructor would, on the Colab stack.

For every chapter: its autograder gives full marks to the instructor's notebook
(executed in otter's debug mode, so any failing cell of the chapter fails the
test, as nbval would), zero to the untouched student notebook, and the student
notebook runs top to bottom, each exercise's check cell reporting a clean
failure that names what is missing.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from crystal_course import assignments
from crystal_course.notebooks import chapter_sources

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [p.stem for p in chapter_sources(ROOT / "book")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    assignments.build(ROOT / "_config.yml", ROOT / "book", out)
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_get_full_marks(built, chapter):
    (row,) = assignments.grade(built / "autograder" / f"{chapter}-autograder.zip",
                               built / "instructor" / f"{chapter}.ipynb", debug=True)  # fmt: skip
    assert row["possible"] >= 3  # every chapter has at least three exercises
    assert row["total"] == row["possible"], row


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_untouched_student_notebook_gets_zero(built, chapter):
    student = built / "student" / f"{chapter}.ipynb"
    assert student.read_text() == (ROOT / "book" / f"{chapter}.ipynb").read_text()
    (row,) = assignments.grade(built / "autograder" / f"{chapter}-autograder.zip", student)
    questions = {k: v for k, v in row.items() if k.startswith("ex-")}
    assert len(questions) >= 3 and set(questions.values()) == {0}, row


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_twin_runs_and_its_checks_fail_cleanly(chapter, tmp_path):
    """The committed twin (what Colab opens), run top to bottom without an error."""
    notebook = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell
    checks = [c for c in notebook.cells if c.cell_type == "code"
              and c.source.startswith("grader.check(")]  # fmt: skip
    assert len(checks) >= 3
    for cell in checks:
        text = "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "")
                       for o in cell.outputs)  # fmt: skip
        assert "Test case failed" in text, (cell.source, text)
        assert "replace the `...` placeholder" in text, (cell.source, text)
        assert "Traceback" not in text and "site-packages" not in text, (cell.source, text)
