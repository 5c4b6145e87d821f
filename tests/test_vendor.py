"""book/_ext: the JavaScript the site serves itself, and the fall-back to CDNs without npm."""

import importlib
import json
import os
import pathlib
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
vendor = importlib.import_module("vendor")
site_ext = importlib.import_module("accelbook_site")


def test_manifest_pins_exact_versions_with_integrity():
    spec = vendor.manifest()
    names = {p["name"] for p in spec["packages"]}
    assert {"mathjax", "requirejs", "@jupyter-widgets/html-manager", "axe-core"} <= names
    for p in spec["packages"]:
        assert all(c.isdigit() or c == "." for c in p["version"]), p["version"]
        assert p["integrity"].startswith("sha512-") and len(p["integrity"]) == 95
        assert p["copy"]


def test_the_paths_the_site_loads_are_ones_the_manifest_copies():
    copied = {dst for p in vendor.manifest()["packages"] for dst in p["copy"].values()}
    for path in (site_ext.MATHJAX, site_ext.REQUIREJS, site_ext.WIDGETS):
        rel = path.removeprefix("vendor/")
        assert any(rel == d or rel.startswith(d + "/") for d in copied), path


def fake_config():
    return types.SimpleNamespace(html_extra_path=[], mathjax_path="https://cdn.example/mathjax.js",
                                 nb_ipywidgets_js={"https://cdn.example/require.js": {}})


def test_without_npm_the_build_keeps_the_cdns_and_says_why(monkeypatch):
    monkeypatch.setattr(vendor, "is_current", lambda: False)
    monkeypatch.setattr(vendor.shutil, "which", lambda name: None)
    assert vendor.fetch() == "npm is not installed"
    config = fake_config()
    site_ext.configure(None, config)
    assert config.mathjax_path == "https://cdn.example/mathjax.js" and config.html_extra_path == []
    assert config.nb_ipywidgets_js == {"https://cdn.example/require.js": {}}


def test_with_the_files_in_place_the_build_serves_them(monkeypatch):
    monkeypatch.setattr(vendor, "fetch", lambda: None)
    config = fake_config()
    site_ext.configure(None, config)
    assert config.mathjax_path == "../vendor/mathjax/tex-mml-chtml.js"
    assert config.html_extra_path == [str(vendor.TARGET)]
    assert all(not k.startswith("http") for k in config.nb_ipywidgets_js)
    # every attribute value is a string (myst-nb writes them into the script tag)
    assert all(isinstance(v, str) for attrs in config.nb_ipywidgets_js.values() for v in attrs.values())


def test_a_tarball_with_the_wrong_checksum_is_refused(monkeypatch, tmp_path):
    bad = {"packages": [{"name": "requirejs", "version": "2.3.8", "integrity": "sha512-" + "A" * 86 + "==",
                         "copy": {"require.js": "requirejs/require.js"}}]}
    monkeypatch.setattr(vendor, "manifest", lambda: bad)
    monkeypatch.setattr(vendor, "TARGET", tmp_path / "_vendor")
    monkeypatch.setattr(vendor, "STAMP", tmp_path / "_vendor" / "vendor" / "manifest.json")
    if vendor.shutil.which("npm") is None:
        pytest.fail("npm is needed to test the checksum check (make test runs where make book does)")
    with pytest.raises(RuntimeError, match="integrity"):
        vendor.fetch()
    assert not (tmp_path / "_vendor").exists()


def test_the_build_sets_static_explorables_for_its_kernels(monkeypatch):
    monkeypatch.delenv("ACCELBOOK_EXPLORE", raising=False)

    class App:  # setup only registers things: every registration is accepted and ignored
        def __getattr__(self, name):
            return lambda *args, **kwargs: None
    site_ext.setup(App())
    assert os.environ["ACCELBOOK_EXPLORE"] == "static"  # monkeypatch restores the variable afterwards


def test_site_serves_the_manifest_it_was_built_with(built_book):
    proc, html_dir = built_book
    assert proc.returncode == 0
    served = json.loads((html_dir / "vendor" / "manifest.json").read_text())
    assert served == vendor.manifest()
    assert (html_dir / "vendor" / "mathjax" / "tex-mml-chtml.js").is_file()
