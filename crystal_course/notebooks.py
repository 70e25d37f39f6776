"""The book's notebook pipeline: MyST sources, Colab twins and the Colab cell.

Chapter sources are jupytext MyST-markdown notebooks ``book/*.md``; each has an
output-free ``.ipynb`` twin beside it, committed for Colab and Binder: the
chapter's student edition, without the exercises' solutions
(:mod:`crystal_course.assignments`). The chapters with their solutions are
written to ``_build/chapters`` for nbval. The repository URL is
set once, in ``_config.yml``, and the version once, in ``crystal_course/__init__.py``;
the first code cell of every chapter installs the package from that repository at
that release's tag when (and only when) the notebook runs on Colab.

Command line (used by the Makefile)::

    python -m crystal_course.notebooks full book _build/chapters  # with solutions, for nbval
    python -m crystal_course.notebooks noexec-config _config.yml out.yml
    python -m crystal_course.notebooks check-links _build/html book   # Colab buttons

The student twins themselves, and the whole project's sync and drift check, are
:mod:`crystal_course.assignments`' (which uses this module, never the other way).

Apart from :func:`glue`, which every chapter calls and which works anywhere, this
module needs the ``book`` extra (jupytext, PyYAML). Introduced in the introduction
("Running the course").
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

COLAB_TAG = "colab-install"
"""Tag that marks the generated Colab install cell."""

COLAB_TAGS = ["remove-cell", "skip-execution", "nbval-skip", COLAB_TAG]
"""Tags of the Colab cell: hidden on the website, skipped by the build and nbval."""

_COLAB_TEMPLATE = """\
# Colab only: install the course package at the release this notebook belongs to
# (does nothing anywhere else).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "crystal_course @ git+{url}@{tag}"],
        check=True,
    )"""


GLUED: dict[str, object] = {}
"""Every value this kernel glued with :func:`glue`, by name (what :func:`render` fills in)."""

PENDING = "*(computed below)*"
"""What a rendered text shows where its value is glued by a later cell (until it is)."""

FIELD = re.compile(r"⟨([A-Za-z_][A-Za-z0-9_]*)(?::([^⟩]*))?⟩")
"""A value in a student edition's text: ``⟨name⟩`` or ``⟨name:format⟩``.

The student editions write the website's ``{glue:text}`name:format``` role this
way (:mod:`crystal_course.markdown`): plain to a reader of the cell's source, and
with no MyST syntax a notebook would show raw."""

_WAITING: list = []  # (template, display handle) of texts still missing a value


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` for numbers computed with NumPy, that also works outside the website.

    NumPy scalars are converted to Python numbers first: glued as they are,
    their text form is ``np.float64(...)``, which ``{glue:text}`name:.1f```
    cannot format (a build warning, so a ``-W`` build fails). The value is also
    kept in :data:`GLUED`, so that the student editions' text cells
    (:func:`show`) show this run's numbers, and a text shown before the value
    existed is updated in place.

    Notes
    -----
    Introduced in Chapter 1; every chapter glues its numbers with it.
    """
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    GLUED[name] = value
    for entry in list(_WAITING):
        template, handle = entry
        if name in _names(template):
            text, missing = _render(template, GLUED)
            handle.update(_markdown(text))
            if not missing:
                _WAITING.remove(entry)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        # Colab or a plain Jupyter: no website build to glue into. The value stays
        # in the notebook's variables; show it only where the page would have.
        if display:
            from IPython.display import display as show

            show(value)
        return None
    return myst_glue(name, value, display=display)


def format_glued(value, spec: str = "") -> str:
    """A glued value as ``{glue:text}`name:spec``` shows it on the website.

    Like myst-nb: the type character of ``spec`` converts the value first
    (``d`` to int, ``f``/``e``/``g``/``%`` to float, ``s`` to str), then
    :func:`format` applies ``spec``; no spec gives ``str(value)``.
    """
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def field(name: str, spec: str = "") -> str:
    """The :data:`FIELD` that stands for a glued value in a student edition's text."""
    return f"⟨{name}:{spec}⟩" if spec else f"⟨{name}⟩"


def _names(template: str) -> set[str]:
    return {m.group(1) for m in FIELD.finditer(template)}


def _render(template: str, values) -> tuple[str, list[str]]:
    missing = []

    def fill(match) -> str:
        name, spec = match.group(1), match.group(2) or ""
        if name not in values:
            missing.append(name)
            return PENDING
        return format_glued(values[name], spec)

    return FIELD.sub(fill, template), missing


def render(template: str, values=None) -> str:
    """Markdown with every :data:`FIELD` (``⟨name:format⟩``) replaced by its glued value.

    Parameters
    ----------
    template : str
        Markdown (a chapter's text, converted by :mod:`crystal_course.markdown`).
    values : mapping, optional
        Name -> value; default :data:`GLUED`, what this kernel glued so far.

    Raises
    ------
    KeyError
        If a name was never glued; the message lists the missing names.
    """
    text, missing = _render(template, GLUED if values is None else values)
    if missing:
        raise KeyError(f"not glued (yet): {', '.join(sorted(set(missing)))}")
    return text


def _markdown(text: str):
    from IPython.display import Markdown

    return Markdown(text)


def show(template: str) -> None:
    """Display a chapter's text with this run's glued values (the student editions).

    A value that a later cell glues shows as :data:`PENDING` until :func:`glue`
    records it; then the text is updated in place (a display id), as the
    website shows it. Returns nothing, so that the cell shows only the text.
    """
    from IPython.display import display

    text, missing = _render(template, GLUED)
    handle = display(_markdown(text), display_id=True)
    if missing and handle is not None:
        _WAITING.append((template, handle))


def repository_url(config_path: str | os.PathLike) -> str:
    """The repository URL from a Jupyter Book ``_config.yml``.

    Raises
    ------
    ValueError
        If the file has no ``repository.url`` entry.
    """
    import yaml

    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    url = (config.get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{config_path}: expected a 'repository: url:' entry, found none")
    return str(url).rstrip("/")


def release_tag(version: str | None = None) -> str:
    """The git tag of a release: ``v`` + the package version (default: this one's).

    The version is set once, in ``crystal_course/__init__.py``; ``make notebooks``
    writes the matching tag into every chapter's Colab cell, so a notebook installs
    the package it was written for, not whatever the default branch holds today.
    """
    if version is None:
        from crystal_course import __version__ as version
    return f"v{version}"


def colab_cell_source(url: str, tag: str | None = None) -> str:
    """Source of the Colab install cell for a repository URL and release tag."""
    return _COLAB_TEMPLATE.format(url=url, tag=tag or release_tag())


def chapter_sources(book_dir: str | os.PathLike) -> list[Path]:
    """The MyST-notebook chapter sources in ``book_dir`` (sorted).

    A ``.md`` file is a notebook when its front matter names a ``kernelspec``;
    plain pages (introduction, references) have no twin.
    """
    sources = []
    for path in sorted(Path(book_dir).glob("*.md")):
        head = path.read_text(encoding="utf-8").split("\n---", 1)[0]
        if path.read_text(encoding="utf-8").startswith("---") and "kernelspec:" in head:
            sources.append(path)
    return sources


def _colab_cells(notebook) -> list:
    return [c for c in notebook.cells if COLAB_TAG in c.get("metadata", {}).get("tags", [])]


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def twin_text(source: Path) -> str:
    """``source`` as an output-free ``.ipynb`` with its solutions (what nbval runs)."""
    import jupytext

    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # deterministic ids: the twin is a pure function of the source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return jupytext.writes(notebook, fmt="ipynb")


def sync_colab_cells(config_path: str | os.PathLike, book_dir: str | os.PathLike) -> list[Path]:
    """Rewrite the Colab cell of every chapter source from ``_config.yml`` and the version,
    and the statistics primer's worked example (:func:`statistics_example`).

    :func:`crystal_course.assignments.sync` calls it first, then writes the student
    twins (``make notebooks``).

    Returns
    -------
    list of pathlib.Path
        The sources that changed.

    Raises
    ------
    ValueError
        If a chapter does not have exactly one Colab cell (tag ``colab-install``).
    """
    import jupytext

    expected = colab_cell_source(repository_url(config_path))
    changed = []
    for source in chapter_sources(book_dir):
        notebook = jupytext.read(source)
        cells = _colab_cells(notebook)
        if len(cells) != 1:
            raise ValueError(
                f"{source}: expected exactly one code cell tagged {COLAB_TAG!r}, found {len(cells)}"
            )
        if cells[0].source != expected:
            cells[0].source = expected
            _write_atomic(source, jupytext.writes(notebook, fmt="md:myst"))
            changed.append(source)
    example = Path(book_dir) / STATISTICS_EXAMPLE
    text = statistics_example()
    if not example.exists() or example.read_text(encoding="utf-8") != text:
        example.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(example, text)
        changed.append(example)
    return changed


def colab_problems(config_path: str | os.PathLike, book_dir: str | os.PathLike) -> list[str]:
    """Problems of the Colab cells, of the twins as files and of the primer's worked
    example, one sentence each.

    A Colab cell that ``_config.yml`` and the package version do not imply, a missing
    twin, a twin with outputs, a twin without a source. Whether a twin's content is the
    student edition is :func:`crystal_course.assignments.check`'s part.
    """
    import json

    import jupytext

    expected = colab_cell_source(repository_url(config_path))
    problems = []
    for source in chapter_sources(book_dir):
        cells = _colab_cells(jupytext.read(source))
        if len(cells) != 1 or cells[0].source != expected:
            problems.append(
                f"{source}: Colab cell differs from the one _config.yml and the package "
                f"version ({release_tag()}) imply"
            )
        twin = source.with_suffix(".ipynb")
        if not twin.exists():
            problems.append(f"{twin}: missing twin")
            continue
        for cell in json.loads(twin.read_text(encoding="utf-8"))["cells"]:
            if cell.get("outputs") or cell.get("execution_count") is not None:
                problems.append(f"{twin}: carries outputs (twins must be output-free)")
                break
    for twin in sorted(Path(book_dir).glob("*.ipynb")):
        if not twin.with_suffix(".md").exists():
            problems.append(f"{twin}: has no .md source")
    example = Path(book_dir) / STATISTICS_EXAMPLE
    if not example.exists() or example.read_text(encoding="utf-8") != statistics_example():
        problems.append(f"{example}: out of date with the first results card (Chapter 7)")
    return problems


STATISTICS_EXAMPLE = "_generated/statistics_example.md"
"""The worked example of the statistics primer (``book/statistics.md`` includes it),
relative to the book folder; written by :func:`statistics_example` from the shipped
first results card (Chapter 7)."""


def statistics_example(card: dict | None = None) -> str:
    """The statistics primer's worked example, as Markdown, from the first results card (Chapter 7).

    Spots + CNN against grey-shaped + MSDN on the same test crystals (20 groups), first for
    one seed (Wilson intervals, whether they overlap, then the paired test), then over
    every seed of the card. Every number and every verdict in the text is computed
    here (:mod:`crystal_course.uncertainty`); ``make notebooks`` writes the file, and
    the drift check reports a stale one.

    Parameters
    ----------
    card : dict, optional
        A results card of :mod:`crystal_course.reproduction` (default: the shipped one).

    Notes
    -----
    Introduced in the statistics primer (``book/statistics.md``).
    """
    from crystal_course import reproduction
    from crystal_course.uncertainty import paired_test, wilson

    card = reproduction.card() if card is None else card
    a = reproduction.card_correct(card, "spots", "cnn")
    b = reproduction.card_correct(card, "grey", "msdn")
    if a.size == 0 or b.size == 0 or a.shape != b.shape:
        raise ValueError("the card needs spots+cnn and grey+msdn runs on the same seeds")
    n = a.shape[1]
    first_a, first_b = wilson(int(a[0].sum()), n), wilson(int(b[0].sum()), n)
    test = paired_test(a[0], b[0])
    overlap = "overlap" if first_a.overlaps(first_b) else "do not overlap"
    verdict = (
        "the paired test separates them" if test.apart() else "the paired test cannot separate them"
    )
    # "Yet" only where the marginal intervals and the paired test disagree.
    connector = "Yet" if first_a.overlaps(first_b) == test.apart() else "And"
    lines = [
        "| seed | spots + CNN | grey-shaped + MSDN | difference (points) | 95 % paired interval "
        "| only CNN right | only MSDN right | McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    apart = 0
    for seed, (x, y) in enumerate(zip(a, b, strict=True)):
        s = paired_test(x, y)
        apart += s.apart()
        lines.append(
            f"| {seed} | {wilson(int(x.sum()), n)} | {wilson(int(y.sum()), n)} "
            f"| {100 * s.difference:+.1f} | [{100 * s.low:+.1f}, {100 * s.high:+.1f}] "
            f"| {s.only_a} | {s.only_b} | {s.p_value:.2g} |"
        )
    spread_a = 100 * (a.mean(axis=1).max() - a.mean(axis=1).min())
    spread_b = 100 * (b.mean(axis=1).max() - b.mean(axis=1).min())
    width = 100 * (first_a.high - first_a.low)
    seeds = len(a)
    perfect = wilson(28, 28)
    return "\n".join([
        "<!-- Written by crystal_course.notebooks.statistics_example (make notebooks) from the "
        "first results card (Chapter 7). Do not edit. -->",
        "<!-- wilson -->",
        f"28 right out of 28 gives [{100 * perfect.low:.1f}, {100 * perfect.high:.0f}] %, so a "
        f"perfect score on a small test set only says \"at least about "
        f"{100 * perfect.low:.0f} %\".",
        "<!-- example -->",
        f"Chapter 7's first card compares two methods on the same {n} test crystals of 20 "
        "space groups. "
        f"For seed 0, spots + CNN scores {first_a} and grey-shaped + MSDN {first_b}: the two "
        f"Wilson intervals {overlap}. {connector} {verdict}: of the {test.only_a + test.only_b} "
        f"crystals only one method gets right, {test.only_a} go to the CNN and "
        f"{test.only_b} to the MSDN (McNemar's p = {test.p_value:.2g}), and the difference, "
        f"{100 * test.difference:+.1f} points, has the paired bootstrap interval "
        f"[{100 * test.low:+.1f}, {100 * test.high:+.1f}]. The crystals both get right or both "
        "get wrong carry no information about which is better, and the marginal intervals "
        "spend most of their width on them.",
        "",
        "Over the card's seeds:",
        "",
        *lines,
        "",
        f"The paired test separates the methods for {apart} of the {seeds} seeds. The seeds "
        f"move each method's accuracy by up to {spread_a:.1f} points (spots + CNN) and "
        f"{spread_b:.1f} points (grey-shaped + MSDN), against a Wilson interval {width:.1f} points "
        "wide for one run; a single seed cannot show that spread.",
        "",
    ])  # fmt: skip


def write_full_notebooks(book_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Every chapter with its solutions, as output-free ``.ipynb`` in ``out_dir``.

    These, not the student twins, are what nbval executes: every solution runs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in chapter_sources(book_dir):
        path = out / source.with_suffix(".ipynb").name
        text = twin_text(source)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            _write_atomic(path, text)
        written.append(path)
    return written


def check_launch_links(html_dir: str | os.PathLike, book_dir: str | os.PathLike) -> list[str]:
    """Problems with the Colab buttons of the built chapter pages (empty: all fine).

    Each chapter's page must link Colab to its ``.ipynb`` twin (the book theme
    falls back to the ``.md`` source when the twin is missing at build time).
    """
    import re

    problems = []
    for source in chapter_sources(book_dir):
        page = Path(html_dir) / Path(book_dir).name / f"{source.stem}.html"
        if not page.exists():
            problems.append(f"{page}: missing (was the book built?)")
            continue
        links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page.read_text())
        if not any(link.endswith(f"/{Path(book_dir).name}/{source.stem}.ipynb") for link in links):
            problems.append(f"{page}: no Colab link to {source.stem}.ipynb (found {links})")
    return problems


def write_noexec_config(config_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """Write a copy of ``_config.yml`` with notebook execution turned off.

    ``make test`` builds the book from it with ``-W`` to catch broken markup,
    references and toc entries without executing the chapters twice. Glued
    values do not exist without execution, so their warnings are silenced in
    this copy only; ``tests/test_book.py`` checks that every glue reference has
    a matching ``glue`` call in its chapter.
    """
    import yaml

    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx = config.setdefault("sphinx", {})
    sphinx_config = sphinx.setdefault("config", {}) or {}
    sphinx["config"] = sphinx_config
    suppress = list(sphinx_config.get("suppress_warnings", []))
    sphinx_config["suppress_warnings"] = suppress + ["mystnb.glue"]
    # Jupyter Book resolves local extensions against the config file's folder.
    here = Path(config_path).resolve().parent
    local = sphinx.get("local_extensions") or {}
    sphinx["local_extensions"] = {name: str(here / path) for name, path in local.items()}
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, yaml.safe_dump(config, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crystal_course.notebooks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-links")
    p.add_argument("html_dir")
    p.add_argument("book_dir")
    p = sub.add_parser("full")
    p.add_argument("book_dir")
    p.add_argument("out_dir")
    p = sub.add_parser("noexec-config")
    p.add_argument("config")
    p.add_argument("out")
    args = parser.parse_args(argv)
    if args.command == "full":
        write_full_notebooks(args.book_dir, args.out_dir)
        return 0
    if args.command == "check-links":
        problems = check_launch_links(args.html_dir, args.book_dir)
        print("\n".join(problems) or "every chapter page links Colab to its .ipynb")
        return 1 if problems else 0
    write_noexec_config(args.config, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
