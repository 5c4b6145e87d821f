"""How long every explorable of the book takes to update, live and for the site's frames.

Each chapter is executed in a Jupyter kernel in live mode (as on Colab, JAX on the CPU). Then, for
every explorable the chapter displayed, the script moves its controls 40 times at random (seeded)
and times each update as the reader's kernel runs it: update the view, redraw what changed, encode
the PNG. Next to it, in the same run, it times a full redraw of the same settings (a fresh view,
everything drawn) and the static frames the book build draws for the website.

Targets on a 2-core CPU: live update median <= 80 ms and p95 <= 150 ms; static frame median <= 80 ms.
The script prints the numbers and whether each target is met; it is never part of pass/fail.

Run: .venv/bin/python benchmarks/explore_update.py [--chapter NN]
"""

import argparse
import json
import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
MOVES, REFERENCES = 40, 8

PROBE = f'''
import json, random, statistics, time
from accelbook import explore
rng = random.Random(0)
for state in explore.live():
    ex = state.explorable
    state.seconds.clear()
    settings = []
    for _ in range({MOVES}):
        c = rng.randrange(len(state.controls))
        control = state.controls[c]
        options = [False, True] if ex.params[c].kind == "toggle" else [v for _, v in control.options]
        control.value = rng.choice([v for v in options if v != control.value] or options)
        assert state.error is None, (state.name, state.error)
        settings.append({{p.name: w.value for p, w in zip(ex.params, state.controls)}})
    full = []
    for values in settings[:: max(1, len(settings) // {REFERENCES})]:
        t0 = time.perf_counter()
        ex.png(ex.reference(**values)[0], colors=None)
        full.append(time.perf_counter() - t0)
    static = ex.render_static()
    print("EXPLORE " + json.dumps(dict(name=state.name, live=state.seconds, full=full,
          static=static.draw_seconds, frames=static.frames, full_draws=static.full_draws)))
'''


def run(path: pathlib.Path) -> list[dict]:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    env = dict(os.environ, ACCELBOOK_EXPLORE="live", JAX_PLATFORMS="cpu")
    os.environ.update(env)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    out = []
    for output in nb.cells[-1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("EXPLORE "):
                out.append(json.loads(line[len("EXPLORE "):]))
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapter", help="two-digit chapter number, e.g. 02")
    args = ap.parse_args()
    chapters = sorted((ROOT / "book" / "chapters").glob(f"{args.chapter or ''}*.ipynb"))
    if not chapters:
        sys.exit(f"--chapter {args.chapter}: no chapter notebook matches")
    print(f"{'explorable':16s} {'live median':>11s} {'live p95':>9s} {'full redraw':>11s} {'ratio':>6s} "
          f"{'static frame':>12s} {'frames':>6s} {'full draws':>10s}")
    worst = {"live median": 0.0, "live p95": 0.0, "static median": 0.0}
    for path in chapters:
        for r in run(path):
            live_med, live_p95 = pct(r["live"], 0.5), pct(r["live"], 0.95)
            full_med, static_med = pct(r["full"], 0.5), pct(r["static"], 0.5)
            worst = {"live median": max(worst["live median"], live_med), "live p95": max(worst["live p95"], live_p95),
                     "static median": max(worst["static median"], static_med)}
            print(f"{r['name']:16s} {live_med * 1e3:8.1f} ms {live_p95 * 1e3:6.1f} ms {full_med * 1e3:8.0f} ms "
                  f"{full_med / live_med:5.0f}x {static_med * 1e3:9.1f} ms {r['frames']:6d} {r['full_draws']:10d}")
    targets = {"live median": 0.080, "live p95": 0.150, "static median": 0.080}
    for key, limit in targets.items():
        verdict = "meets" if worst[key] <= limit else "MISSES"
        print(f"worst {key}: {worst[key] * 1e3:.1f} ms, {verdict} the target of {limit * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
