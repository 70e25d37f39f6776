"""Sphinx extension of the course website: each inline <script> at most once per page.

sphinx-thebe 0.3.1 registers its inline configuration (``const THEBE_JS_URL = ...``) on
``env-before-read-docs``, and a Jupyter Book 1 build gives every page that script twice.
A second ``const`` declaration is a JavaScript error on every page, which the browser
test (``site_tests``) reports. This keeps the first copy of each identical inline script
and changes nothing else.
"""

from __future__ import annotations


def _once(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        inline = not getattr(script, "filename", None) and attributes.get("body")
        # The same body arrives once with filename None and once with "": compare attributes.
        key = tuple(sorted(attributes.items()))
        if inline and key in seen:
            continue
        if inline:
            seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _once, priority=900)  # after every extension adds its own
    return {"parallel_read_safe": True, "parallel_write_safe": True}
