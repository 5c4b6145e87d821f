"""Time a clean build of the whole book, as `make book` does it from a fresh clone.

Builds into a temporary folder (so no execution cache is reused), with -W -n --keep-going, and
prints the wall time of the build and the execution time of each notebook as myst-nb reports it.
The book's budget: each notebook under 90 s and the whole book under 6 minutes on a 2-core CPU
(most of it now goes to drawing the explorable figures ahead of time for the static site).

Run: make bench   (or .venv/bin/python benchmarks/book_build_time.py)
"""

import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "--path-output", out,
                               str(ROOT / "book")], capture_output=True, text=True)
        wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(log[-4000:])
        sys.exit(f"build failed (exit {proc.returncode})")
    for path, seconds in re.findall(r"(\S+\.ipynb): Executed notebook in ([\d.]+) seconds", log):
        over = "  (over the 90 s budget)" if float(seconds) > 90 else ""
        print(f"{float(seconds):7.1f} s  {pathlib.Path(path).name}{over}")
    over = "  (over the 6 min budget)" if wall > 360 else ""
    print(f"{wall:7.1f} s  clean build of the whole book{over}")


if __name__ == "__main__":
    main()
