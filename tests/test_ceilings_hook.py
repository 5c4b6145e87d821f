"""The book's once-per-build ceilings (book/_ext/accelbook_ceilings.py): where the file lives, when
it is measured, the CPU pinning, and that the notebooks' kernels inherit both."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"


def load_hook():
    spec = importlib.util.spec_from_file_location("accelbook_ceilings_under_test", EXT / "accelbook_ceilings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hook(monkeypatch):
    module = load_hook()
    monkeypatch.setattr(module, "CPU_AFFINITY", "all")  # never pin the test process itself
    monkeypatch.setenv(module.ENV, "unset-by-test")  # restored after the test
    monkeypatch.setenv(module.PINNING_ENV, "unset-by-test")
    messages = []
    monkeypatch.setattr(module, "logger", types.SimpleNamespace(
        info=lambda m: messages.append(("info", m)), warning=lambda m: messages.append(("warning", m))))
    module.messages = messages
    return module


def fake_app(tmp_path, cache="cache", mode="cache"):
    config = types.SimpleNamespace(nb_execution_cache_path=str(tmp_path / cache) if cache else "",
                                   nb_execution_mode=mode)
    return types.SimpleNamespace(config=config, outdir=str(tmp_path / "_build" / "html"))


def test_the_file_lives_in_the_execution_cache(hook, tmp_path):
    assert hook.ceilings_path(fake_app(tmp_path)) == (tmp_path / "cache" / hook.FILENAME).resolve()
    # myst-nb's default cache folder when none is configured
    assert hook.ceilings_path(fake_app(tmp_path, cache=None)) == \
        (tmp_path / "_build" / ".jupyter_cache" / hook.FILENAME).resolve()


def test_the_env_name_is_the_librarys():
    from accelbook.measure import device_ceilings

    assert load_hook().ENV == device_ceilings.ENV


def test_an_existing_file_is_reused_not_measured(hook, tmp_path, monkeypatch):
    app = fake_app(tmp_path)
    path = hook.ceilings_path(app)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    monkeypatch.setattr(hook.subprocess, "run", lambda *a, **k: pytest.fail("measured again"))
    hook.measure_once(app)
    assert os.environ[hook.ENV] == str(path) and path.read_text() == "{}"


def test_a_missing_file_is_measured_in_a_subprocess_with_the_builds_environment(hook, tmp_path, monkeypatch):
    # stand-in for the measurement: writes what it was given, so the command line is checked
    monkeypatch.setattr(hook, "_MEASURE", "import json, os, sys; assert sys.argv[1] == '--write'; "
                        "open(sys.argv[2], 'w').write(json.dumps({'marker': os.environ.get('ACCELBOOK_MARKER')}))")
    monkeypatch.setenv("ACCELBOOK_MARKER", "from-the-build")
    app = fake_app(tmp_path)
    hook.measure_once(app)
    path = hook.ceilings_path(app)
    assert json.loads(path.read_text()) == {"marker": "from-the-build"}
    assert os.environ[hook.ENV] == str(path)


def test_a_failed_measurement_warns_and_sets_nothing(hook, tmp_path, monkeypatch):
    monkeypatch.setattr(hook, "_MEASURE", "raise SystemExit('no device here')")
    hook.measure_once(fake_app(tmp_path))
    assert os.environ[hook.ENV] == "unset-by-test"
    assert any(kind == "warning" and "no device here" in m for kind, m in hook.messages)


def test_nothing_happens_when_notebooks_are_not_executed(hook, tmp_path, monkeypatch):
    monkeypatch.setattr(hook.subprocess, "run", lambda *a, **k: pytest.fail("measured"))
    hook.measure_once(fake_app(tmp_path, mode="off"))
    assert os.environ[hook.ENV] == "unset-by-test" and not (tmp_path / "cache").exists()


PIN = """
import os, subprocess, sys
sys.path.insert(0, {ext!r})
import accelbook_ceilings as hook
before = sorted(os.sched_getaffinity(0))
got = hook.pin_cpus({setting!r})
child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                       capture_output=True, text=True).stdout.strip()
print(before, got, child, sep="|")
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
@pytest.mark.parametrize("setting", ["one core", "all"])
def test_pinning_is_inherited_by_child_processes(setting):
    out = subprocess.run([sys.executable, "-c", PIN.format(ext=str(EXT), setting=setting)],
                         capture_output=True, text=True, check=True).stdout.strip()
    before, got, child = out.split("|")
    before = json.loads(before)
    expected = before[:1] if setting == "one core" else before
    assert json.loads(got) == expected and json.loads(child) == expected


def test_pinning_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="CPU_AFFINITY='half'"):
        load_hook().pin_cpus("half")


NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
               "source": ["import os\n", "print('ENV=' + os.environ.get('ACCELBOOK_CEILINGS', 'missing'))\n",
                          "print('CPUS=' + str(sorted(os.sched_getaffinity(0))))"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_myst_nb_kernels_inherit_the_file_and_the_pinning(tmp_path):
    """A real Sphinx + myst-nb build: the kernel that runs the notebook sees the extension's
    environment variable and CPU affinity. The file is made beforehand, so nothing is measured."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.md").write_text("# Test\n\n```{toctree}\nnb\n```\n")
    (src / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / load_hook().FILENAME).write_text("{}")
    (src / "conf.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(EXT)!r})
        extensions = ["myst_nb", "accelbook_ceilings"]
        nb_execution_mode = "cache"
        nb_execution_cache_path = {str(cache)!r}
        exclude_patterns = ["_build"]
        """))
    out = tmp_path / "out"
    env = dict(os.environ)
    env.pop("ACCELBOOK_CEILINGS", None)
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    html = (out / "nb.html").read_text()
    assert f"ENV={(cache / load_hook().FILENAME).resolve()}" in html
    cpus = sorted(os.sched_getaffinity(0))
    assert f"CPUS={cpus[:1] if load_hook().CPU_AFFINITY == 'one core' else cpus}" in html
