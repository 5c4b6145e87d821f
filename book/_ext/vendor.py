"""Fetch the JavaScript the built book serves itself (MathJax, RequireJS, the ipywidgets manager).

The packages, their exact versions and their sha512 integrity are listed in vendor.json. They are
downloaded from the npm registry with ``npm pack`` (the tarball only, no dependencies), checked
against the listed integrity, and the listed files are copied into ``book/_vendor/vendor/``, which
Sphinx copies to the site's ``vendor/`` folder (``html_extra_path``). Nothing is committed.

    python book/_ext/vendor.py        # what `make book` runs; safe to repeat (no-op when up to date)

Without npm, or without access to the registry, it says so and exits 0: the book then loads the same
libraries from their usual CDNs.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "vendor.json"
TARGET = HERE.parent / "_vendor"          # html_extra_path entry; its contents land at the site root
STAMP = TARGET / "vendor" / "manifest.json"


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def is_current() -> bool:
    """True when _vendor/ holds exactly what vendor.json lists."""
    return STAMP.is_file() and json.loads(STAMP.read_text()) == manifest()


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _copy(src: Path, dst: Path, exclude: list[str]) -> None:
    if src.is_dir():
        for f in sorted(src.rglob("*")):
            if f.is_file() and not any(fnmatch.fnmatch(f.name, pat) for pat in exclude):
                out = dst / f.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)
    elif src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    else:
        raise FileNotFoundError(f"{src} is listed in vendor.json but is not in the package")


def fetch() -> str | None:
    """Make _vendor/ current. Returns None on success, else why the CDNs will be used."""
    if is_current():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    spec = manifest()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        staging = tmp / "vendor"
        for pkg in spec["packages"]:
            ref = f"{pkg['name']}@{pkg['version']}"
            try:
                out = subprocess.run([npm, "pack", ref, "--json", "--pack-destination", str(tmp)],
                                     capture_output=True, text=True, timeout=300, cwd=tmp)
            except subprocess.TimeoutExpired:
                return f"`npm pack {ref}` timed out"
            if out.returncode != 0:
                return f"`npm pack {ref}` failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
            tgz = tmp / json.loads(out.stdout)[0]["filename"]
            got = _integrity(tgz)
            if got != pkg["integrity"]:
                raise RuntimeError(f"{ref}: the downloaded tarball's integrity {got} differs from vendor.json's "
                                   f"{pkg['integrity']}; refusing to use it")
            unpacked = tmp / "unpacked" / pkg["name"].replace("/", "__")
            with tarfile.open(tgz) as tar:
                tar.extractall(unpacked, filter="data")
            for src, dst in pkg["copy"].items():
                _copy(unpacked / "package" / src, staging / dst, spec.get("exclude", []))
        (staging / "manifest.json").write_text(json.dumps(spec, indent=2) + "\n")
        if (TARGET / "vendor").exists():
            shutil.rmtree(TARGET / "vendor")
        TARGET.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), TARGET / "vendor")
    return None


def main() -> int:
    why = fetch()
    if why is None:
        names = ", ".join(f"{p['name']} {p['version']}" for p in manifest()["packages"])
        print(f"vendor: the book serves {names} from book/_vendor/vendor/")
    else:
        print(f"vendor: {why}; the built pages will load MathJax and the widget manager from CDNs "
              "(readers need the network for math and widgets)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
