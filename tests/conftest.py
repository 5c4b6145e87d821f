"""Shared test settings: JAX on the CPU, hypothesis profiles sized for a shared 2-core machine, and
one clean build of the book for every test that needs it."""

import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("default", max_examples=60, deadline=None)
settings.load_profile("default")

ROOT = pathlib.Path(__file__).resolve().parents[1]


_BUILD: dict = {}


def start_build(tmp_path_factory) -> None:
    """Start the clean `jupyter-book build -W -n --keep-going` of the book in the background and
    return at once (its output goes to files, so a full pipe can never stall it). Called as soon as
    the tests are collected, so the build runs beside the tests that do not need it; the
    ``built_book`` fixture waits for it. Calling it again does nothing."""
    if _BUILD:
        return
    prebuilt = os.environ.get("ACCELBOOK_BUILT_BOOK")
    if prebuilt:
        _BUILD["result"] = (subprocess.CompletedProcess(["prebuilt"], 0, "", ""), pathlib.Path(prebuilt))
        return
    out = tmp_path_factory.mktemp("book")
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    env.pop("ACCELBOOK_EXPLORE", None)  # the book's own extension sets it for the build
    env["ACCELBOOK_EXPLORE_CHECK"] = "1"  # and every explorable is also drawn at its live ranges' ends
    args = [str(jb), "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(ROOT / "book")]
    stdout, stderr = (open(out / name, "w+") for name in ("build.stdout", "build.stderr"))
    _BUILD.update(args=args, out=out, stdout=stdout, stderr=stderr, start=time.perf_counter(),
                  proc=subprocess.Popen(args, stdout=stdout, stderr=stderr, text=True, env=env))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """A clean `jupyter-book build -W -n --keep-going` of the book: (process, html folder).

    ACCELBOOK_BUILT_BOOK=path/to/_build/html reuses a finished build instead, for iterating on the
    browser tests; `make test` never sets it."""
    start_build(tmp_path_factory)
    if "result" not in _BUILD:
        proc = _BUILD["proc"]
        try:
            code = proc.wait(timeout=3000)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        texts = []
        for f in (_BUILD["stdout"], _BUILD["stderr"]):
            f.seek(0)
            texts.append(f.read())
            f.close()
        print(f"book build: {time.perf_counter() - _BUILD['start']:.0f} s after collection")
        _BUILD["result"] = (subprocess.CompletedProcess(_BUILD["args"], code, *texts),
                            _BUILD["out"] / "_build" / "html")
    return _BUILD["result"]


def _needs(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that need the book build or the version environments last, so the suite
    does its other work while those build in the background (the order within each group is
    kept)."""
    items.sort(key=lambda item: (_needs(item, "built_book") or _needs(item, "lanes"), _needs(item, "lanes")))


def pytest_collection_finish(session):
    """The version environments (tests/test_versions.py) take minutes of pip installs and kernels,
    and the clean book build minutes of kernels: start them all in the background as soon as the
    tests are collected, so that they run beside each other and beside the other tests, and the
    suite does not wait for one after the other."""
    for module in {item.module for item in session.items if "lanes" in getattr(item, "fixturenames", ())}:
        module.start_lanes(session.config._tmp_path_factory)
    if any(_needs(item, "built_book") for item in session.items):
        start_build(session.config._tmp_path_factory)


def pytest_sessionfinish(session, exitstatus):
    """A build still running when the session ends (a failure with -x, an interrupt) is stopped."""
    proc = _BUILD.get("proc")
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# The built site in a browser (tests/browsing.py): one server and one tour of every page in both
# themes, shared by tests/test_site.py and tests/test_a11y.py.
@pytest.fixture(scope="session")
def site(built_book):
    """(html folder, base URL) of the clean build, served on a local port."""
    import browsing

    proc, html_dir = built_book
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    with browsing.serve(html_dir) as base:
        yield html_dir, base


@pytest.fixture(scope="session")
def tour(site):
    """Every page opened once per theme, with what the site's and accessibility tests check
    (:func:`browsing.take_tour`); the time each step took lands in book/_build/screenshots/tour.json.
    Its browser is closed before the fixture returns: Playwright's sync API allows one running
    instance per thread, and tests/test_pdf.py starts its own."""
    import json

    import browsing

    html_dir, base = site
    with browsing.launch() as browser:
        found = browsing.take_tour(browser, base, html_dir)
    browsing.SHOTS.mkdir(parents=True, exist_ok=True)
    (browsing.SHOTS / "tour.json").write_text(json.dumps(
        {theme: {page: rec["seconds"] for page, rec in pages.items()} for theme, pages in found.items()}, indent=2))
    return found
