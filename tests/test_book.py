"""Static checks of the book: toc, config, glue keys, citations, chapter shape."""

from __future__ import annotations

import re

import jupytext
import yaml

from crystal_course import notebooks


def _toc_files(root):
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_toc_entries_exist_and_every_chapter_is_listed(root):
    files = _toc_files(root)
    for name in files:
        assert (root / f"{name}.md").exists(), f"_toc.yml names a missing file {name}"
    listed = {root / f"{f}.md" for f in files}
    for source in notebooks.chapter_sources(root / "book"):
        assert source in listed, f"{source.name} is not in _toc.yml"


def test_config_has_the_settings_the_course_relies_on(root):
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert "book/*.ipynb" in config["exclude_patterns"]
    assert config["execute"]["stderr_output"] == "remove"
    assert 0 < config["execute"]["timeout"] <= 1800
    assert config["execute"]["allow_errors"] is False
    assert config["launch_buttons"]["colab_url"].startswith("https://colab")
    assert config["repository"]["url"].startswith("https://")
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    assert config["bibtex_bibfiles"] == ["references.bib"]


def _glued_keys(text):
    return set(re.findall(r"""glue\(\s*["']([^"']+)["']""", text))


def _glue_references(text):
    return set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", text))


def test_every_glue_reference_is_glued_in_its_chapter(root):
    """The no-execution build silences glue warnings, so the keys are checked here."""
    for source in notebooks.chapter_sources(root / "book"):
        text = source.read_text()
        missing = _glue_references(text) - _glued_keys(text)
        assert not missing, f"{source.name}: glue references without glue(): {missing}"


def test_every_citation_is_in_references_bib(root):
    keys = set(re.findall(r"@\w+\{([^,]+),", (root / "references.bib").read_text()))
    for page in (root / "book").glob("*.md"):
        cited = set()
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text()):
            cited |= {k.strip() for k in group.split(",")}
        assert cited <= keys, f"{page.name}: unknown citation keys {cited - keys}"
    for required in ("ziletti2018", "tiong2020", "kumar2016", "togo2024", "larsen2017"):
        assert required in keys


def test_chapters_follow_the_course_shape(root):
    for source in notebooks.chapter_sources(root / "book"):
        text = source.read_text()
        nb = jupytext.read(source)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert "Learning objectives" in text, source.name
        assert "config.banner()" in code[1], f"{source.name}: banner must be printed first"
        hidden = [
            c
            for c in nb.cells
            if "remove-cell" in c.metadata.get("tags", []) and "assert " in c.source
        ]
        assert hidden, f"{source.name}: no hidden assertion cell"
        exercises = re.findall(r"```\{exercise-start\}\n:label: ([\w-]+)", text)
        solutions = re.findall(r"```\{solution-start\} ([\w-]+)", text)
        assert exercises and sorted(exercises) == sorted(solutions), source.name
        # Each solution ends by calling its checker, or is an argument with its rubric.
        for label in solutions:
            block = text.split(f"```{{solution-start}} {label}", 1)[1].split("```{solution-end}")[0]
            assert "checks.check_" in block or (
                "**Rubric.**" in block and "{code-cell}" not in block
            ), f"{source.name}: solution {label} has neither a checker nor a rubric"


def test_chapters_glue_through_the_numpy_safe_wrapper(root):
    """myst_nb.glue of a NumPy scalar renders as 'np.float64(...)' and breaks `make book`."""
    for source in notebooks.chapter_sources(root / "book"):
        text = source.read_text()
        assert "from myst_nb import glue" not in text, source.name
        if "glue(" in text:
            assert "from crystal_course.notebooks import glue" in text, source.name


def test_glue_wrapper_converts_numpy_scalars(monkeypatch):
    import myst_nb
    import numpy as np

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    notebooks.glue("x", np.float64(2.5))
    notebooks.glue("n", np.int64(3))
    notebooks.glue("s", "text")
    assert seen == {"x": 2.5, "n": 3, "s": "text"}
    assert type(seen["x"]) is float and type(seen["n"]) is int


def test_citation_file_names_this_version(root):
    import yaml

    import crystal_course

    citation = yaml.safe_load((root / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == crystal_course.__version__
    dois = {ref["doi"] for ref in citation["references"]}
    bib = (root / "references.bib").read_text()
    assert dois and all(doi in bib for doi in dois)  # the papers the course reproduces


def test_pages_workflow_builds_with_make_book_and_deploys(root):
    """Publishing runs the same build and browser test as a developer's `make book`."""
    import yaml

    workflow = yaml.safe_load((root / ".github/workflows/pages.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert "main" in triggers["push"]["branches"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run", "").startswith("make book") for step in build)
    upload = next(s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
