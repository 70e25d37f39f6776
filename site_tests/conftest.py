"""Options and fixtures of the website test (run by ``make book`` after the build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from website import CHROMIUM_ARGS, Site, pages

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    group = parser.getgroup("website")
    group.addoption("--html-dir", default="_build/html", help="the built site")
    group.addoption("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    group.addoption("--screenshots", default="_build/screenshots", help="PNG per page")


def _html_dir(config) -> Path:
    html = Path(config.getoption("--html-dir"))
    if not (html / "index.html").is_file():
        raise pytest.UsageError(f"{html}/index.html is missing: build the site first (make book)")
    return html


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        html = _html_dir(metafunc.config)
        found = pages(html)
        metafunc.parametrize("page", found, ids=[p.relative_to(html).as_posix() for p in found])


@pytest.fixture(scope="session")
def html_dir(pytestconfig) -> Path:
    return _html_dir(pytestconfig)


@pytest.fixture(scope="session")
def screenshots(pytestconfig) -> Path:
    return Path(pytestconfig.getoption("--screenshots"))


@pytest.fixture(scope="session")
def browser(pytestconfig):
    from playwright.sync_api import sync_playwright

    executable = pytestconfig.getoption("--chromium")
    if not Path(executable).is_file():
        raise pytest.UsageError(f"{executable} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def site(html_dir):
    with Site(html_dir) as served:
        yield served
