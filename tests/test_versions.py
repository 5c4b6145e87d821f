"""The chapters on the versions readers actually have: Colab's runtime, and the lowest versions that
pyproject.toml's `dependencies` admit.

Two fresh virtual environments, built anew on every run under pytest's tmp dir:

- **colab**: `tests/colab-versions.txt` (Colab's published package list, pinned; see its header).
- **floor**: every requirement in pyproject.toml's `dependencies` at its lower bound (`==` the
  version after `>=`, read from pyproject, never retyped here), with nbclient added at whatever pip
  resolves next to them.

In each, accelbook is installed the way the chapters' install cell installs it (`pip install
--no-deps`, here from a copy of this checkout), every accelbook module is imported (pkgutil walk),
and every chapter runs top to bottom in a kernel of that environment's own Python
(a kernelspec installed into the venv with `ipykernel install --prefix`; a first cell asserts the
kernel's prefix and its jax version; the last, that the kernel read the lane's ceilings file: the
ceilings are measured once per environment, as a book build measures them once, not in every
chapter's kernel) with `JAX_PLATFORMS=cpu`, `ACCELBOOK_EXPLORE=live` and
`MPLBACKEND` unset (the inline backend). After a chapter's own cells one extra cell moves every
control of every live explorable (`accelbook.explore.live()`) once and back: each move must redraw
(the PNG or the caption changes) without an error. Every explorable a chapter declares
(`explore.show(..., name="...")`) must have been moved.

The colab lane runs what a Colab reader opens: the notebook edition (notebooks/, every chapter and
the spec tables), whose code cells are the chapters' own. Each executed edition is saved and
exported to HTML with Colab's nbconvert, and the tests read what a reader sees: every paragraph
filled with this run's numbers (no "…" left, no raw role, no "nan"), every solution collapsed. The
floor lane runs the chapters' source. Every chapter runs in both environments (no subset). The two environments are built and run
side by side, one thread each (the work happens in their subprocesses; the machine has 2 cores).
Measured on the project's 2-core machine (2026-12-08, eleven chapters): building an environment
(venv, pip install, accelbook, kernelspec) takes 60 s (colab) and 65 s (floor), measuring its
ceilings 12 to 14 s; the chapters take 335 s (colab, with the spec tables) and 267 s (floor); the
whole module 522 s of wall time. The fixture prints these numbers (`pytest -s`). Timeouts: 600 s per cell (nbclient), 900 s per chapter and
per pip install.
"""

from __future__ import annotations

import ast
import html as htmllib
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import venv

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book" / "chapters").glob("*.ipynb"))
EDITIONS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # the notebook edition: chapters + spec tables
COLAB_VERSIONS = ROOT / "tests" / "colab-versions.txt"
INSTALL_TIMEOUT = 900  # seconds for one pip install
NOTEBOOK_TIMEOUT = 900  # seconds for one chapter, kernel start to last cell (nbclient: 600 per cell)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Runs under the venv's own Python: executes one notebook with nbclient, or imports every module.
DRIVER = r'''
import json, sys, time, traceback
job = json.loads(sys.argv[1])
if job["mode"] == "imports":
    import importlib, pkgutil
    import accelbook
    failed = {}
    names = ["accelbook"] + [m.name for m in pkgutil.walk_packages(accelbook.__path__, "accelbook.")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            failed[name] = traceback.format_exc()
    print(json.dumps({"file": accelbook.__file__, "modules": names, "failed": failed}))
    sys.exit(0)
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
nb = nbformat.read(job["notebook"], as_version=4)
nb.cells.insert(0, nbformat.v4.new_code_cell(job["prelude"]))
if job["epilogue"]:
    nb.cells.append(nbformat.v4.new_code_cell(job["epilogue"]))
client = NotebookClient(nb, timeout=600, kernel_name=job["kernel"], allow_errors=False,
                        resources={"metadata": {"path": job["cwd"]}})
start = time.perf_counter()
error = None
try:
    client.execute()
except CellExecutionError as err:
    error = str(err)
except Exception:
    error = traceback.format_exc()
last = nb.cells[-1].get("outputs", []) if job["epilogue"] else []
text = "".join(o.get("text", "") for o in last if o.get("output_type") == "stream")
seconds = time.perf_counter() - start
if job.get("save"):  # the executed notebook, and the HTML that nbconvert (the reader's Jupyter) makes of it
    nbformat.write(nb, job["save"])
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    open(job["save"][:-len(".ipynb")] + ".html", "w").write(body)
print(json.dumps({"error": error, "seconds": seconds, "epilogue_stdout": text}))
'''

# First cell: the kernel is this venv's interpreter with the expected jax, and accelbook is the copy
# installed into it (not the checkout's src/).
PRELUDE = """\
import sys, jax, accelbook
assert sys.prefix == {prefix!r}, f"kernel runs {{sys.executable}}, not the test's venv"
assert jax.__version__ == {jax!r}, f"jax {{jax.__version__}} in the kernel, expected {jax!r}"
assert accelbook.__file__.startswith({prefix!r}), accelbook.__file__
"""

# Last cell: move every control of every live explorable once, check the redraw, move it back.
MOVE_CONTROLS = """\
import json as _json
from accelbook.measure import device_ceilings as _ceilings
# the chapter read the lane's ceilings instead of measuring its own (checked last: a chapter may
# need its first JAX call to come after its own set-up, as chapter 10's virtual devices do)
assert _ceilings.build_measurement() is not None, "the lane's ceilings file does not describe this kernel's device"
import ipywidgets as _w
from accelbook import explore as _explore

def _other(_c):
    if isinstance(_c, _w.Checkbox):
        return not _c.value
    _values = [_v for _, _v in _c.options]
    assert len(_values) > 1, f"a control with {len(_values)} option(s) cannot move"
    _i = _values.index(_c.value)
    return _values[_i + 1] if _i + 1 < len(_values) else _values[_i - 1]

_moved = {}
for _e in _explore.live():
    _moved[_e.name] = []
    for _k, _c in enumerate(_e.controls):
        _label = f"{_e.name}: control {_k} ({type(_c).__name__} {_c.description!r})"
        _old, _png, _caption = _c.value, _e.png, _e.caption
        _new = _other(_c)
        _c.value = _new
        assert _e.error is None, f"{_label} set to {_new!r}: {_e.error}"
        assert _e.png != _png or _e.caption != _caption, f"{_label} set to {_new!r}: nothing redrew"
        _c.value = _old
        assert _e.error is None, f"{_label} set back to {_old!r}: {_e.error}"
        _moved[_e.name].append(_c.description)
    print(f"{_e.name}: moved {len(_moved[_e.name])} controls ({', '.join(_moved[_e.name])})")
print("MOVED " + _json.dumps(_moved))
"""


def declared_explorables(path: pathlib.Path) -> list[str]:
    """The `name="..."` of every `explore.show(...)` call in a chapter's code cells."""
    names = []
    for cell in json.loads(path.read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "show(" not in src:
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:  # IPython syntax (magics): fall back to the text
            names += re.findall(r"""\bshow\((?:[^()]|\([^()]*\))*?\bname\s*=\s*["']([^"']+)["']""", src, re.S)
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "show"):
                names += [k.value.value for k in node.keywords
                          if k.arg == "name" and isinstance(k.value, ast.Constant)]
    return names


def floor_requirements() -> list[str]:
    """Each of pyproject.toml's dependencies (for this Python) pinned to its lower bound."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for text in deps:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"{text!r}: every dependency needs one lower bound (>=)"
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        out.append(f"{req.name}{extras}=={lows[0]}")
    return out


def pinned(requirements: list[str], name: str) -> str:
    norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()  # noqa: E731
    for line in requirements:
        req = Requirement(line)
        if norm(req.name) == norm(name):
            return next(iter(req.specifier)).version
    raise AssertionError(f"{name} is not pinned")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ACCELBOOK_EXPLORE_CHECK",
                        "JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR")}
    env.update(extra)
    return env


class Env:
    """A fresh venv with `requirements`, accelbook (--no-deps) and a kernelspec of its own."""

    def __init__(self, tmp: pathlib.Path, label: str, requirements: list[str], pip_args: list[str]):
        self.label, self.requirements = label, requirements
        self.prefix = tmp / "venv"
        self.python = self.prefix / "bin" / "python"
        self.kernel = f"accelbook-{label}"
        self.home = tmp / "home"  # Jupyter and IPython settings of this run only
        self.home.mkdir()
        self.ceilings = tmp / "ceilings.json"  # measured once for the lane, as a book build does
        self.timings = {}
        start = time.perf_counter()
        venv.create(self.prefix, with_pip=True)
        self.pip("install", "--quiet", "--no-compile", *pip_args)
        package = tmp / "accelbook-src"
        package.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, package / name)
        shutil.copytree(ROOT / "src", package / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        self.pip("install", "--quiet", "--no-compile", "--no-deps", str(package))  # as the chapters' install cell does
        self.run([self.python, "-m", "ipykernel", "install", "--prefix", str(self.prefix),
                  "--name", self.kernel, "--display-name", self.kernel])
        self.timings["install"] = time.perf_counter() - start

    def env(self) -> dict:
        extra = {"ACCELBOOK_CEILINGS": str(self.ceilings)} if self.ceilings.is_file() else {}
        return clean_env(JAX_PLATFORMS="cpu", ACCELBOOK_EXPLORE="live", **extra,
                         JUPYTER_PATH=str(self.prefix / "share" / "jupyter"),
                         JUPYTER_CONFIG_DIR=str(self.home / "jupyter-config"),
                         JUPYTER_DATA_DIR=str(self.home / "jupyter-data"),
                         IPYTHONDIR=str(self.home / "ipython"), PYDEVD_DISABLE_FILE_VALIDATION="1")

    def run(self, cmd, timeout=INSTALL_TIMEOUT) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                              env=clean_env())
        assert proc.returncode == 0, f"{self.label}: {cmd[1:]} failed:\n{proc.stderr[-4000:]}"
        return proc

    def pip(self, *args) -> None:
        self.run([self.python, "-m", "pip", *args])

    def driver(self, job: dict, timeout=NOTEBOOK_TIMEOUT) -> dict:
        script = self.prefix / "drive_notebook.py"
        if not script.exists():
            script.write_text(DRIVER)
        proc = subprocess.run([str(self.python), str(script), json.dumps(job)], capture_output=True,
                              text=True, timeout=timeout, env=self.env())
        assert proc.returncode == 0, f"{self.label}: driver failed:\n{proc.stderr[-4000:]}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def execute(self, chapter: pathlib.Path, save: pathlib.Path | None = None) -> dict:
        prelude = PRELUDE.format(prefix=str(self.prefix), jax=pinned(self.requirements, "jax"))
        out = self.driver({"mode": "notebook", "notebook": str(chapter), "kernel": self.kernel,
                           "cwd": str(chapter.parent), "prelude": prelude,
                           "epilogue": MOVE_CONTROLS, "save": str(save) if save else None})
        out["saved"] = str(save) if save else None
        return out


def colab_requirements() -> list[str]:
    lines = [l.split("#")[0].strip() for l in COLAB_VERSIONS.read_text().splitlines()]
    return [l for l in lines if l]


def lane(tmp: pathlib.Path, label: str, requirements: list[str], pip_args: list[str],
         notebooks: list[pathlib.Path], save: bool = False) -> dict:
    """Build one environment, import every module in it, run every notebook in it (saving the
    executed copies under ``tmp/executed`` with ``save``). Never raises: what failed is in the
    result, for the tests to report."""
    out = {"env": None, "error": None, "imports": None, "ceilings": None, "chapters": {}}
    try:
        env = out["env"] = Env(tmp, label, requirements, pip_args)
        out["imports"] = env.driver({"mode": "imports"})
        # the ceilings, measured once in this environment and read by every chapter (as the book's
        # build does, book/_ext/accelbook_ceilings.py), instead of once per chapter's kernel
        start = time.perf_counter()
        proc = subprocess.run([str(env.python), "-m", "accelbook.measure.device_ceilings", "--write",
                               str(env.ceilings)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                              env=env.env())
        assert proc.returncode == 0 and env.ceilings.is_file(), f"{label}: ceilings: {proc.stderr[-2000:]}"
        out["ceilings"] = proc.stdout.strip()
        env.timings["ceilings"] = time.perf_counter() - start
        (tmp / "executed").mkdir()
        for nb in notebooks:
            out["chapters"][nb.name] = env.execute(nb, tmp / "executed" / nb.name if save else None)
    except Exception as err:  # noqa: BLE001 (reported by every test of this lane)
        out["error"] = f"{type(err).__name__}: {err}"
    return out


_BACKGROUND: dict = {}


def start_lanes(tmp_path_factory) -> None:
    """Start building and exercising both environments, one thread each (the work is in their
    subprocesses; the machine has two cores), and return at once. tests/conftest.py calls it as soon
    as the tests are collected, so the environments are built beside the book build instead of after
    it; the ``lanes`` fixture waits for them. Calling it again does nothing."""
    if _BACKGROUND:
        return
    floor_reqs = floor_requirements()
    jobs = {
        "colab": (tmp_path_factory.mktemp("colab-env"), "colab", colab_requirements(), ["-r", str(COLAB_VERSIONS)],
                  EDITIONS, True),
        # nbclient runs the chapters; it is no dependency of the book, so pip picks it next to the floors
        "floor": (tmp_path_factory.mktemp("floor-env"), "floor", floor_reqs, [*floor_reqs, "nbclient"], CHAPTERS),
    }
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="version-env")
    _BACKGROUND.update(start=time.perf_counter(), futures={k: pool.submit(lane, *args) for k, args in jobs.items()})
    pool.shutdown(wait=False)


@pytest.fixture(scope="module")
def lanes(tmp_path_factory) -> dict:
    """Both environments, built and exercised side by side (see :func:`start_lanes`)."""
    start_lanes(tmp_path_factory)
    waited = time.perf_counter()
    result = {k: f.result() for k, f in _BACKGROUND["futures"].items()}
    for k, r in result.items():
        env = r["env"]
        chapters = {name: round(c["seconds"], 1) for name, c in r["chapters"].items()}
        print(f"{k}: build {env.timings.get('install', 0) if env else 0:.0f} s; ceilings "
              f"{env.timings.get('ceilings', 0) if env else 0:.0f} s ({r['ceilings']}); chapters {chapters}")
    print(f"both environments: {time.perf_counter() - _BACKGROUND['start']:.0f} s wall, of which the "
          f"suite waited {time.perf_counter() - waited:.0f} s")
    return result


def _lane(lanes: dict, label: str) -> dict:
    r = lanes[label]
    if r["error"]:
        pytest.fail(f"{label} environment: {r['error']}")
    return r


def test_colab_versions_list_names_its_source_and_pins_the_runtime():
    head = COLAB_VERSIONS.read_text()
    assert re.search(r"googlecolab/backend-info", head) and re.search(r"\b[0-9a-f]{40}\b", head)
    reqs = colab_requirements()
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^=\s]*", r) for r in reqs), reqs
    for name in ("jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "ipykernel", "ipython", "pillow",
                 "markdown-it-py", "nbclient", "nbformat", "jupyter_client", "traitlets", "pyzmq"):
        pinned(reqs, name)


def test_pyproject_floors_admit_colab():
    """Colab never gets accelbook's requirements installed (--no-deps), but they must not contradict it."""
    colab = colab_requirements()
    for line in floor_requirements():
        req = Requirement(line)
        lower = Requirement(re.sub("==", ">=", line))
        assert lower.specifier.contains(pinned(colab, req.name), prereleases=True), \
            f"{req.name}: pyproject's lower bound {req.specifier} excludes Colab's {pinned(colab, req.name)}"


def _check_imports(lanes: dict, label: str):
    r = _lane(lanes, label)
    out, prefix = r["imports"], str(r["env"].prefix)
    assert out["file"].startswith(prefix), out["file"]
    assert not out["failed"], "\n".join(f"{k}:\n{v}" for k, v in out["failed"].items())
    assert len(out["modules"]) > 5, out["modules"]


def _check_chapter(lanes: dict, label: str, chapter: pathlib.Path):
    out = _lane(lanes, label)["chapters"][chapter.name]
    if out["error"]:
        pytest.fail(f"{label}: {chapter.name} failed:\n{ANSI.sub('', out['error'])[-4000:]}")
    moved = json.loads(next(l for l in out["epilogue_stdout"].splitlines()
                            if l.startswith("MOVED "))[len("MOVED "):])
    declared = declared_explorables(chapter)
    assert declared, f"{chapter.name} declares no explorable"
    missing = [n for n in declared if not moved.get(n)]
    assert not missing, f"{label}: {chapter.name}: explorables never moved: {missing}; moved: {moved}"


def test_colab_env_imports_every_module(lanes):
    _check_imports(lanes, "colab")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_on_colab_versions(lanes, chapter):
    _check_chapter(lanes, "colab", chapter)


def test_floor_env_imports_every_module(lanes):
    _check_imports(lanes, "floor")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_on_floor_versions(lanes, chapter):
    _check_chapter(lanes, "floor", chapter)


# -- the notebook edition, executed in the colab lane: what a Colab reader sees --------------------

RAW = [(re.compile(r"\{[a-z][a-z:-]*\}`"), "a MyST role"), (re.compile(r"[⟪⟫]"), "a slot"),
       (re.compile(r"…"), 'a value never glued ("…")'), (re.compile(r"\bnan\b|\binf\b"), "a NaN or inf"),
       (re.compile(r"^\s*(`{3,}|:{3,})\s*\{", re.M), "a MyST directive")]


def _executed(lanes: dict, name: str) -> dict:
    out = _lane(lanes, "colab")["chapters"][name]
    if out["error"]:
        pytest.fail(f"colab: edition {name} failed:\n{ANSI.sub('', out['error'])[-4000:]}")
    return json.loads(pathlib.Path(out["saved"]).read_text())


def _shown(cell: dict) -> list[str]:
    return ["".join(o["data"]["text/markdown"]) for o in cell.get("outputs", [])
            if "text/markdown" in o.get("data", {})]


def test_spec_tables_edition_runs_on_colab_versions(lanes):
    _executed(lanes, "spec_tables.ipynb")


@pytest.mark.parametrize("path", EDITIONS, ids=lambda p: p.stem)
def test_colab_edition_shows_every_paragraph_with_this_runs_numbers(lanes, path):
    nb = _executed(lanes, path.name)
    renders = [c for c in nb["cells"] if c["cell_type"] == "code" and "render(" in "".join(c["source"])]
    assert renders, f"{path.name}: no paragraph quotes a glued value"
    solutions = 0
    for cell in renders:
        shown = _shown(cell)
        head = "".join(cell["source"]).splitlines()[0]
        assert len(shown) == 1, f"{path.name}: {head}: {len(shown)} Markdown outputs"
        for pattern, what in RAW:
            m = pattern.search(shown[0])
            assert not m, f"{path.name}: {what} shown: {shown[0][max(0, m.start() - 100):m.end() + 100]!r}"
        solutions += shown[0].startswith("<details>\n<summary><b>Solution to Exercise")
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    solutions += markdown.count("<summary><b>Solution to Exercise")
    exercises = len(re.findall(r"^#{2,6} Exercise \d+\.\d+ ", markdown, re.M))
    assert solutions == exercises, f"{path.name}: {exercises} exercises, {solutions} collapsed solutions"
    page = pathlib.Path(_lane(lanes, "colab")["chapters"][path.name]["saved"]).with_suffix(".html").read_text()
    assert page.count("<details>") >= solutions  # nbconvert's HTML keeps them collapsible


def _plain_site(html_text: str) -> str:
    text = re.sub(r"\\\(.*?\\\)", " ", html_text)  # inline math
    text = re.sub(r"<[^>]+>", "", text)
    text = htmllib.unescape(text).replace("\u2019", "'")  # Sphinx's smart quotes
    return " ".join(text.split())


def _plain_markdown(md: str) -> str:
    text = re.sub(r"\$[^$]+\$", " ", md)
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = text.replace("**", "").replace("*", "")
    return " ".join(text.split())


def test_colab_edition_paragraph_reads_as_the_site_renders_it(lanes, built_book):
    """Chapter 02's H100 paragraph quotes spec-sheet values only, so the executed edition (Colab's
    versions) and the built site (this machine) must print the same sentence, word for word."""
    _proc, html_dir = built_book
    page = (html_dir / "chapters" / "02_roofline.html").read_text()
    site = next(_plain_site(p) for p in re.findall(r"<p>(.*?)</p>", page, re.S) if "dense bf16 peak of" in p)
    nb = _executed(lanes, "02_roofline.ipynb")
    [edition] = [_plain_markdown(s) for c in nb["cells"] for s in _shown(c) if "dense bf16 peak of" in s]
    print(f"site:    {site}\nedition: {edition}")
    assert re.search(r"\d", site) and edition == site
