"""The student editions' text: MyST turned into what Jupyter and Colab render, live numbers."""

from __future__ import annotations

import json

import pytest

from crystal_course import markdown, notebooks

SITE = "https://example.org/course/"


def _ctx(**kwargs):
    defaults = dict(
        website=SITE,
        page="book/01_x",
        citations={"ziletti2018": "Ziletti et al., 2018", "togo2024": "Togo and Tanaka, 2024"},
        equations={"eq-a": 1, "eq-b": 2},
    )
    return markdown.Context(**{**defaults, **kwargs})


def test_admonitions_become_blockquotes_headed_by_their_title():
    text = "```{admonition} Learning objectives\n:class: tip\nYou can\n\n- do this\n```\nAfter."
    assert markdown.convert(text, _ctx()) == (
        "> **Learning objectives**\n>\n> You can\n>\n> - do this\nAfter."
    )


def test_citations_are_author_year_links_to_the_references_page():
    text = "As in {cite}`ziletti2018` and {cite}`ziletti2018,togo2024`."
    link = f"{SITE}book/references.html"
    assert markdown.convert(text, _ctx()) == (
        f"As in ([Ziletti et al., 2018]({link})) and "
        f"([Ziletti et al., 2018]({link}); [Togo and Tanaka, 2024]({link}))."
    )
    with pytest.raises(ValueError, match="no bibliography entry 'nobody1900'"):
        markdown.convert("{cite}`nobody1900`", _ctx())


def test_labelled_equations_are_numbered_as_on_the_page_and_linked():
    text = "$$\na = b\n$$ (eq-a)\n\n$$\nc\n$$ (eq-b)\n\nBy {eq}`eq-b`."
    ctx = _ctx(equations=markdown.equation_numbers(text))
    assert ctx.equations == {"eq-a": 1, "eq-b": 2}
    out = markdown.convert(text, ctx)
    assert "$$\na = b\n\\tag{1}\n$$" in out and "$$\nc\n\\tag{2}\n$$" in out
    assert out.endswith(f"By [(2)]({SITE}book/01_x.html#equation-eq-b).")
    with pytest.raises(ValueError, match="no labelled equation 'eq-z'"):
        markdown.convert("{eq}`eq-z`", ctx)


def test_references_and_chapter_links_point_at_the_website():
    text = "See {ref}`the data <sec-data>`, {doc}`02_y` and [Chapter 2](02_y.md#top)."
    assert markdown.convert(text, _ctx()) == (
        f"See [the data]({SITE}book/01_x.html#sec-data), [02_y]({SITE}book/02_y.html) "
        f"and [Chapter 2]({SITE}book/02_y.html#top)."
    )
    assert markdown.convert("[web](https://x.org/a.md)", _ctx()) == "[web](https://x.org/a.md)"


def test_a_section_label_vanishes_and_references_to_it_reach_its_page():
    ctx = _ctx(targets={"primer": "book/01_x", "elsewhere": "book/03_z"})
    text = "(primer)=\n## Primer\n\nSee {ref}`the primer <primer>` and {ref}`that <elsewhere>`."
    assert markdown.convert(text, ctx) == (
        f"## Primer\n\nSee [the primer]({SITE}book/01_x.html#primer) and "
        f"[that]({SITE}book/03_z.html#elsewhere)."
    )


def test_unknown_myst_syntax_is_refused_not_passed_through():
    with pytest.raises(ValueError, match="would show raw"):
        markdown.convert("```{figure} a.png\n```", _ctx())
    with pytest.raises(ValueError, match="would show raw"):
        markdown.convert("A {abbr}`X (y)` role.", _ctx())
    assert markdown.myst_left("{glue:text}`x` and {cite}`y`") == ["{cite}`", "{glue:text}`x`"]


def test_citations_read_the_bibliography(tmp_path):
    bib = tmp_path / "r.bib"
    bib.write_text(
        "@article{a, author={Ziletti, Angelo and Kumar, D. and Scheffler, M.}, year={2018}}\n"
        "@book{b, author={Als-Nielsen, J. and McMorrow, D.}, year={2011}}\n"
        "@misc{c, author={Togo, Atsushi}, year={2024}}\n"
        "@misc{d, author={Larsen, A. and others}, year={2017}}\n"
    )
    assert markdown.citations(bib) == {
        "a": "Ziletti et al., 2018",
        "b": "Als-Nielsen and McMorrow, 2011",
        "c": "Togo, 2024",
        "d": "Larsen et al., 2017",
    }
    bib.write_text("@misc{e, title={No one}}\n")
    with pytest.raises(ValueError, match="entry 'e' needs an author and a year"):
        markdown.citations(bib)


def test_context_of_a_chapter_comes_from_the_books_config(root):
    ctx = markdown.context(root / "book" / "01_diffraction.md")
    assert ctx.page == "book/01_diffraction" and ctx.website.endswith("/")
    assert ctx.citations["ziletti2018"] == "Ziletti et al., 2018"
    assert list(ctx.equations)[:2] == ["eq-amplitude", "eq-intensity"]
    # Chapter 2 links the crystallography primer of Chapter 1.
    assert markdown.context(root / "book" / "02_dataset.md").targets["crystallography"] == (
        "book/01_diffraction"
    )


def test_a_cell_with_glue_becomes_a_hidden_cell_that_renders_it():
    (plain,) = markdown.notebook_cells("No numbers {cite}`togo2024`.", _ctx())
    assert plain.cell_type == "markdown" and "Togo and Tanaka" in plain.source
    (cell,) = markdown.notebook_cells("R = {glue:text}`r:.1f` Å, $\\alpha$.", _ctx())
    assert cell.cell_type == "code" and markdown.RENDER_TAG in cell.metadata["tags"]
    assert cell.metadata["cellView"] == "form" and cell.metadata["jupyter"]["source_hidden"]
    assert cell.source.startswith("# @title") and "⟨r:.1f⟩" in cell.source
    assert markdown.myst_left(cell.source) == []  # its source is plain, too
    namespace: dict = {}
    shown = []
    import IPython.display

    original = IPython.display.display
    IPython.display.display = lambda obj, **kw: shown.append(getattr(obj, "data", None))
    try:
        notebooks.GLUED["r"] = 3.14159
        exec(cell.source, namespace)
    finally:
        IPython.display.display = original
        notebooks.GLUED.pop("r")
    assert shown[0] == "R = 3.1 Å, $\\alpha$."


@pytest.mark.parametrize("text", ['He said "x"', 'a """ b', "ends in \\", "plain $\\alpha$"])
def test_the_render_cell_holds_any_text_exactly(text):
    source = markdown.render_source(text)
    call = source.split("show(", 1)[1].rsplit(")", 1)[0]
    assert eval(call) == text  # the generated literal, read back


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (3.14159, ".2f", "3.14"),
        (0.5, ".0%", "50%"),
        (7, "", "7"),
        ("a -> b", "", "a -> b"),
        (12.0, "d", "12"),
        (1234.5, ",.0f", "1,234"),
    ],  # fmt: skip
)
def test_values_are_formatted_as_the_website_formats_them(value, spec, text):
    assert notebooks.format_glued(value, spec) == text
    assert notebooks.render(f"x {notebooks.field('v', spec)} y", {"v": value}) == f"x {text} y"
    role = f"{{glue:text}}`v{':' + spec if spec else ''}`"
    assert markdown.fields(f"x {role} y") == f"x {notebooks.field('v', spec)} y"


def test_a_text_shown_before_its_value_is_glued_is_updated_in_place(monkeypatch):
    """Prose may come before the cell that computes its number, as on the website."""
    import sys

    import IPython.display

    class Handle:
        def __init__(self, obj):
            self.shown = [obj.data]

        def update(self, obj):
            self.shown.append(obj.data)

    handles = []

    def display(obj, **kwargs):
        handles.append(Handle(obj))
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab
    monkeypatch.setattr(notebooks, "GLUED", {})
    monkeypatch.setattr(notebooks, "_WAITING", [])
    assert notebooks.show("a = ⟨a:.1f⟩, b = ⟨b⟩") is None  # no Out[]
    (handle,) = handles
    assert handle.shown == [f"a = {notebooks.PENDING}, b = {notebooks.PENDING}"]
    notebooks.glue("a", 1.25)
    notebooks.glue("unrelated", 0)
    notebooks.glue("b", "two")
    assert handle.shown[-1] == "a = 1.2, b = two" and len(handle.shown) == 3
    assert notebooks._WAITING == []  # complete: no longer updated
    with pytest.raises(KeyError, match="not glued \\(yet\\): c"):
        notebooks.render("⟨c⟩")


def test_no_myst_role_or_directive_survives_in_any_student_edition(root):
    twins = sorted((root / "book").glob("*.ipynb"))
    assert twins
    for twin in twins:
        for cell in json.loads(twin.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown" or markdown.RENDER_TAG in cell["metadata"].get(
                "tags", []
            ):  # a render cell's source is read too (Jupyter, VS Code, an unfolded form)
                assert markdown.myst_left(source) == [], (twin.name, source[:200])
