"""Student editions, otter-grader assignments, and the exercise markup they are built from."""

from __future__ import annotations

import ast
import json
import shutil
import zipfile

import nbformat
import pytest

from crystal_course import assignments
from crystal_course.notebooks import chapter_sources


def _sources(root):
    return chapter_sources(root / "book")


def _code_lines(code: str) -> list[str]:
    """The statements of some code, one normalised line each (comments and blanks dropped)."""
    return [ast.unparse(node) for node in ast.parse(code).body]


def test_every_chapter_has_at_least_three_exercises_with_checks(root):
    for source in _sources(root):
        found = [e for e in assignments.exercises(source) if not e.manual]
        assert len(found) >= 3, source.name
        for exercise in found:
            assert exercise.check.startswith("checks.check_")
            assert set(exercise.answer_names) & set(assignments._free_names(exercise.check))
            assert exercise.hidden, f"{source.name} {exercise.label}: no hidden test"


def test_every_exercise_owns_its_answer_names(root):
    """Solving one exercise never breaks another one, nor a cell of the chapter above:
    only the exercise's own answer and solution cells assign the names it asks for."""
    import jupytext

    for source in _sources(root):
        cells = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
        assigned = [set(assignments._assigned(c)) if not c.lstrip().startswith(("%", "!"))
                    else set() for c in cells]  # fmt: skip
        for exercise in assignments.exercises(source):
            own = {exercise.answer.strip(), exercise.solution.strip()}
            for name in exercise.answer_names:
                others = [c for c, names in zip(cells, assigned, strict=True)
                          if name in names and c.strip() not in own]  # fmt: skip
                assert not others, (f"{source.name} {exercise.label}: {name!r} is also "
                                    f"assigned in {others[0][:80]!r}")  # fmt: skip


def test_student_twins_hold_no_solution(root):
    for source in _sources(root):
        twin = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
        code = "\n".join(c.source for c in twin.cells if c.cell_type == "code")
        text = "\n".join(c.source for c in twin.cells)
        for directive in ("exercise-start", "exercise-end", "solution-start", "solution-end"):
            assert "{" + directive + "}" not in text, f"{source.name}: raw {directive}"
        for exercise in assignments.exercises(source):
            answer_lines = set(_code_lines(exercise.answer))
            for line in _code_lines(exercise.solution)[:-1]:  # the last one is the public check
                if line not in answer_lines:
                    assert line not in code, f"{source.name} {exercise.label}: {line!r}"
            for hidden in exercise.hidden:
                for line in _code_lines(hidden):
                    assert line not in code, f"{source.name} {exercise.label}: hidden {line!r}"
            if exercise.solution_text:
                assert exercise.solution_text[:60] not in text, exercise.label


def test_every_chapter_asks_for_an_argument_graded_with_a_rubric(root):
    for source in _sources(root):
        arguments = [e for e in assignments.exercises(source) if e.manual]
        assert arguments, f"{source.name}: no free-response exercise"
        cells = nbformat.read(source.with_suffix(".ipynb"), as_version=4).cells
        for exercise in arguments:
            assert assignments.RUBRIC in exercise.solution_text and not exercise.answer
            heading = f"**Exercise {exercise.number}** (an argument, graded by hand)."
            at = next(i for i, c in enumerate(cells) if heading in c.source)
            answer = cells[at + 1]  # a Markdown cell for the student's argument
            assert answer.cell_type == "markdown"
            assert assignments.ANSWER_TAG in answer.metadata["tags"]


def test_every_exercise_has_an_answer_cell_and_a_check_cell(root):
    for source in _sources(root):
        cells = nbformat.read(source.with_suffix(".ipynb"), as_version=4).cells
        for exercise in assignments.exercises(source):
            if exercise.manual:
                continue  # no code to check: graded by hand
            heading = f"**Exercise {exercise.number}.**"
            # (after a free-response question, otter opens the next cell with an HTML
            # comment that closes it)
            statement = next(i for i, c in enumerate(cells)
                             if c.source.removeprefix("<!-- END QUESTION -->").lstrip()
                             .startswith(heading))  # fmt: skip
            answer, check = cells[statement + 1], cells[statement + 2]
            assert answer.cell_type == "code" and assignments.ANSWER_TAG in answer.metadata["tags"]
            assert answer.source == exercise.answer and "..." in answer.source
            assert check.source == f'grader.check("{exercise.label}")'
        init = [c for c in cells if "otter.Notebook(" in c.source]
        assert len(init) == 1 and f"tests_dir({source.stem!r})" in init[0].source


def test_shipped_public_tests_call_the_chapter_checkers(root):
    for source in _sources(root):
        directory = assignments.tests_dir(source.stem)
        for exercise in assignments.exercises(source):
            if exercise.manual:  # graded by hand: no test file, public or hidden
                assert not (root / directory / f"{exercise.label}.py").exists()
                continue
            text = (root / directory / f"{exercise.label}.py").read_text()
            (function,) = [n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)]
            assert [ast.unparse(n) for n in function.body] == _code_lines(exercise.check)
            assert "hidden=False" in text
            assert "hidden=True" not in text  # hidden tests stay in the autograder
    with pytest.raises(ValueError, match="no exercise checks for chapter '99_nothing'"):
        assignments.tests_dir("99_nothing")


CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Chapter

$$
n = 7 \times 7
$$ (eq-one)

```{{code-cell}} ipython3
from crystal_course import checks
```

## Exercises

```{{exercise-start}}
:label: ex-one
```

How many parameters? See {{eq}}`eq-one`.

```{{code-cell}} ipython3
n = ...  # an int
```

```{{exercise-end}}
```

```{{solution-start}} ex-one
:class: dropdown
```

Count them.

```{{code-cell}} ipython3
{solution}
```

```{{code-cell}} ipython3
:tags: [remove-cell, hidden-test]
assert isinstance(n, int)
```

```{{solution-end}}
```
"""


def _write(tmp_path, solution: str):
    (tmp_path / "_config.yml").write_text("html:\n  baseurl: https://example.org/c/\n")
    path = tmp_path / "09_example.md"
    path.write_text(CHAPTER.format(solution=solution))
    return path


def test_parse_reads_an_exercise(tmp_path):
    source = _write(tmp_path, "helper = 3\nn = 7 * 7 * helper\nchecks.check_kernel_parameters(n)")
    (exercise,) = assignments.exercises(source)
    assert exercise.label == "ex-one" and exercise.number == "9.1"
    assert exercise.statement == "How many parameters? See {eq}`eq-one`."
    assert exercise.answer_names == ["n"] and exercise.solution_text == "Count them."
    assert exercise.check == "checks.check_kernel_parameters(n)"
    assert exercise.hidden == ("assert isinstance(n, int)",)
    master = assignments.master_notebook(source)
    statement = next(c.source for c in master.cells if c.source.startswith("**Exercise 9.1"))
    assert statement.endswith("See [(1)](https://example.org/c/09_example.html#equation-eq-one).")
    raw = [c.source.split("\n")[0] for c in master.cells if c.cell_type == "raw"]
    assert raw[:3] == ["# ASSIGNMENT CONFIG", "# BEGIN QUESTION", "# BEGIN PROMPT"]
    tests = [c.source for c in master.cells if "def test_" in c.source]
    assert tests[0] == "def test_checker(n, checks):\n    checks.check_kernel_parameters(n)\n"
    assert "hidden: true" in tests[1] and "def test_hidden_0(n):" in tests[1]


@pytest.mark.parametrize(
    ("solution", "message"),
    [
        ("n = 3\nprint(n)", r"the solution's last statement must be a call checks\.check_"),
        ("m = 3\nn = m\nchecks.check_kernel_parameters(m)", r"the checker call reads \['m'\]"),
        ("checks.check_kernel_parameters(3)", "the checker call does not read the answer"),
    ],
)
def test_parse_names_a_malformed_exercise(tmp_path, solution, message):
    source = _write(tmp_path, solution)
    with pytest.raises(ValueError, match=f"09_example.md: exercise 'ex-one': {message}"):
        assignments.exercises(source)


def test_parse_names_an_unclosed_exercise(tmp_path):
    source = _write(tmp_path, "n = 3\nchecks.check_kernel_parameters(n)")
    source.write_text(source.read_text().replace("```{solution-end}\n```\n", ""))
    with pytest.raises(ValueError, match="not closed by solution-end"):
        assignments.exercises(source)


@pytest.fixture(scope="module")
def chapter_one(tmp_path_factory):
    from conftest import ROOT

    out = tmp_path_factory.mktemp("assign")
    return assignments.assign(ROOT / "book" / "01_diffraction.md", out, "crystal_course\n")


def test_assign_writes_student_instructor_and_autograder(chapter_one, root):
    student = chapter_one["student"].read_text()
    assert student == (root / "book" / "01_diffraction.ipynb").read_text()
    instructor = json.loads(chapter_one["instructor"].read_text())
    code = "\n".join("".join(c["source"]) for c in instructor["cells"])
    for exercise in assignments.exercises(root / "book" / "01_diffraction.md"):
        assert exercise.check in code  # the solutions are in the instructor's copy
    with zipfile.ZipFile(chapter_one["autograder"]) as archive:
        names = set(archive.namelist())
        assert {"run_autograder", "environment.yml", "otter_config.json"} <= names
        hidden = archive.read("tests/ex-ewald-ratio.py").decode()
        assert "hidden=True" in hidden and "hidden=False" in hidden
        # what Gradescope installs: the requirements given to assign, beside otter itself
        assert "      - crystal_course\n" in archive.read("environment.yml").decode()


def test_one_wrong_answer_loses_exactly_its_points(chapter_one, tmp_path):
    from conftest import ROOT

    notebook = nbformat.read(chapter_one["instructor"], as_version=4)
    wrong = next(
        c
        for c in notebook.cells
        if "checks.check_ewald_ratio(ratio)" in c.source and "BEGIN SOLUTION" in c.source
    )
    wrong.source = wrong.source.replace("checks.check_ewald_ratio(ratio)", "ratio = 1.5 * ratio")
    path = tmp_path / "01_diffraction.ipynb"
    nbformat.write(notebook, path)
    (row,) = assignments.grade(chapter_one["autograder"], path)
    scores = {k: v for k, v in row.items() if k.startswith("ex-")}
    assert scores.pop("ex-ewald-ratio") == 0
    autograded = [
        e for e in assignments.exercises(ROOT / "book" / "01_diffraction.md") if not e.manual
    ]  # arguments are graded by hand, not by the autograder
    others = len(autograded) - 1
    assert set(scores.values()) == {assignments.POINTS} and len(scores) == others
    assert row["total"] == row["possible"] - assignments.POINTS


def test_grade_command_writes_a_score_table(chapter_one, tmp_path, capsys):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(chapter_one["student"], submissions / "alice.ipynb")
    out = tmp_path / "scores.csv"
    assert assignments.main(["grade", str(chapter_one["autograder"]), str(submissions),
                             "-o", str(out)]) == 0  # fmt: skip
    header, alice = out.read_text().splitlines()
    assert header.startswith("file,total,possible,ex-") and alice.startswith("alice.ipynb,0")
    with pytest.raises(SystemExit) as exit_info:
        assignments.main(["grade", str(tmp_path / "missing.zip"), str(submissions)])
    assert exit_info.value.code == 2
    assert "expected an autograder .zip" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sync", "build"])
def test_a_config_outside_the_project_is_refused_before_anything_is_written(command, tmp_path):
    import contextlib
    import io

    from conftest import ROOT

    nowhere = tmp_path / "nope" / "_config.yml"
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "_config.yml").write_text("title: another book\n")
    extra = [str(tmp_path / "out")] if command == "build" else []
    for config, message in [(nowhere, "not found"), (stray / "_config.yml", "no crystal_course"),
                            (ROOT / "README.md", "Jupyter Book configuration")]:  # fmt: skip
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
            assignments.main([command, str(config), str(ROOT / "book"), *extra])
        assert stop.value.code == 2 and message in err.getvalue().strip().splitlines()[-1]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        assignments.main([command, str(ROOT / "_config.yml"), str(tmp_path), *extra])
    assert stop.value.code == 2 and "must be a folder of the project" in err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stray"]  # nothing written


ARGUMENT = """
```{exercise-start}
:label: ex-argue
```

Why a paired test?

```{exercise-end}
```

```{solution-start} ex-argue
:class: dropdown
```

Both answered the same crystals.

**Rubric.** 1 point: the same crystals; 1 point: only discordant crystals count.

```{solution-end}
```
"""


def test_an_argument_becomes_a_question_graded_by_hand(tmp_path):
    source = _write(tmp_path, "n = 147\nchecks.check_kernel_parameters(n)")
    source.write_text(source.read_text() + ARGUMENT)
    first, argument = assignments.exercises(source)
    assert not first.manual and argument.manual and argument.number == "9.2"
    assert argument.statement == "Why a paired test?"
    assert assignments.RUBRIC in argument.solution_text
    master = assignments.master_notebook(source)
    config = next(c.source for c in master.cells if '"ex-argue"' in c.source)
    assert json.loads(config.split("\n", 1)[1]) == {
        "name": "ex-argue",
        "manual": True,
        "points": assignments.MANUAL_POINTS,
    }
    assert not [c for c in master.cells if "def test_" in c.source and "argue" in c.source]
    paths = assignments.assign(source, tmp_path / "out")
    student = nbformat.read(paths["student"], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "Why a paired test?" in text and "Rubric" not in text  # the rubric stays hidden
    answer = [c for c in student.cells if assignments.ANSWER_TAG in c.metadata.get("tags", [])]
    assert answer[-1].cell_type == "markdown"  # where the student writes the argument
    instructor = paths["instructor"].read_text()
    assert "Rubric" in instructor and "only discordant crystals count" in instructor


def test_an_argument_without_a_rubric_is_refused(tmp_path):
    source = _write(tmp_path, "n = 147\nchecks.check_kernel_parameters(n)")
    source.write_text(source.read_text() + ARGUMENT.replace("**Rubric.**", "Points:"))
    with pytest.raises(ValueError, match="'ex-argue': a free-response exercise needs"):
        assignments.exercises(source)
