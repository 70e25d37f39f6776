"""Whole assignments, graded as an instructor would, on the Colab stack.

For every chapter, each notebook executed once: its autograder gives full marks
to the instructor's notebook (executed in otter's debug mode, so any failing cell
of the chapter fails the test, as nbval would); the untouched student notebook
runs top to bottom, shows every glued number in its text, each exercise's check
cell reports a clean failure that names what is missing, and the autograder's
tests, run on that same kernel, give it zero.
"""

from __future__ import annotations

import json
import re
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


_GRADE_SOURCE = """\
# Grading of this very run, as otter grades a submission: every question's tests (public
# and hidden, from the autograder) against the notebook's final global environment.
import json as _json
import otter as _otter

_grader = _otter.Notebook(tests_dir={tests!r})
print("SCORES", _json.dumps({{q: _grader.check(q, globals()).score for q in {questions!r}}}))
try:  # as on Colab's CPU runtime (conftest.py)
    import distributed as _distributed  # noqa: F401
    print("DISTRIBUTED importable")
except ImportError:
    print("DISTRIBUTED absent")"""


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_twin_runs_shows_its_numbers_and_grades_zero(built, chapter, tmp_path):
    """The committed twin (what Colab opens), run once top to bottom and graded from that run.

    No cell fails; every check cell reports a clean failure naming the placeholder;
    every text cell shows this run's numbers (none still waits for a value); and the
    autograder's tests, public and hidden, give the untouched notebook zero.
    """
    import zipfile

    from crystal_course.markdown import RENDER_TAG
    from crystal_course.notebooks import PENDING

    student = built / "student" / f"{chapter}.ipynb"
    assert student.read_text() == (ROOT / "book" / f"{chapter}.ipynb").read_text()
    with zipfile.ZipFile(built / "autograder" / f"{chapter}-autograder.zip") as archive:
        archive.extractall(tmp_path / "autograder")
    # The autograder scores the exercises with checks; arguments are graded by hand.
    questions = [e.label for e in assignments.exercises(ROOT / "book" / f"{chapter}.md")
                 if not e.manual]  # fmt: skip
    notebook = nbformat.read(student, as_version=4)
    grading = nbformat.v4.new_code_cell(
        _GRADE_SOURCE.format(tests=str(tmp_path / "autograder" / "tests"), questions=questions)
    )
    notebook.cells.append(grading)
    client = nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # raises CellExecutionError on the first failing cell

    def text(cell) -> str:
        return "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "")
                       + o.get("data", {}).get("text/markdown", "")
                       for o in cell.outputs)  # fmt: skip

    checks = [c for c in notebook.cells if c.cell_type == "code"
              and c.source.startswith("grader.check(")]  # fmt: skip
    assert len(checks) >= 3
    for cell in checks:
        shown = text(cell)
        assert "Test case failed" in shown, (cell.source, shown)
        assert "replace the `...` placeholder" in shown, (cell.source, shown)
        assert "Traceback" not in shown and "site-packages" not in shown, (cell.source, shown)
    rendered = [c for c in notebook.cells if RENDER_TAG in c.metadata.get("tags", [])]
    for cell in rendered:
        shown = text(cell)
        assert shown.strip() and PENDING not in shown and "⟨" not in shown, shown[:300]
        assert "DisplayHandle" not in shown, shown[:300]  # the text alone, no Out[] line
    last = text(notebook.cells[-1])
    assert "DISTRIBUTED absent" in last, last  # the whole chapter ran without dask.distributed
    scores = json.loads(last.split("SCORES", 1)[1].split("\n", 1)[0])
    assert sorted(scores) == sorted(questions) and set(scores.values()) == {0}, scores
    if chapter == "06_shaped_msdn":  # a sentence whose value a later cell glues
        (wavelength,) = [text(c) for c in rendered if "For electrons of" in c.source]
        assert re.search(r"this is \d+ Å⁻¹", wavelength), wavelength
