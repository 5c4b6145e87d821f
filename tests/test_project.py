"""Project files: one place pins versions, two commands set everything up, CI runs the tests."""

import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _requirements():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    return [l for l in lines if l]


def test_requirements_are_exact_pins():
    reqs = _requirements()
    assert reqs
    for line in reqs:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.\-+]+", line), line
    names = {l.split("==")[0].lower() for l in reqs}
    for needed in ("jupyter-book", "jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "pytest"):
        assert needed in names
    assert next(l for l in reqs if l.lower().startswith("jupyter-book==")).split("==")[1].startswith("1.")


def test_environment_yml_delegates_to_requirements_txt():
    text = (ROOT / "environment.yml").read_text()
    pip_section = text[text.index("- pip:"):]
    assert "-r requirements.txt" in pip_section
    # no version is pinned twice: the only pin in environment.yml is the Python version
    assert not re.search(r"==", text)
    dependencies = text[text.index("dependencies:"):]
    deps = re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)", dependencies, re.M)
    assert set(deps) <= {"python", "pip", "-r", "-e"}, deps


def test_pyproject_has_only_loose_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        assert "==" not in dep and "<" not in dep.split(";")[0], dep
        assert ">=" in dep, dep
    names = {re.split(r"[><=;\s]", d)[0] for d in project["dependencies"]}
    assert {"numpy", "jax"} <= names


def test_readme_shows_the_two_commands_and_ci_runs_the_tests():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book:", "test:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target


def test_the_package_ships_its_spec_database():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "data/*.toml" in project["tool"]["setuptools"]["package-data"]["accelbook"]
