"""How long an explorable figure takes to update, live and on the static site, and what a frame weighs.

Live (Jupyter, Colab): each change calls the chapter's drawing function and sends a PNG, so an
update costs one draw plus one encode. Static (the built book): the frame was drawn at build time;
switching is a data-URI swap, timed by the browser tests (book/_build/screenshots/explorables.json
after `make test`). This script times the live side for two of the book's explorables and prints
the cost of their static frames, side by side in one run.

Run: .venv/bin/python benchmarks/explore_update.py
"""

import io
import statistics
import time

import numpy as np
from matplotlib.figure import Figure

from accelbook import explore, plotting, specs, systolic, systolic_plot

plotting.use_style()


def roofline(chip, batch):
    fig = Figure(figsize=(9.5, 4.3))
    plotting.roofline_explorer(fig, specs.get_chip(chip), "bf16", batch, 4096)
    fig.tight_layout()
    return fig


def activity(R, N):
    A = np.random.default_rng(0).standard_normal((64, 16))
    B = np.random.default_rng(1).standard_normal((16, N))
    run = systolic.simulate(A, B, R, R, "ws")
    return systolic_plot.activity_figure(systolic_plot.standalone_figure((10, 4.6)), run)


def live_update(draw, values, dpi):
    """One live update: draw, then encode the PNG the inline backend sends (bbox tight)."""
    t0 = time.perf_counter()
    fig = draw(**values)
    fig.savefig(io.BytesIO(), format="png", dpi=dpi, bbox_inches="tight")
    return time.perf_counter() - t0


def main() -> None:
    cases = [
        ("roofline (ch02)", roofline, [explore.choice("chip", ["h100-sxm", "h200", "tpu-v6e"]),
                                       explore.slider("batch", [1, 64, 4096], value=64)], 80),
        ("systolic activity (ch06)", activity, [explore.slider("R", [8, 16]), explore.slider("N", [16, 17])], 96),
    ]
    print(f"{'explorable':26s} {'live update':>12s} {'static frame':>13s} {'frames':>7s} {'HTML':>9s}")
    for name, draw, params, dpi in cases:
        ex = explore.Explorable(draw, params, name="bench", dpi=dpi)
        live = [live_update(draw, v, dpi) for v in ex.grid() * 2]
        st = ex.render_static()
        print(f"{name:26s} {statistics.median(live) * 1e3:9.0f} ms {statistics.median(st.draw_seconds) * 1e3:10.0f} ms "
              f"{st.frames:7d} {st.bytes / 1e3:7.0f} kB   ({st.bytes / st.unique_frames / 1e3:.0f} kB a frame)")


if __name__ == "__main__":
    main()
