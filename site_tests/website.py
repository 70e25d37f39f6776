"""What a reader's browser sees on a built page of the course website.

``inspect_page`` loads one page in headless Chromium (through Playwright) and lists
what is wrong with it, one sentence each: console errors, images that did not load,
internal links that lead nowhere, maths that MathJax did not typeset, MathJax served
from elsewhere than the site, and a chapter page whose Colab button does not open its
own notebook. ``make book`` runs it over every page (``test_site.py``).
"""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless Chromium as root on a machine without outside network."""


class Site:
    """A built site served over HTTP on the loopback interface (a random free port)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, page: Path) -> str:
        return f"{self.origin}/{page.relative_to(self.root).as_posix()}"

    def file(self, url: str) -> Path | None:
        """The file a same-origin URL serves (``None`` for another origin)."""
        if not url.startswith(self.origin + "/"):
            return None
        path = self.root / unquote(urlparse(url).path).lstrip("/")
        return path / "index.html" if path.is_dir() else path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports problems, not every request
        pass


def pages(root: Path) -> list[Path]:
    """Every HTML page of a built site (not the copies under ``_static``/``_sources``)."""
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in Path(root).rglob("*.html") if not skip & set(p.parts))


@functools.cache
def _ids(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


def inspect_page(
    browser_page,
    site: Site,
    page: Path,
    colab_target: str | None = None,
    screenshot: Path | None = None,
) -> list[str]:
    """Problems of one page as a reader's browser shows it (empty: none).

    Parameters
    ----------
    browser_page : playwright.sync_api.Page
        A fresh page of a launched browser.
    site : Site
        The served site that holds ``page``.
    page : pathlib.Path
        The HTML file to open.
    colab_target : str, optional
        For a chapter page: the URL its Colab button must open.
    screenshot : pathlib.Path, optional
        Where to save a PNG of the page's first screen.
    """
    problems: list[str] = []
    name = page.relative_to(site.root).as_posix()
    browser_page.on(
        "console",
        lambda m: m.type == "error" and problems.append(f"{name}: console error: {m.text}"),
    )
    browser_page.on("pageerror", lambda e: problems.append(f"{name}: script error: {e}"))
    browser_page.on(
        "requestfailed",
        lambda r: problems.append(f"{name}: request failed: {r.url} ({r.failure})"),
    )
    url = site.url(page)
    browser_page.goto(url, wait_until="load")
    browser_page.wait_for_load_state("networkidle")
    if urldefrag(browser_page.url)[0] != url:  # a redirect page, e.g. index.html
        target = site.file(urldefrag(browser_page.url)[0])
        if target is None or not target.is_file():
            problems.append(f"{name}: redirects to a missing page: {browser_page.url}")
        _screenshot(browser_page, screenshot)
        return problems
    # Lazy images load when scrolled into view.
    browser_page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    browser_page.wait_for_load_state("networkidle")
    browser_page.evaluate("window.scrollTo(0, 0)")

    broken = browser_page.evaluate(
        "Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    problems += [f"{name}: image did not load: {src}" for src in broken]

    for url in sorted(set(browser_page.evaluate("Array.from(document.links).map(a => a.href)"))):
        target, fragment = urldefrag(url)
        path = site.file(target)
        if path is None:
            continue
        if not path.is_file():
            problems.append(f"{name}: link to a missing page: {url}")
        elif fragment and path.suffix == ".html" and unquote(fragment) not in _ids(path):
            problems.append(f"{name}: link to a missing anchor: {url}")

    problems += _math_problems(browser_page, site, name)

    if colab_target is not None:
        colab = browser_page.evaluate(
            "Array.from(document.querySelectorAll('a[href*=\"colab.research.google.com\"]'))"
            ".map(a => a.href)"
        )
        if colab_target not in colab:
            problems.append(f"{name}: Colab button should open {colab_target}, found {colab}")

    _screenshot(browser_page, screenshot)
    return problems


def _screenshot(browser_page, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(path))


def _math_problems(browser_page, site: Site, name: str) -> list[str]:
    n_math = browser_page.evaluate("document.querySelectorAll('.math').length")
    if not n_math:
        return []
    problems = []
    sources = browser_page.evaluate(
        "Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s))"
    )
    if not sources or not all(s.startswith(site.origin + "/") for s in sources):
        problems.append(f"{name}: MathJax must come from the site itself, found {sources}")
    try:
        browser_page.wait_for_function(
            "window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15_000
        )
        browser_page.evaluate("MathJax.startup.promise")
    except Exception as err:  # Playwright's TimeoutError or a script error
        return problems + [f"{name}: MathJax did not start ({type(err).__name__})"]
    untypeset = browser_page.evaluate(
        "Array.from(document.querySelectorAll('.math'))"
        ".filter(m => !m.querySelector('mjx-container') || m.querySelector('mjx-merror'))"
        ".map(m => m.textContent.slice(0, 60))"
    )
    problems += [f"{name}: maths not typeset: {text!r}" for text in untypeset]
    return problems
