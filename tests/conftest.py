"""Shared test settings: JAX on the CPU, hypothesis profiles sized for a shared 2-core machine, and
one clean build of the book for every test that needs it."""

import os
import pathlib
import subprocess
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("default", max_examples=60, deadline=None)
settings.load_profile("default")

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """A clean `jupyter-book build -W -n --keep-going` of the book: (process, html folder).

    ACCELBOOK_BUILT_BOOK=path/to/_build/html reuses a finished build instead, for iterating on the
    browser tests; `make test` never sets it."""
    prebuilt = os.environ.get("ACCELBOOK_BUILT_BOOK")
    if prebuilt:
        return subprocess.CompletedProcess(["prebuilt"], 0, "", ""), pathlib.Path(prebuilt)
    out = tmp_path_factory.mktemp("book")
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    env.pop("ACCELBOOK_EXPLORE", None)  # the book's own extension sets it for the build
    env["ACCELBOOK_EXPLORE_CHECK"] = "1"  # and every explorable is also drawn at its live ranges' ends
    proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "--path-output", str(out),
                           str(ROOT / "book")], capture_output=True, text=True, env=env, timeout=3000)
    return proc, out / "_build" / "html"


def pytest_collection_finish(session):
    """The version environments (tests/test_versions.py) take minutes of pip installs and kernels:
    start them in the background as soon as the tests are collected, so that they run beside the
    book build and the suite does not wait for one after the other."""
    for module in {item.module for item in session.items if "lanes" in getattr(item, "fixturenames", ())}:
        module.start_lanes(session.config._tmp_path_factory)
