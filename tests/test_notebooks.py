"""Every chapter notebook: stripped, in the table of contents, Colab-ready, and following the template."""

import ast
import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if "_build" not in p.parts)
CHAPTERS = sorted((BOOK / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((BOOK / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _toc_files():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_there_are_chapters():
    assert len(CHAPTERS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [], f"{path.name}: outputs not stripped"
            assert cell.get("execution_count") is None, f"{path.name}: execution count kept"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents_and_uses_the_python3_kernel(path):
    rel = path.relative_to(BOOK).with_suffix("").as_posix()
    assert rel in _toc_files()
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_accelbook_only_when_missing(path):
    """The first code cell, plain Python::

        try:
            import accelbook
        except ImportError:
            import subprocess, sys
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "accelbook @ git+<repository.url>"], check=True)

    No IPython %pip: it prints "you may need to restart the kernel", which is wrong for a first import."""
    first = next(c for c in _cells(path) if c["cell_type"] == "code")
    src = _source(first)
    assert not re.search(r"^\s*[%!]", src, re.M), f"{path.name}: the install cell must be plain Python"
    tree = ast.parse(src)
    tries = [n for n in tree.body if isinstance(n, ast.Try)]
    assert len(tries) == 1, "one try: import accelbook / except ImportError: install"
    (attempt,) = tries
    assert any(isinstance(n, ast.Import) and [a.name for a in n.names] == ["accelbook"] for n in attempt.body)
    (handler,) = attempt.handlers
    assert isinstance(handler.type, ast.Name) and handler.type.id == "ImportError"
    calls = [n for n in ast.walk(handler) if isinstance(n, ast.Call) and n.args
             and isinstance(n.args[0], ast.List)
             and {"pip", "install"} <= {getattr(e, "value", None) for e in n.args[0].elts}]
    assert len(calls) == 1, "one pip install, in the except ImportError branch"
    (call,) = calls
    assert ast.unparse(call.func) == "subprocess.run" and ast.unparse(call.args[0].elts[0]) == "sys.executable", \
        "pip must run in the kernel's own interpreter"
    assert any(k.arg == "check" and getattr(k.value, "value", None) is True for k in call.keywords)
    args = [e.value for e in call.args[0].elts[1:] if isinstance(e, ast.Constant)]
    assert len(args) == len(call.args[0].elts) - 1, "pip's arguments are plain strings"
    assert args[:2] == ["-m", "pip"] and "--no-deps" in args, \
        "installing accelbook must never touch jax, jaxlib or numpy"
    (target,) = [a for a in args if "git+" in a]
    assert target == f"accelbook @ git+{REPO_URL}", "install cell must follow repository.url in _config.yml"
    assert not any(re.search(r"\b(jax|jaxlib|numpy)\b", a) for a in args)
    assert "remove-cell" in first.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    md = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    headings = [h.strip() for h in re.findall(r"^## (.+)$", md, re.M)]
    order = ["Learning goals", "The model", "See it", "Measure it on your device", "Explore it",
             "What survives benchmarks", "Exercises", "Further reading"]
    found = [next((i for i, h in enumerate(headings) if h.startswith(name)), None) for name in order]
    assert None not in found, f"{path.name}: missing sections {[o for o, f in zip(order, found) if f is None]}"
    assert found == sorted(found), f"{path.name}: sections out of order"
    exercises = re.findall(r"```\{exercise\}.*\n:label: (\S+)", md)
    assert len(exercises) >= 6, f"{path.name}: {len(exercises)} exercises"
    solved = set(re.findall(r"```\{solution(?:-start)?\} (\S+)", md))
    assert set(exercises) <= solved, f"{path.name}: unsolved {set(exercises) - solved}"
    assert "{cite}" in md and ":class: tip" in md


def test_labels_and_glue_keys_are_unique_across_the_book():
    labels, keys = [], []
    for path in NOTEBOOKS:
        for cell in _cells(path):
            src = _source(cell)
            if cell["cell_type"] == "markdown":
                labels += re.findall(r"^:label: (\S+)", src, re.M)
            else:
                keys += re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", src)
    assert len(labels) == len(set(labels)), "duplicate exercise labels"
    assert len(keys) == len(set(keys)), "duplicate glue keys"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_glue_reference_is_glued_by_the_same_notebook(path):
    cells = _cells(path)
    patterns = []  # f-string keys such as f"mm_u_{d}" match any text in place of {d}
    for c in cells:
        if c["cell_type"] == "code":
            for key in re.findall(r"\bglue\(\s*f?[\"']([^\"']+)[\"']", _source(c)):
                parts = re.split(r"\{[^}]*\}", key)
                patterns.append(re.compile(".+".join(re.escape(p) for p in parts) + "$"))
    used = set()
    for c in cells:
        if c["cell_type"] == "markdown":
            used |= {m.split(":")[0] for m in re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", _source(c))}
    missing = {u for u in used if not any(p.match(u) for p in patterns)}
    assert not missing, f"{path.name}: referenced but never glued: {missing}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_interactive_figures_go_through_accelbook_explore(path):
    """A bare ipywidget is dead on the website (no kernel); explore.show works in both places."""
    code = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    assert "explore.show(" in code, f"{path.name}: no explorable figure"
    assert not re.search(r"^\s*(import ipywidgets|from ipywidgets)", code, re.M), \
        f"{path.name}: uses ipywidgets directly; declare the figure with accelbook.explore"
    assert "display_id" not in code and "interactive(" not in code


def test_explorable_names_are_unique_across_the_book():
    names = []
    for path in CHAPTERS:
        for cell in _cells(path):
            names += re.findall(r"\bname=[\"']([a-z0-9-]+)[\"']", _source(cell)) if "explore." in _source(cell) else []
    assert names and len(names) == len(set(names)), names
