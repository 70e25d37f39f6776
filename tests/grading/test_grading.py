"""Whole assignments, graded as an instructor would, on the Colab stack.

Every chapter runs once, in one kernel: the untouched student notebook top to
bottom (it shows every glued number in its text, each exercise's check cell
reports a clean failure that names what is missing, and the autograder's tests
give it zero); then the instructor's solution cells on that same kernel, after
which the same tests give full marks. Chapter 1's instructor notebook is also
graded by otter itself from the autograder zip, as an instructor grades
submissions (debug mode: any failing cell fails the test).
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
SOLUTION_TAG = "otter_assign_solution_cell"  # what Otter Assign tags the solution cells with


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    assignments.build(ROOT / "_config.yml", ROOT / "book", out)
    return out


# otter's own grading path, end to end, on the cheapest chapter; every chapter's
# solutions are graded on the student run's kernel below.
@pytest.mark.parametrize("chapter", CHAPTERS[:1])
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
_results = {{q: _grader.check(q, globals()) for q in {questions!r}}}
print("SCORES", _json.dumps({{q: [r.score, r.possible] for q, r in _results.items()}}))
try:  # as on Colab's CPU runtime (conftest.py)
    import distributed as _distributed  # noqa: F401
    print("DISTRIBUTED importable")
except ImportError:
    print("DISTRIBUTED absent")"""


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_twin_runs_shows_its_numbers_grades_zero_then_solutions_full(
    built, chapter, tmp_path
):
    """The committed twin (what Colab opens), run once top to bottom and graded from that run.

    No cell fails; every check cell reports a clean failure naming the placeholder;
    every text cell shows this run's numbers (none still waits for a value); the
    autograder's tests, public and hidden, give the untouched notebook zero. Then the
    instructor's solution cells run on the same kernel, and the same tests give every
    question full marks.
    """
    import zipfile

    from crystal_course.markdown import RENDER_TAG
    from crystal_course.notebooks import FIELD, PENDING

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
    instructor = nbformat.read(built / "instructor" / f"{chapter}.ipynb", as_version=4)
    solutions = [c for c in instructor.cells if c.cell_type == "code"
                 and SOLUTION_TAG in c.metadata.get("tags", [])]  # fmt: skip
    assert solutions, "the instructor's notebook has no solution cells"
    notebook.cells.extend(nbformat.v4.new_code_cell(c.source, metadata=c.metadata)
                          for c in solutions)  # fmt: skip
    notebook.cells.append(nbformat.v4.new_code_cell(grading.source))
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
        assert shown.strip() and PENDING not in shown and not FIELD.search(shown), shown[:300]
        assert "DisplayHandle" not in shown, shown[:300]  # the text alone, no Out[] line

    def scores(cell) -> dict:
        shown = text(cell)
        assert "DISTRIBUTED absent" in shown, shown  # the chapter ran without dask.distributed
        return json.loads(shown.split("SCORES", 1)[1].split("\n", 1)[0])

    untouched = scores(notebook.cells[-len(solutions) - 2])
    assert sorted(untouched) == sorted(questions), untouched
    assert {score for score, _ in untouched.values()} == {0}, untouched
    solved = scores(notebook.cells[-1])
    assert sorted(solved) == sorted(questions), solved
    assert all(score == possible > 0 for score, possible in solved.values()), solved
    if chapter == "06_shaped_msdn":  # a sentence whose value a later cell glues
        (wavelength,) = [text(c) for c in rendered if "At the paper's wavelength" in c.source]
        assert re.search(r"this is \d+ Å⁻¹", wavelength), wavelength
