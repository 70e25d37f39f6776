"""Assignments: student notebooks, autograders and grading, built with otter-grader.

Every chapter ends with exercises written once, in the chapter source, with the
``sphinx-exercise`` directives the website renders as gated dropdowns::

    ```{exercise-start}
    :label: ex-name
    ```
    The statement (Markdown).
    <one code cell: the answer variables, set to ...>
    ```{exercise-end}
    ```
    ```{solution-start} ex-name
    :class: dropdown
    ```
    The solution's explanation (Markdown, optional).
    <one code cell: the solution, ending with a call checks.check_...(...)>
    <optional code cells tagged hidden-test: stricter assertions, hidden from students>
    ```{solution-end}
    ```

An exercise whose answer is an argument has no code cells: the statement, and a
solution that is Markdown only -- a model answer and a ``**Rubric.**`` paragraph::

    ```{exercise-start}
    :label: ex-argue
    ```
    The question (Markdown).
    ```{exercise-end}
    ```
    ```{solution-start} ex-argue
    :class: dropdown
    ```
    A model answer. **Rubric.** What earns each point.
    ```{solution-end}
    ```

It becomes an otter question graded by hand (``manual: true``, :data:`MANUAL_POINTS`):
the student notebook gets a Markdown cell for the answer, the instructor notebook the
model answer and its rubric.

From that source this module writes an otter-grader *master notebook* (each
exercise a question: the statement, the answer cell as the prompt, the solution,
the checker call as the public test, the ``hidden-test`` cells as hidden tests)
and runs Otter Assign on it, which gives

- the **student notebook**: no solution code or text, the statement as Markdown,
  the answer cell, and a ``grader.check(...)`` cell that runs the public test
  (the chapter's checker) on the student's variables. It is the committed
  ``book/NN_name.ipynb`` twin that Colab and Binder open;
- the **autograder** zip (public and hidden tests) for local grading or Gradescope;
- the **instructor notebook**, with the solutions.

The public tests also ship with the package (``crystal_course/data/exercises``), so
the student notebook's checks work on Colab without downloading anything.

Command line::

    python -m crystal_course.assignments sync _config.yml book   # make notebooks
    python -m crystal_course.assignments check _config.yml book  # report drift
    python -m crystal_course.assignments build _config.yml book _build/assignments
    python -m crystal_course.assignments grade AUTOGRADER.zip SUBMISSIONS_DIR [-o scores.csv]

Introduced in the instructor's guide (``book/instructors.md``).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from crystal_course.notebooks import _write_atomic

HIDDEN_TEST_TAG = "hidden-test"
"""Tag of a solution's code cell that the autograder runs as a hidden test."""

ANSWER_TAG = "otter_answer_cell"
"""Otter's tag of the cell where a student writes an answer."""

POINTS = 1

MANUAL_POINTS = 2
"""Points of an exercise whose answer is an argument, graded by hand with its rubric."""

RUBRIC = "**Rubric.**"
"""How the solution of a free-response exercise introduces its rubric."""
"""Points per exercise; a question scores all of them or none (``all_or_nothing``)."""

TESTS_PACKAGE_DIR = Path(__file__).parent / "data" / "exercises"
"""Where the public tests of every chapter ship with the package."""

_FENCE = re.compile(
    r"```\{(exercise-start|exercise-end|solution-start|solution-end)\}([^\n]*)\n(.*?)```",
    re.DOTALL,
)
_INIT_SOURCE = """\
# Checks for the exercises below (otter-grader); the public tests ship with the package.
import otter

from crystal_course import assignments

grader = otter.Notebook(tests_dir=assignments.tests_dir({name!r}))"""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter, as written in its source.

    Attributes
    ----------
    label : str
        The ``sphinx-exercise`` label, e.g. ``"ex-ewald-ratio"``; the otter question name.
    number : str
        ``"<chapter>.<k>"``, e.g. ``"1.2"``.
    statement : str
        MyST Markdown, without the exercise's own directives.
    answer : str
        The answer cell's code (variables set to ``...``).
    solution_text : str
        Markdown explaining the solution (may be empty).
    solution : str
        The solution's code, ending with the checker call.
    check : str
        The checker call, the last statement of ``solution``: the public test.
    hidden : tuple of str
        Code of the hidden tests.
    manual : bool
        An argument graded by hand: no answer, solution or check code; the
        solution text is the model answer with its rubric.
    """

    label: str
    number: str
    statement: str
    answer: str
    solution_text: str
    solution: str
    check: str
    hidden: tuple[str, ...] = ()
    manual: bool = False

    @property
    def answer_names(self) -> list[str]:
        """The variables the answer cell defines, in order."""
        return _assigned(self.answer)


def _assigned(code: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    return names


def _free_names(code: str) -> list[str]:
    """Names a piece of code reads but does not define itself (builtins excluded)."""
    tree = ast.parse(code)
    stored = set(_assigned(code))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            stored |= {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.comprehension):
            stored |= set(_assigned(ast.unparse(node.target) + " = 0"))
    names = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and node.id not in stored and not hasattr(builtins, node.id)
                and node.id not in names):  # fmt: skip
            names.append(node.id)
    return names


def chapter_name(source: str | os.PathLike) -> str:
    """``"01_diffraction"`` for ``book/01_diffraction.md``."""
    return Path(source).stem


def _chapter_number(source) -> int:
    match = re.match(r"(\d+)_", chapter_name(source))
    if not match:
        raise ValueError(f"{source}: a chapter file name starts with its number, e.g. 01_name.md")
    return int(match.group(1))


def _split_markdown(text: str) -> list[tuple[str, str, dict]]:
    """A Markdown cell as ``("text", md, {})`` and ``(directive, argument, options)`` parts."""
    parts, position = [], 0
    for match in _FENCE.finditer(text):
        before = text[position : match.start()].strip("\n")
        if before.strip():
            parts.append(("text", before, {}))
        options = dict(
            line[1:].split(":", 1) for line in match.group(3).splitlines() if line.startswith(":")
        )
        options = {k.strip(): v.strip() for k, v in options.items()}
        parts.append((match.group(1), match.group(2).strip(), options))
        position = match.end()
    after = text[position:].strip("\n")
    if after.strip():
        parts.append(("text", after, {}))
    return parts


def parse(source: str | os.PathLike):
    """A chapter's cells, with every exercise gathered into an :class:`Exercise`.

    Returns
    -------
    notebook : nbformat.NotebookNode
        The chapter as jupytext reads it (metadata, kernelspec).
    layout : list
        In order: notebook cells outside the exercises, and :class:`Exercise`
        objects where each exercise stands (its solution folded into it).

    Raises
    ------
    ValueError
        If an exercise does not follow the pattern in the module docstring; the
        message names the chapter and the exercise.
    """
    import jupytext
    from nbformat.v4 import new_markdown_cell

    notebook = jupytext.read(source)
    chapter = _chapter_number(source)
    layout, state, current = [], "outside", {}

    def fail(why: str):
        raise ValueError(f"{source}: exercise {current.get('label', '?')!r}: {why}")

    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for kind, value, options in _split_markdown(cell.source):
                if kind == "text":
                    if state == "outside":
                        layout.append(new_markdown_cell(value))
                    elif state == "exercise":
                        current["statement"].append(value)
                    elif state == "solution":
                        current["solution_text"].append(value)
                    else:
                        fail(f"text between exercise-end and solution-start: {value[:40]!r}")
                elif kind == "exercise-start":
                    if state != "outside":
                        fail("exercise-start inside another exercise")
                    if "label" not in options:
                        raise ValueError(f"{source}: an exercise-start without a :label:")
                    current = {"label": options["label"], "statement": [], "answer": [],
                               "solution_text": [], "solution": [], "hidden": []}  # fmt: skip
                    state = "exercise"
                elif kind == "exercise-end":
                    if state != "exercise":
                        fail("exercise-end without exercise-start")
                    state = "between"
                elif kind == "solution-start":
                    if state != "between" or value != current["label"]:
                        fail(f"solution-start {value!r} does not follow its exercise")
                    state = "solution"
                elif kind == "solution-end":
                    if state != "solution":
                        fail("solution-end without solution-start")
                    layout.append(_exercise(current, f"{chapter}.{_count(layout) + 1}", fail))
                    state = "outside"
            continue
        if state == "outside":
            layout.append(cell)
        elif state == "exercise":
            current["answer"].append(cell.source)
        elif state == "solution":
            tags = cell.metadata.get("tags", [])
            (current["hidden"] if HIDDEN_TEST_TAG in tags else current["solution"]).append(
                cell.source
            )
        else:
            fail("a code cell between exercise-end and solution-start")
    if state != "outside":
        fail("not closed by solution-end")
    return notebook, layout


def _count(layout) -> int:
    return sum(isinstance(item, Exercise) for item in layout)


def _exercise(parts: dict, number: str, fail) -> Exercise:
    if not (parts["answer"] or parts["solution"] or parts["hidden"]):  # an argument
        text = "\n\n".join(parts["solution_text"])
        if RUBRIC not in text:
            fail(f"a free-response exercise needs a model answer and a {RUBRIC} paragraph")
        return Exercise(label=parts["label"], number=number,
                        statement="\n\n".join(parts["statement"]), answer="",
                        solution_text=text, solution="", check="", manual=True)  # fmt: skip
    if len(parts["answer"]) != 1 or len(parts["solution"]) != 1:
        fail(
            f"expected one answer cell and one solution cell (besides {HIDDEN_TEST_TAG!r} "
            f"cells), found {len(parts['answer'])} and {len(parts['solution'])}"
        )
    answer, solution = parts["answer"][0], parts["solution"][0]
    if "..." not in answer:
        fail("the answer cell sets no variable to the ... placeholder")
    body = ast.parse(solution).body
    last = body[-1] if body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func).startswith("checks.check_")):  # fmt: skip
        fail("the solution's last statement must be a call checks.check_...(...)")
    check = ast.get_source_segment(solution, last)
    names = set(_assigned(answer))
    helpers = set(_assigned(solution)) - names
    leaked = sorted(helpers & set(_free_names(check)))
    if leaked:
        fail(f"the checker call reads {leaked}, which only the solution defines")
    if not names & set(_free_names(check)):
        fail(f"the checker call does not read the answer variables {sorted(names)}")
    return Exercise(
        label=parts["label"],
        number=number,
        statement="\n\n".join(parts["statement"]),
        answer=answer,
        solution_text="\n\n".join(parts["solution_text"]),
        solution=solution,
        check=check,
        hidden=tuple(parts["hidden"]),
    )


def exercises(source: str | os.PathLike) -> list[Exercise]:
    """The exercises of one chapter source, in order."""
    return [item for item in parse(source)[1] if isinstance(item, Exercise)]


def _test_function(name: str, code: str) -> str:
    """An otter test function that runs ``code`` with the names it reads from the notebook."""
    arguments = ", ".join(_free_names(code))
    return f"def {name}({arguments}):\n{textwrap.indent(code.strip(), '    ')}\n"


def _raw(text: str):
    from nbformat.v4 import new_raw_cell

    return new_raw_cell(text)


def master_notebook(source: str | os.PathLike, requirements: str | None = None):
    """The otter-grader master notebook of one chapter source.

    Its text is what Jupyter and Colab render (:mod:`crystal_course.markdown`):
    no MyST syntax, and every glued number filled in by a hidden cell from the
    student's own run.

    Parameters
    ----------
    source : path-like
        A chapter source, ``book/NN_name.md``, in a book with a ``_config.yml``
        above it.
    requirements : str, optional
        Path (relative to where the master notebook is written) of the
        requirements file the autograder installs on Gradescope.

    Returns
    -------
    nbformat.NotebookNode
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell

    from crystal_course import markdown

    notebook, layout = parse(source)
    ctx = markdown.context(source)
    name = chapter_name(source)
    config = {
        "name": name,
        "init_cell": False,
        "check_all_cell": False,
        "export_cell": False,
        "run_tests": False,
        "tests": {"files": True, "ok_format": False},
        "generate": {"show_stdout": True, "show_hidden": False},
    }
    if requirements:
        config["requirements"] = requirements
    cells = [_raw("# ASSIGNMENT CONFIG\n" + json.dumps(config, indent=1))]
    initialised = False
    for item in layout:
        if not isinstance(item, Exercise):
            if item.cell_type == "markdown":
                cells += markdown.notebook_cells(item.source, ctx)
            else:
                cells.append(item)
            continue
        if not initialised:
            cells.append(new_code_cell(_INIT_SOURCE.format(name=name)))
            initialised = True
        statement = markdown.convert(item.statement, ctx)
        if item.manual:
            question = {"name": item.label, "manual": True, "points": MANUAL_POINTS}
            cells.append(_raw("# BEGIN QUESTION\n" + json.dumps(question)))
            cells.append(
                new_markdown_cell(
                    f"**Exercise {item.number}** (an argument, graded by hand). {statement}"
                )
            )
            cells += [_raw("# BEGIN SOLUTION"),
                      new_markdown_cell(markdown.convert(item.solution_text, ctx)),
                      _raw("# END SOLUTION"), _raw("# END QUESTION")]  # fmt: skip
            continue
        question = {"name": item.label, "points": POINTS, "all_or_nothing": True}
        cells.append(_raw("# BEGIN QUESTION\n" + json.dumps(question)))
        cells.append(new_markdown_cell(f"**Exercise {item.number}.** {statement}"))
        cells += [_raw("# BEGIN PROMPT"), new_code_cell(item.answer), _raw("# END PROMPT")]
        cells.append(_raw("# BEGIN SOLUTION"))
        if item.solution_text:
            cells.append(new_markdown_cell(markdown.convert(item.solution_text, ctx)))
        solution = f"# BEGIN SOLUTION NO PROMPT\n{item.solution}\n# END SOLUTION"
        cells += [new_code_cell(solution), _raw("# END SOLUTION"), _raw("# BEGIN TESTS")]
        cells.append(new_code_cell(_test_function("test_checker", item.check)))
        for k, hidden in enumerate(item.hidden):
            config_lines = '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
            cells.append(new_code_cell(config_lines + _test_function(f"test_hidden_{k}", hidden)))
        cells += [_raw("# END TESTS"), _raw("# END QUESTION")]
    master = nbformat.v4.new_notebook(cells=cells, metadata=dict(notebook.metadata))
    master.metadata.pop("jupytext", None)
    return master


def tests_dir(chapter: str) -> str:
    """Directory of a chapter's public tests, shipped with the package.

    Parameters
    ----------
    chapter : str
        The chapter's file name without suffix, e.g. ``"01_diffraction"``.
    """
    path = TESTS_PACKAGE_DIR / chapter
    if not path.is_dir():
        known = (
            sorted(p.name for p in TESTS_PACKAGE_DIR.iterdir())
            if TESTS_PACKAGE_DIR.is_dir()
            else []
        )
        raise ValueError(f"no exercise checks for chapter {chapter!r}; known: {known}")
    return str(path)


def _normalised(notebook) -> str:
    """A notebook as deterministic, output-free JSON text (ids by position)."""
    import nbformat

    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return nbformat.writes(notebook) + "\n"


def assign(source: str | os.PathLike, out_dir: str | os.PathLike,
           requirements: str | None = None) -> dict[str, Path]:  # fmt: skip
    """Run Otter Assign on one chapter; write the student, instructor and autograder files.

    Parameters
    ----------
    source : path-like
        ``book/NN_name.md``.
    out_dir : path-like
        Receives ``student/NN_name.ipynb``, ``student/tests/NN_name/*.py`` (the
        public tests), ``instructor/NN_name.ipynb`` and
        ``autograder/NN_name-autograder.zip``.
    requirements : str, optional
        Contents of the requirements file the autograder installs (Gradescope).

    Returns
    -------
    dict
        ``{"student", "instructor", "autograder", "tests"}`` paths.
    """
    import nbformat
    from otter.assign import main as otter_assign

    name = chapter_name(source)
    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        req = None
        if requirements:
            (work / "requirements.txt").write_text(requirements)
            req = "requirements.txt"
        nbformat.write(master_notebook(source, req), work / f"{name}.ipynb")
        _quiet(otter_assign, str(work / f"{name}.ipynb"), str(work / "dist"), no_pdfs=True,
               no_run_tests=True)  # fmt: skip
        dist = work / "dist"
        paths = {
            "student": out / "student" / f"{name}.ipynb",
            "instructor": out / "instructor" / f"{name}.ipynb",
            "autograder": out / "autograder" / f"{name}-autograder.zip",
            "tests": out / "student" / "tests" / name,
        }
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        student = nbformat.read(dist / "student" / f"{name}.ipynb", as_version=4)
        student.cells = [c for c in student.cells  # what is left of the solution cells
                         if not (c.cell_type == "code" and not c.source.strip())]  # fmt: skip
        _write_atomic(paths["student"], _normalised(student))
        instructor = nbformat.read(dist / "autograder" / f"{name}.ipynb", as_version=4)
        _write_atomic(paths["instructor"], _normalised(instructor))
        (zipped,) = (dist / "autograder").glob("*.zip")
        shutil.copyfile(zipped, paths["autograder"])
        shutil.rmtree(paths["tests"], ignore_errors=True)
        shutil.copytree(dist / "student" / "tests", paths["tests"])
    return paths


def _quiet(function, *args, **kwargs):
    """Run ``function`` with its standard output (otter's banners) discarded."""
    from contextlib import redirect_stdout

    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        return function(*args, **kwargs)


def check_project(config_path: str | os.PathLike, book_dir: str | os.PathLike) -> Path:
    """The project a command writes into, checked before it writes anything.

    ``config_path`` must be a readable Jupyter Book configuration with a title, beside
    the course's ``crystal_course`` package (where the shipped tests go), and
    ``book_dir`` a folder of that project holding chapter sources.

    Returns
    -------
    pathlib.Path
        The project's root folder.

    Raises
    ------
    ValueError
        Naming the file or folder and what it should be.
    """
    import yaml

    from crystal_course.notebooks import chapter_sources

    config = Path(config_path)
    if not config.is_file():
        raise ValueError(f"{config} not found: give the course's _config.yml")
    try:
        content = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(
            f"{config} is not a readable Jupyter Book configuration (not YAML{where})"
        ) from None
    if not isinstance(content, dict) or "title" not in content:
        raise ValueError(f"{config} is not a Jupyter Book configuration (it has no title)")
    root = config.resolve().parent
    if not (root / "crystal_course" / "__init__.py").is_file():
        raise ValueError(
            f"{config} is not the course's own configuration: {root} holds no crystal_course "
            "package for the shipped tests"
        )
    book = Path(book_dir).resolve()
    if not (book.is_dir() and book.is_relative_to(root)):
        raise ValueError(f"book_dir {book_dir} must be a folder of the project {root}")
    if not chapter_sources(book):
        raise ValueError(f"book_dir {book_dir} holds no chapter sources (NN_name.md notebooks)")
    return root


def sync(config_path: str | os.PathLike, book_dir: str | os.PathLike) -> list[Path]:
    """Regenerate every chapter's Colab cell, student twin and shipped public tests
    (``make notebooks``).

    Returns
    -------
    list of pathlib.Path
        The files that changed.

    Raises
    ------
    ValueError
        Before writing anything, if :func:`check_project` refuses the paths.
    """
    from crystal_course.notebooks import chapter_sources, sync_colab_cells

    check_project(config_path, book_dir)
    changed = sync_colab_cells(config_path, book_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for source in chapter_sources(book_dir):
            paths = assign(source, tmp)
            twin = Path(source).with_suffix(".ipynb")
            text = paths["student"].read_text(encoding="utf-8")
            if not twin.exists() or twin.read_text(encoding="utf-8") != text:
                _write_atomic(twin, text)
                changed.append(twin)
            shipped = shipped_tests_root(config_path) / chapter_name(source)
            if _tree(shipped) != _tree(paths["tests"]):
                shutil.rmtree(shipped, ignore_errors=True)
                shutil.copytree(paths["tests"], shipped)
                changed.append(shipped)
    return changed


def check(config_path: str | os.PathLike, book_dir: str | os.PathLike) -> list[str]:
    """Problems that :func:`sync` would fix, one sentence each (empty: in sync).

    The Colab cells and twin files (:func:`crystal_course.notebooks.colab_problems`),
    then every twin against the student edition of its source and the shipped public
    tests against the exercises.
    """
    from crystal_course.notebooks import chapter_sources, colab_problems

    problems = colab_problems(config_path, book_dir)
    for source in chapter_sources(book_dir):
        twin = source.with_suffix(".ipynb")
        if not twin.exists():
            continue  # already named
        student, tests = student_text(source)
        if twin.read_text(encoding="utf-8") != student:
            problems.append(f"{twin}: out of sync with {source.name}")
        if _tree(shipped_tests_root(config_path) / source.stem) != tests:
            problems.append(f"the shipped exercise checks of {source.stem} are out of sync")
    return problems


def shipped_tests_root(config_path: str | os.PathLike) -> Path:
    """Where the repository of ``_config.yml`` keeps the public tests the package ships."""
    return Path(config_path).resolve().parent / "crystal_course" / "data" / "exercises"


def _tree(path: Path) -> dict[str, bytes]:
    if not path.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(path.glob("*.py"))}


def student_text(source: str | os.PathLike) -> tuple[str, dict[str, bytes]]:
    """The exact text of a chapter's student twin, and its public test files."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = assign(source, tmp)
        return paths["student"].read_text(encoding="utf-8"), _tree(paths["tests"])


def requirements_text(config_path: str | os.PathLike) -> str:
    """What the autograder installs on Gradescope: this release of the package, CPU TensorFlow."""
    from crystal_course.notebooks import release_tag, repository_url

    return f"crystal_course[cpu] @ git+{repository_url(config_path)}@{release_tag()}\n"


def build(config_path: str | os.PathLike, book_dir: str | os.PathLike,
          out_dir: str | os.PathLike) -> list[dict[str, Path]]:  # fmt: skip
    """Every chapter's assignment under ``out_dir`` (``make assignments``)."""
    from crystal_course.notebooks import chapter_sources

    check_project(config_path, book_dir)
    requirements = requirements_text(config_path)
    return [assign(source, out_dir, requirements) for source in chapter_sources(book_dir)]


def grade(autograder: str | os.PathLike, submissions, debug: bool = False) -> list[dict]:
    """Grade notebooks with an autograder zip, locally, without Docker.

    Parameters
    ----------
    autograder : path-like
        ``NN_name-autograder.zip`` from :func:`assign`.
    submissions : path-like or list of path-like
        A notebook, a directory of notebooks, or a list of notebooks.
    debug : bool, default False
        Stop at the first error in a submission instead of grading around it.

    Returns
    -------
    list of dict
        One row per submission: ``file``, ``total``, ``possible`` and the score of
        every question.
    """
    from otter.api import grade_submission

    autograder = Path(autograder)
    if not autograder.is_file() or autograder.suffix != ".zip":
        raise ValueError(f"{autograder}: expected an autograder .zip made by 'build'")
    if isinstance(submissions, (str, os.PathLike)):
        path = Path(submissions)
        files = sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    else:
        files = [Path(p) for p in submissions]
    if not files:
        raise ValueError(f"no .ipynb submissions in {submissions}")
    rows = []
    for file in files:
        results = grade_submission(str(file), str(autograder), quiet=True, debug=debug)
        row = {"file": file.name, "total": results.total, "possible": results.possible}
        row.update({q: r.score for q, r in sorted(results.results.items())})
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crystal_course.assignments")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sync", help="regenerate the Colab cells, student twins and shipped tests")
    p.add_argument("config")
    p.add_argument("book_dir")
    p = sub.add_parser("check", help="report what sync would change (exit 1 if anything)")
    p.add_argument("config")
    p.add_argument("book_dir")
    p = sub.add_parser("build", help="student, instructor and autograder files of every chapter")
    p.add_argument("config")
    p.add_argument("book_dir")
    p.add_argument("out_dir")
    p = sub.add_parser("grade", help="grade a folder of submissions with an autograder zip")
    p.add_argument("autograder")
    p.add_argument("submissions", help="a notebook or a directory of notebooks")
    p.add_argument("-o", "--output", help="CSV file of the scores (default: print them)")
    args = parser.parse_args(argv)
    if args.command in ("sync", "check", "build"):
        try:
            check_project(args.config, args.book_dir)
        except ValueError as error:
            parser.error(str(error))
    if args.command == "sync":
        for path in sync(args.config, args.book_dir):
            print(f"wrote {path}")
        return 0
    if args.command == "check":
        problems = check(args.config, args.book_dir)
        print("\n".join(problems) or "notebooks in sync")
        return 1 if problems else 0
    if args.command == "build":
        for paths in build(args.config, args.book_dir, args.out_dir):
            print("wrote", ", ".join(str(p) for p in paths.values()))
        return 0
    try:
        rows = grade(args.autograder, args.submissions)
    except ValueError as error:
        parser.error(str(error))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    handle = open(args.output, "w", newline="") if args.output else sys.stdout
    writer = csv.DictWriter(handle, columns)
    writer.writeheader()
    writer.writerows(rows)
    if args.output:
        handle.close()
        print(f"wrote {args.output}: {len(rows)} submissions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
