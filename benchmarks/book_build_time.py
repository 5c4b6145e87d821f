"""Time a clean build of the whole book, as `make book` does it from a fresh clone, and say where
each notebook's seconds go.

1. A clean `jupyter-book build -W -n --keep-going` into a temporary folder (no execution cache is
   reused): its wall time, and each notebook's execution time as myst-nb reports it.
2. Each notebook executed again on its own, in static mode as the build runs it, with every cell
   timed: cells that display an explorable count as "frames", cells that call the measurement layer
   as "measurement", everything else (imports, models, plain figures, tables) as "the rest".

Budget on a 2-core CPU: the whole book builds in <= 120 s with six chapters, <= 180 s with eleven.

Run: make bench   (or .venv/bin/python benchmarks/book_build_time.py [--no-split])
"""

import argparse
import datetime
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUDGET = {6: 120.0, 11: 180.0}


def build() -> tuple[float, dict[str, float]]:
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
    executed = {pathlib.Path(p).name: float(s)
                for p, s in re.findall(r"(\S+\.ipynb): Executed notebook in ([\d.]+) seconds", log)}
    return wall, executed


def kind(source: str) -> str:
    if "explore.show(" in source:
        return "frames"
    if re.search(r"\bmeasure\.", source):
        return "measurement"
    return "the rest"


def split(path: pathlib.Path) -> dict[str, float]:
    """Seconds per kind of cell for one notebook executed in static mode."""
    nb = nbformat.read(path, as_version=4)
    os.environ.update(ACCELBOOK_EXPLORE="static", JAX_PLATFORMS="cpu")
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    out = {"measurement": 0.0, "frames": 0.0, "the rest": 0.0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        t = cell.metadata.get("execution", {})
        start, end = t.get("iopub.execute_input") or t.get("shell.execute_reply.started"), t.get("shell.execute_reply")
        if start and end:
            seconds = (datetime.datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            out[kind(cell.source)] += seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-split", action="store_true", help="only the clean build, no per-cell table")
    args = ap.parse_args()
    wall, executed = build()
    chapters = sorted((ROOT / "book" / "chapters").glob("*.ipynb"))
    budget = BUDGET[6] if len(chapters) <= 6 else BUDGET[11]
    print(f"{'notebook':34s} {'executed':>9s}" + ("" if args.no_split else
                                                 f" {'measurement':>12s} {'frames':>8s} {'the rest':>9s}"))
    notebooks = chapters + sorted((ROOT / "book" / "appendix").glob("*.ipynb"))
    for path in notebooks:
        line = f"{path.name:34s} {executed.get(path.name, float('nan')):7.1f} s"
        if not args.no_split:
            s = split(path)
            line += f" {s['measurement']:10.1f} s {s['frames']:6.1f} s {s['the rest']:7.1f} s"
        print(line)
    print(f"{'executing every notebook':34s} {sum(executed.values()):7.1f} s")
    verdict = "within" if wall <= budget else "OVER"
    print(f"{'clean build of the whole book':34s} {wall:7.1f} s  ({verdict} the {budget:.0f} s budget "
          f"for {len(chapters)} chapters)")


if __name__ == "__main__":
    main()
