"""pyproject.toml (ranges), environment.yml (conda mirror) and the two pin files agree.

constraints.txt pins the course's own stack; constraints-colab.txt pins Colab's stack
and, for what Colab does not ship, the declared lower bounds. Together they must cover
every range pyproject.toml declares: each lower bound is a version a test runs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# What the Makefile installs (environment.yml mirrors it), and what make test-colab adds.
EXTRAS_INSTALLED = ("cpu", "book", "test", "cluster", "lab")
COLAB_EXTRAS = ("tf", "test", "cluster")


def _pyproject(root):
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def _declared(root) -> dict[str, Requirement]:
    project = _pyproject(root)
    reqs = list(project["dependencies"])
    for extra in EXTRAS_INSTALLED:
        reqs += project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def _conda(root) -> dict[str, Requirement]:
    env = yaml.safe_load((root / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e ") or item in ("pip",) or item.startswith("python="):
                continue
            req = Requirement(item)
            out[canonicalize_name(req.name)] = req
    return out


def test_environment_yml_names_the_same_packages_and_ranges(root):
    declared, conda = _declared(root), _conda(root)
    assert sorted(conda) == sorted(declared), "package sets differ"
    for name, req in declared.items():
        assert conda[name].specifier == req.specifier, f"{name}: ranges differ"


def test_environment_yml_installs_the_package_itself(root):
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_items = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_items
    assert "conda-forge" in env["channels"]


def test_pyproject_uses_ranges_not_pins(root):
    for req in _all_requirements(root):
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req} is pinned"
        if canonicalize_name(req.name) == "numpy":
            assert not any(s.operator in ("<", "<=") for s in req.specifier)


def test_tensorflow_is_only_an_extra(root):
    project = _pyproject(root)
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert not {"tensorflow", "tensorflow-cpu"} & core
    extras = project["optional-dependencies"]
    assert [Requirement(r).name for r in extras["tf"]] == ["tensorflow"]
    assert [Requirement(r).name for r in extras["cpu"]] == ["tensorflow-cpu"]
    keras = next(Requirement(r) for r in project["dependencies"] if r.startswith("keras"))
    assert "3.13.2" in keras.specifier and "2.15" not in keras.specifier


def test_jupyter_book_is_1x(root):
    jb = _declared(root)["jupyter-book"]
    assert "1.0.4.post1" in jb.specifier and "2.0" not in jb.specifier


def _pins(root, name: str = "constraints.txt") -> dict[str, str]:
    pins = {}
    for line in (root / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
            assert match, f"{name}: {line!r} is not an exact pin"
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _all_requirements(root) -> list[Requirement]:
    project = _pyproject(root)
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_every_lower_bound_is_the_lowest_tested_version(root):
    """A declared ``>=`` bound is a promise: it must be a version one of the stacks runs."""
    from packaging.version import Version

    stacks = [_pins(root), _pins(root, "constraints-colab.txt")]
    for req in _all_requirements(root):
        lower = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{req}: expected exactly one '>=' lower bound"
        tested = [
            Version(p[canonicalize_name(req.name)])
            for p in stacks
            if canonicalize_name(req.name) in p
        ]
        assert tested, f"{req.name} is installed by no tested stack"
        assert Version(lower[0]) == min(tested), (
            f"{req}: the lowest tested version is {min(tested)}; declare that as the bound"
        )


def test_colab_constraints_pin_everything_the_colab_stack_installs(root):
    project = _pyproject(root)
    reqs = list(project["dependencies"])
    for extra in COLAB_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    pins = _pins(root, "constraints-colab.txt")
    for req in map(Requirement, reqs):
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not pinned in constraints-colab.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {req}"
    assert pins["pip"].startswith("24."), "Colab keeps pip 24"


def test_constraints_pin_every_declared_package_inside_its_range(root):
    pins = _pins(root)
    for name, req in _declared(root).items():
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} violates {req}"
        )
    assert "setuptools" in pins  # the build backend is pinned too


# Which stack this run is (make sets it): its Python, its pin file and its extras.
STACK_VARIABLE = "CRYSTAL_COURSE_STACK"
STACKS = {
    "pinned": ((3, 11), "constraints.txt", EXTRAS_INSTALLED),
    "colab": ((3, 13), "constraints-colab.txt", COLAB_EXTRAS),
    "lowest": ((3, 11), "constraints-colab.txt", (*COLAB_EXTRAS, "lab")),
}


def test_this_stack_runs_its_python_and_exactly_its_pinned_versions(root):
    """Colab's stack is Colab's Python 3.13; the lowest versions run on 3.11; pins hold."""
    import os
    import sys
    from importlib.metadata import version

    stack = os.environ.get(STACK_VARIABLE, "pinned")
    assert stack in STACKS, f"{STACK_VARIABLE}={stack!r}: expected one of {sorted(STACKS)}"
    python, pin_file, extras = STACKS[stack]
    assert sys.version_info[:2] == python, f"the {stack} stack runs Python {python}"
    project = _pyproject(root)
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    pins = _pins(root, pin_file)
    for name in {canonicalize_name(Requirement(r).name) for r in reqs}:
        assert version(name) == pins[name], (
            f"{stack} stack: {name} {version(name)}, pinned {pins[name]}"
        )


_SHELL_WORDS = {"export", "for", "done", "cd"}  # shell syntax in the README, not commands
_SYSTEM_TOOLS = {"conda"}  # the user's own installer, outside the course's environments


def _readme_commands(root) -> list[list[str]]:
    """Every command of the README's bash blocks, continuation lines joined, comments and
    ``NAME=value`` prefixes dropped."""
    import shlex

    text = (root / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line.split("#", 1)[0].replace("&", " "))
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words and words[0] not in _SHELL_WORDS:
                commands.append(words)
    return commands


def test_the_environment_provides_every_command_the_readme_gives(root):
    import os
    import shutil
    import subprocess
    import sys

    stack = os.environ.get(STACK_VARIABLE, "pinned")
    makefile = (root / "Makefile").read_text()
    bin_dir = Path(sys.executable).parent
    helps = {}
    for words in _readme_commands(root):
        program = words[0]
        if program in _SYSTEM_TOOLS:
            continue
        if words[:2] == ["jupyter", "lab"] and "lab" not in STACKS[stack][2]:
            continue  # the local route's JupyterLab; Colab brings its own notebook interface
        if program == "make":
            assert re.search(rf"^{re.escape(words[1])}:", makefile, flags=re.M), words
            continue
        if program.endswith("python") and words[1] == "-m":
            key = (words[2], *[w for w in words[3:4] if re.fullmatch(r"[a-z][a-z-]*", w)])
            if key not in helps:
                result = subprocess.run([sys.executable, "-m", *key, "--help"],
                                        capture_output=True, text=True, timeout=120)  # fmt: skip
                assert result.returncode == 0, (words, result.stderr[-500:])
                helps[key] = result.stdout
            for option in (w for w in words if w.startswith("--")):
                assert option in helps[key], f"{option} of {' '.join(words[:4])} is not an option"
            continue
        tool = shutil.which(program, path=str(bin_dir)) or shutil.which(program)
        assert tool, f"the README runs {program!r}, which this environment does not provide"
        if words[:2] == ["jupyter", "lab"]:
            result = subprocess.run([str(bin_dir / "jupyter"), "lab", "--version"],
                                    capture_output=True, text=True, timeout=120)  # fmt: skip
            assert result.returncode == 0, result.stderr[-500:]
    assert ("crystal_course.dataset", "generate") in helps and ("crystal_course.training",) in helps


def test_no_two_modules_of_the_package_import_each_other():
    import ast

    package = Path(__file__).resolve().parents[1] / "crystal_course"
    imports = {}
    for path in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("crystal_course."):
                    found.add(node.module.split(".")[1])
                elif node.module == "crystal_course":
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names
                             if a.name.startswith("crystal_course."))  # fmt: skip
        imports[path.stem] = found - {path.stem}
    circles = sorted(
        (a, b) for a, uses in imports.items() for b in uses if a < b and a in imports.get(b, ())
    )
    assert circles == []
