"""Colab readiness: each chapter's install cell installs accelbook only when it is missing, quietly
(plain Python running pip, not IPython's %pip with its misleading "restart the kernel" note), and
never touches the runtime's jax, jaxlib or numpy.

The test runs the real install cell of every chapter in a fresh virtual environment that already
holds a different jax (0.4.38, as an older Colab runtime might), with the repository URL pointed at
this checkout. Afterwards jax is the same version, jaxlib and numpy were not pulled in, and
accelbook is installed; run again, the cell installs nothing.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import venv

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
OTHER_JAX = "0.4.38"
CHAPTERS = sorted((ROOT / "book" / "chapters").glob("*.ipynb"))


def install_cell(path: pathlib.Path) -> str:
    nb = json.loads(path.read_text())
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def as_python(cell: str, package_dir: pathlib.Path) -> str:
    """The cell, which is plain Python, with the repository URL replaced by a local copy of the
    package (no network to GitHub here) and a marker printed when its install branch runs."""
    url = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]["url"]
    assert not re.search(r"^\s*[%!]", cell, re.M), \
        "the install cell must be plain Python: IPython's %pip prints a wrong 'restart the kernel' note"
    compile(cell, "<install cell>", "exec")
    assert f"git+{url}" in cell
    code = cell.replace(f"git+{url}", package_dir.as_uri())
    code, marked = re.subn(r"^(\s*)except ImportError:[ \t]*$",
                           lambda m: f"{m.group(0)}\n{m.group(1)}    print('INSTALLING')", code, flags=re.M)
    assert marked == 1, "the install cell installs in its one `except ImportError:` branch"
    return code


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    """A fresh venv holding jax 0.4.38 (and nothing else), plus a copy of the package to install."""
    tmp = tmp_path_factory.mktemp("colab")
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", f"jax=={OTHER_JAX}"], check=True,
                   capture_output=True, timeout=600)
    package = tmp / "accelbook-src"
    package.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, package / name)
    shutil.copytree(ROOT / "src", package / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return py, package


def versions(py) -> dict:
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            "for d in ('jax', 'jaxlib', 'numpy', 'accelbook'):\n"
            "    try: out[d] = m.version(d)\n"
            "    except m.PackageNotFoundError: out[d] = None\n"
            "print(json.dumps(out))")
    return json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_every_chapter_has_the_same_install_cell():
    cells = {install_cell(p) for p in CHAPTERS}
    assert len(CHAPTERS) >= 6 and len(cells) == 1
    assert "--no-deps" in cells.pop()


def test_install_cell_keeps_the_runtimes_jax(colab_like):
    py, package = colab_like
    assert versions(py) == {"jax": OTHER_JAX, "jaxlib": None, "numpy": None, "accelbook": None}
    code = as_python(install_cell(CHAPTERS[0]), package)
    first = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.strip() == "INSTALLING", first.stdout  # pip --quiet: nothing else to read
    assert "restart" not in first.stdout + first.stderr
    after = versions(py)
    assert after["jax"] == OTHER_JAX, "the install cell changed jax"
    assert after["jaxlib"] is None and after["numpy"] is None, after
    assert after["accelbook"] is not None
    # accelbook is importable now, so the same cell does nothing
    again = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "INSTALLING" not in again.stdout, again.stdout + again.stderr
    assert versions(py) == after
