"""MyST Markdown as Jupyter, Colab and VS Code render it: the text of the student editions.

The chapters are written once, in MyST (``book/*.md``), and the website renders
them with Sphinx. The ``.ipynb`` twins are read in Jupyter, Colab and VS Code,
which render CommonMark with LaTeX maths and nothing of MyST, so that every role
and directive would show as raw syntax and every glued number as a hole. This
module turns the MyST the chapters use into what those render:

==============================================  =============================================
MyST on the website                             in the notebooks
==============================================  =============================================
```` ```{admonition} Title ```` + ``:class:``    a blockquote headed by the title in bold
``{cite}`key```                                 "(Author et al., year)", linked to the
                                                website's references page
``{eq}`label``` / ``{numref}`` / ``{ref}``      the equation's number (or the text), linked
                                                to its place on the website
``$$ ... $$ (label)``                           ``$$ ... \\tag{n} $$``, numbered as on the page
``[text](02_dataset.md)``                       a link to that chapter's website page
``{glue:text}`name:.1f```                       ``⟨name:.1f⟩``, the value of this run,
                                                filled in by a hidden cell
                                                (:func:`notebook_cells`)
==============================================  =============================================

A Markdown cell that holds glue roles becomes a code cell with its input hidden
(Colab's form view) that calls :func:`crystal_course.notebooks.show` on the
converted text: the student's own run fills in the numbers, with the formats the
website applies.

Needs pybtex (the ``test`` extra) to read the bibliography. Introduced in the
introduction ("Running the course"); used by :mod:`crystal_course.assignments`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
"""A ``{glue:text}`name[:format]``` role; group 1 is ``name[:format]``."""

RENDER_TAG = "glued-text"
"""Tag of a code cell that renders a chapter's Markdown with this run's glued values."""

_ADMONITION = re.compile(r"^```\{admonition\}[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_LABELLED_MATH = re.compile(
    r"^\$\$[ \t]*\n(.*?)\n\$\$[ \t]*\(([A-Za-z0-9_:.-]+)\)[ \t]*$", re.M | re.S
)
_ROLE = re.compile(r"\{(cite|cite:p|cite:t|eq|numref|ref|doc)\}`([^`]*)`")
_PAGE_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([A-Za-z0-9_./-]+)\.(?:md|ipynb)(#[^)\s]*)?\)")
_TARGET = re.compile(r"^\(([A-Za-z0-9_-]+)\)=[ \t]*\n", re.M)
_LEFTOVER = re.compile(
    r"\{(?!glue:)[a-z][a-z0-9:_-]*\}`|^```\{|^:::\{|^\([A-Za-z0-9_-]+\)=\s*$", re.M
)


@dataclass(frozen=True)
class Context:
    """What converting one page needs to know.

    Attributes
    ----------
    website : str
        The website's base URL, ending in ``/`` (``html.baseurl`` of ``_config.yml``).
    page : str
        The page's path on the website without suffix, e.g. ``"book/01_diffraction"``.
    citations : dict
        Bibliography key -> author-year text, e.g. ``{"ziletti2018": "Ziletti et al., 2018"}``.
    equations : dict
        Equation label -> its number on the page (Sphinx numbers them per page).
    targets : dict
        Section label (``(label)=`` above a heading) -> the page that defines it, for
        ``{ref}`` roles that point into another page.
    """

    website: str
    page: str
    citations: dict[str, str] = field(default_factory=dict)
    equations: dict[str, int] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)

    def url(self, page: str | None = None, anchor: str = "") -> str:
        """The website address of ``page`` (default: this one), with an optional anchor."""
        return f"{self.website}{page or self.page}.html" + (f"#{anchor}" if anchor else "")


def citations(bib_path: str | os.PathLike) -> dict[str, str]:
    """Author-year labels of every entry of a BibTeX file, as the website cites them.

    One author: "Togo, 2024"; two: "Als-Nielsen and McMorrow, 2011"; more (or an
    author list ending in "others"): "Ziletti et al., 2018".

    Raises
    ------
    ValueError
        If an entry has no author or no year; the message names the entry.
    """
    from pybtex.database import parse_file

    labels = {}
    for key, entry in parse_file(str(bib_path)).entries.items():
        people = entry.persons.get("author", [])
        year = entry.fields.get("year")
        if not people or not year:
            raise ValueError(f"{bib_path}: entry {key!r} needs an author and a year")
        last = [" ".join(p.last_names) for p in people]
        if len(last) == 1:
            names = last[0]
        elif len(last) == 2 and last[1] != "others":
            names = f"{last[0]} and {last[1]}"
        else:
            names = f"{last[0]} et al."
        labels[key] = f"{names.replace('{', '').replace('}', '')}, {year}"
    return labels


def equation_numbers(markdown: str) -> dict[str, int]:
    """Label -> number of every labelled display equation, in order of appearance."""
    return {m.group(2): k for k, m in enumerate(_LABELLED_MATH.finditer(markdown), start=1)}


def website_url(config_path: str | os.PathLike) -> str:
    """The website's base URL from ``_config.yml`` (``html.baseurl``), ending in ``/``.

    Raises
    ------
    ValueError
        If the file has no ``html: baseurl:`` entry.
    """
    import yaml

    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    return _website(config, config_path)


def _website(config: dict, config_path) -> str:
    url = (config.get("html") or {}).get("baseurl")
    if not url:
        raise ValueError(f"{config_path}: expected an 'html: baseurl:' entry, found none")
    return str(url).rstrip("/") + "/"


def context(source: str | os.PathLike, config_path: str | os.PathLike | None = None) -> Context:
    """The :class:`Context` of a chapter source, from the book's ``_config.yml``.

    Parameters
    ----------
    source : path-like
        A page of the book, e.g. ``book/01_diffraction.md``.
    config_path : path-like, optional
        The book's ``_config.yml``; default: the nearest one in a folder above ``source``.

    Raises
    ------
    ValueError
        If no ``_config.yml`` is given or found, or it has no ``html: baseurl:``.
    """
    import yaml

    if config_path is None:
        found = [p / "_config.yml" for p in Path(source).resolve().parents]
        found = [p for p in found if p.is_file()]
        if not found:
            raise ValueError(f"{source}: no _config.yml in a folder above it (the book's root)")
        config_path = found[0]
    config_path = Path(config_path)
    root = config_path.resolve().parent
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    labels: dict[str, str] = {}
    for bib in config.get("bibtex_bibfiles", []):
        labels.update(citations(root / bib))
    source = Path(source).resolve()
    targets = {
        label: page.relative_to(root).with_suffix("").as_posix()
        for page in sorted(source.parent.glob("*.md"))
        for label in _TARGET.findall(page.read_text(encoding="utf-8"))
    }
    return Context(
        website=_website(config, config_path),
        page=source.relative_to(root).with_suffix("").as_posix(),
        citations=labels,
        equations=equation_numbers(source.read_text(encoding="utf-8")),
        targets=targets,
    )


def convert(markdown: str, ctx: Context) -> str:
    """Markdown of a chapter with its MyST syntax turned into what Jupyter renders.

    Glue roles are left in place (:func:`crystal_course.notebooks.render` fills
    them in at run time).

    Raises
    ------
    ValueError
        For a citation key, an equation label or a role the page does not
        define, or MyST syntax this function does not know; the message names it.
    """

    def admonition(match: re.Match) -> str:
        title, body = match.group(1).strip(), match.group(2)
        lines = [line for line in body.splitlines() if not re.match(r"^:[a-z-]+:", line)]
        text = "\n".join(lines).strip("\n")
        quoted = "\n".join(f"> {line}".rstrip() for line in text.splitlines())
        return (f"> **{title}**\n>\n" if title else "") + quoted

    def math(match: re.Match) -> str:
        body, label = match.group(1), match.group(2)
        return f"$$\n{body}\n\\tag{{{ctx.equations[label]}}}\n$$"

    def role(match: re.Match) -> str:
        kind, text = match.groups()
        if kind.startswith("cite"):
            parts = []
            for key in (k.strip() for k in text.split(",")):
                if key not in ctx.citations:
                    raise ValueError(f"{ctx.page}: no bibliography entry {key!r} for {{cite}}")
                parts.append(f"[{ctx.citations[key]}]({ctx.url('book/references')})")
            return "(" + "; ".join(parts) + ")"
        if kind == "eq":
            if text not in ctx.equations:
                raise ValueError(f"{ctx.page}: no labelled equation {text!r} for {{eq}}")
            return f"[({ctx.equations[text]})]({ctx.url(anchor='equation-' + text)})"
        explicit = re.match(r"^(.*?)\s*<([^>]+)>$", text)
        words, target = (explicit.group(1), explicit.group(2)) if explicit else (text, text)
        if kind == "doc":
            page = (Path(ctx.page).parent / target.removesuffix(".md")).as_posix()
            return f"[{words}]({ctx.url(page.lstrip('/'))})"
        return f"[{words}]({ctx.url(ctx.targets.get(target), anchor=target)})"

    def page_link(match: re.Match) -> str:
        target = (Path(ctx.page).parent / match.group(1)).as_posix()
        return "](" + ctx.url(target, (match.group(2) or "").lstrip("#")) + ")"

    text = _TARGET.sub("", markdown)  # a section label: the website's anchor, not text
    text = _ADMONITION.sub(admonition, text)
    text = _LABELLED_MATH.sub(math, text)
    text = _ROLE.sub(role, text)
    text = _PAGE_LINK.sub(page_link, text)
    leftover = _LEFTOVER.search(text)
    if leftover:
        raise ValueError(
            f"{ctx.page}: MyST syntax that Jupyter would show raw: {leftover.group(0)!r}"
        )
    return text


def myst_left(text: str) -> list[str]:
    """MyST roles and directives in ``text`` that Jupyter would show as raw syntax.

    Glue roles count too: outside a render cell (:func:`notebook_cells`) they are holes.
    """
    found = [m.group(0) for m in _LEFTOVER.finditer(text)]
    return found + [m.group(0) for m in GLUE_ROLE.finditer(text)]


def fields(markdown: str) -> str:
    """``markdown`` with each glue role written as a plain field, ``⟨name:format⟩``.

    The field (:data:`crystal_course.notebooks.FIELD`) is what
    :func:`crystal_course.notebooks.show` fills in; a reader of the cell's source
    sees no MyST syntax.
    """
    from crystal_course.notebooks import field as value_field

    def plain(match: re.Match) -> str:
        content = match.group(1)
        name, _, spec = content.rpartition(":") if ":" in content else (content, "", "")
        return value_field(name, spec)

    return GLUE_ROLE.sub(plain, markdown)


def render_source(markdown: str) -> str:
    """Source of the hidden code cell that shows ``markdown`` with this run's values.

    ``markdown`` holds glue roles or fields; the source holds fields only.
    """
    from crystal_course.notebooks import FIELD

    markdown = fields(markdown)
    plain = re.sub(r"[#>*_`$\\{}]", "", FIELD.sub("...", markdown))
    words = " ".join(plain.split())[:60].rsplit(" ", 1)[0]
    title = f"# @title Text with this run's numbers: {words} ..."
    if '"""' in markdown or markdown.endswith(("\\", '"')):  # a raw string cannot hold them
        literal = repr(markdown)
    else:
        literal = 'r"""' + markdown + '"""'
    return f"{title}\nfrom crystal_course.notebooks import show\n\nshow({literal})"


def notebook_cells(markdown: str, ctx: Context) -> list:
    """One Markdown cell of a chapter as the notebook cells of its student edition.

    Returns
    -------
    list of nbformat.NotebookNode
        A Markdown cell with the converted text, or, where the text holds glue
        roles, a code cell tagged :data:`RENDER_TAG` whose input is hidden
        (Colab's form view, Jupyter's ``source_hidden``) and whose output is the
        text with the values this run glued.
    """
    from nbformat.v4 import new_code_cell, new_markdown_cell

    text = convert(markdown, ctx)
    if not GLUE_ROLE.search(text):
        return [new_markdown_cell(text)]
    metadata = {"cellView": "form", "jupyter": {"source_hidden": True}, "tags": [RENDER_TAG]}
    return [new_code_cell(render_source(text), metadata=metadata)]
