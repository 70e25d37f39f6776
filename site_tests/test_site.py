"""Every page of the built website, as a reader's browser shows it.

Run by ``make book`` (``make site-test``) after the build: headless Chromium opens each
page from a local server and ``website.inspect_page`` lists what is wrong. The last
tests feed the same checks a deliberately broken page, so a check that can no longer
fail is noticed too.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from crystal_course.notebooks import chapter_sources

from website import Site, inspect_page

ROOT = Path(__file__).resolve().parent.parent


def colab_target(page: Path, html_dir: Path) -> str | None:
    """The URL a chapter page's Colab button must open (``None`` for other pages)."""
    relative = page.relative_to(html_dir).with_suffix("")
    chapters = {p.relative_to(ROOT).with_suffix("") for p in chapter_sources(ROOT / "book")}
    if relative not in chapters:
        return None
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]
    owner_repo = repository["url"].rstrip("/").split("github.com/")[1]
    book_path = (repository.get("path_to_book") or "").strip("/")
    notebook = "/".join(p for p in (book_path, relative.as_posix() + ".ipynb") if p)
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{owner_repo}/blob/{repository['branch']}/{notebook}"


def test_page_as_a_reader_sees_it(browser_page, site, page, html_dir, screenshots):
    shot = screenshots / page.relative_to(html_dir).with_suffix(".png")
    problems = inspect_page(browser_page, site, page, colab_target(page, html_dir), shot)
    assert problems == []
    assert shot.stat().st_size > 0


def test_every_chapter_page_was_built_with_maths(html_dir):
    chapters = chapter_sources(ROOT / "book")
    assert chapters
    for source in chapters:
        page = html_dir / "book" / f"{source.stem}.html"
        assert page.is_file(), f"{page} was not built"
    # Browsers ask every page's origin for /favicon.ico, the root redirect page included.
    assert (html_dir / "favicon.ico").is_file()
    # Chapter 1 is the maths chapter: the typesetting check must have something to check.
    assert 'class="math' in (html_dir / "book" / "01_diffraction.html").read_text()


BROKEN = """<!DOCTYPE html><html><head><title>broken</title>
<script defer src="{mathjax}"></script></head><body>
<img src="missing.png" alt="a figure that is not there">
<a href="nowhere.html">a dead link</a> <a href="index.html#no-such-anchor">a dead anchor</a>
<a href="https://colab.research.google.com/github/someone/else/blob/main/book/x.ipynb">Colab</a>
<div class="math notranslate nohighlight">\\[ \\frac{{1}}{{2}} \\]</div>
</body></html>"""

GOOD = """<!DOCTYPE html><html><head><title>fine</title><link rel="icon" href="data:,">
</head><body id="top"><img src="dot.png" alt="a dot">
<a href="index.html#top">here</a></body></html>"""


def _tiny_site(tmp_path, mathjax_src):
    import base64

    (tmp_path / "index.html").write_text(GOOD)
    (tmp_path / "dot.png").write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    )
    (tmp_path / "broken.html").write_text(BROKEN.format(mathjax=mathjax_src))
    return tmp_path


def test_the_checks_pass_a_good_page(browser_page, tmp_path):
    root = _tiny_site(tmp_path, "https://cdn.example.invalid/mathjax.js")
    with Site(root) as site:
        assert inspect_page(browser_page, site, root / "index.html") == []


def test_the_checks_catch_a_broken_page(browser_page, tmp_path):
    root = _tiny_site(tmp_path, "https://cdn.example.invalid/mathjax.js")
    wanted = "https://colab.research.google.com/github/crystal-course/x/blob/main/book/x.ipynb"
    with Site(root) as site:
        problems = "\n".join(inspect_page(browser_page, site, root / "broken.html", wanted))
    assert "image did not load" in problems and "missing.png" in problems
    assert "link to a missing page" in problems and "nowhere.html" in problems
    assert "link to a missing anchor" in problems and "no-such-anchor" in problems
    assert "Colab button should open" in problems
    assert "MathJax must come from the site itself" in problems
    assert "MathJax did not start" in problems
    assert "console error" in problems  # the failed image and script requests
