"""Tests for accelbook.plots.systolic: the pictures show what the simulator did."""

import re

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from accelbook import explore
from accelbook.models import systolic
from accelbook.plots import style, systolic as sp

matplotlib.use("Agg")


def run_of(dataflow, M=6, N=4, K=4, R=4, C=4, double_buffer=False, seed=0):
    rng = np.random.default_rng(seed)
    return systolic.simulate(rng.integers(1, 9, (M, K)), rng.integers(1, 9, (K, N)), R, C, dataflow,
                             double_buffer=double_buffer)


def texts(ax):
    return [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------------------------------------
# stationary_tile


def test_weights_shift_in_from_the_top_one_row_per_cycle():
    run = run_of("ws")                      # one fold; the 4-row tile loads in cycles 0-3
    tile0 = sp.stationary_tile(run, 0)
    assert tile0[0, :, 0].tolist() == [3, 3, 3, 3]          # bottom tile row (k = 3) enters first
    assert np.all(tile0[1:] == -1)
    tile1 = sp.stationary_tile(run, 1)
    assert tile1[:2, 0, 0].tolist() == [2, 3] and np.all(tile1[2:] == -1)
    loaded = sp.stationary_tile(run, run.folds[0].stream_start)
    k, n = np.indices((4, 4))
    assert np.array_equal(loaded[..., 0], k) and np.array_equal(loaded[..., 1], n)   # B[k, n]


def test_input_stationary_holds_a_transposed_and_output_stationary_holds_c():
    run = run_of("is", M=3, N=5, K=4)
    held = sp.stationary_tile(run, run.folds[0].stream_start)
    assert held[2, 1].tolist() == [1, 2]                    # PE (r=2, c=1) holds A[m=1, k=2]
    assert np.all(held[:, 3:] == -1)                        # only M = 3 columns used
    run = run_of("os", M=3, N=4, K=5)
    held = sp.stationary_tile(run, 0)
    assert held[2, 3].tolist() == [2, 3] and np.all(held[3] == -1)


def test_stationary_tile_follows_the_folds_and_double_buffering():
    run = run_of("ws", M=3, N=4, K=8, R=4, C=4)             # two K-folds
    f1 = run.folds[1]
    assert sp.stationary_tile(run, f1.stream_start)[0, 0].tolist() == [4, 0]
    db = run_of("ws", M=3, N=4, K=8, R=4, C=4, double_buffer=True)
    during_next_load = db.folds[1].load_start              # fold 0 still computes: it is shown
    assert sp.stationary_tile(db, during_next_load)[0, 0].tolist() == [0, 0]
    assert np.all(sp.stationary_tile(db, 0)[1:] == -1)       # the first load is visible
    fig = Figure()
    ax = fig.add_subplot()
    sp.draw_cycle(ax, db, 0)
    assert "loading the tile, 1 of 4 rows in" in ax.get_title()
    assert "$w_{2,0}$" in texts(ax)                          # the next tile row waits above


def test_the_pictures_match_the_simulator_busy_count():
    for dataflow in systolic.DATAFLOWS:
        run = run_of(dataflow)
        fig = Figure()
        ax = fig.add_subplot()
        for t in range(run.cycles):
            sp.draw_cycle(ax, run, t)
            busy = int(run.activity[t].sum())
            shaded = sum(p.get_facecolor()[:3] != (1.0, 1.0, 1.0) for p in ax.patches)
            assert shaded == busy
            if busy:
                assert f"{busy} of 16 PEs busy" in ax.get_title()


def test_draw_cycle_writes_the_operands():
    run = run_of("ws")
    fig = Figure()
    ax = fig.add_subplot()
    sp.draw_cycle(ax, run, 4)                                # PE (0, 0) multiplies A[0, 0]
    assert "$a_{0,0}$" in texts(ax) and "$a_{1,0}$" in texts(ax)   # A[1, 0] waits at the edge
    sp.draw_cycle(ax, run, 0)
    assert "loading the tile, 1 of 4 rows in" in ax.get_title()
    sp.draw_cycle(ax, run, 9)
    assert "$c_{0,0}$" in texts(ax)                          # C[0, 0] has left the bottom row
    run = run_of("os")
    sp.draw_cycle(ax, run, 0)
    assert "$a_{0,0}$$b_{0,0}$" in texts(ax)


def test_snapshots_and_animation():
    run = run_of("ws")
    fig = Figure(figsize=(10, 3))
    axes = sp.snapshots(fig, run, [1, 5, 9])
    assert len(axes) == 3 and axes[1].get_title().startswith("cycle 5")
    grid = sp.snapshots(Figure(figsize=(6, 6)), run, [1, 5, 9], ncols=2)
    assert len(grid) == 3 and len(grid[0].figure.axes) == 4     # a 2 x 2 grid, one left empty
    html = sp.animation_html(run)
    assert len(re.findall(r"frames\[\d+\] = ", html)) == run.cycles
    assert len(html) < 60_000 * run.cycles                  # a light page: tens of KB a frame
    assert "http" not in html and 'class="fa' not in html   # nothing fetched from a CDN
    assert html.count('<span aria-hidden="true">') == 9      # matplotlib's nine player buttons
    with pytest.raises(ValueError, match="max_frames"):
        sp.animation_html(run_of("ws", M=40))


def test_activity_figure_states_the_closed_form():
    for double_buffer in (False, True):
        run = run_of("ws", M=9, N=7, K=10, R=4, C=3, double_buffer=double_buffer)
        fig = sp.activity_figure(style.standalone_figure((9, 4.5)), run)
        title = fig._suptitle.get_text()
        assert f"{run.cycles} cycles simulated = {run.cycles} closed form" in title
        assert f"{100 * run.utilization:.1f} %" in title
        assert len(fig.axes) == 4                            # 3 panels and a colour bar


def visible_labels(ticks):
    return [t.get_text() for t in ticks.labels if t.get_visible()]


def test_activity_figure_ticks_whole_rows_and_leaves_room_for_the_legend():
    view = sp.ActivityView()
    view.update(R=16, dataflow="is", M=20, N=17, K=16, schedule="single")
    panels, cycles = view._panels, view.run.cycles
    heat_rows, pe_cols, pe_rows = (visible_labels(t) for t in panels.array_ticks)
    for labels in (heat_rows, pe_cols, pe_rows):
        assert len(labels) >= 3 and all(x.isdigit() and int(x) < 16 for x in labels)
    times = [float(x) for x in visible_labels(panels.cycle_ticks[1])]
    assert len(times) >= 3 and all(t == round(t) and 0 <= t < cycles for t in times)
    marks = panels.cycle_ticks[0].marks.get_xdata()          # the heat map's ticks: the same cycles
    assert np.array_equal(marks, times)
    line = panels.line
    assert line.get_ylim()[1] > 1.2                       # the legend sits above a full array
    view.figure.canvas.draw()
    legend = line.get_legend().get_window_extent()
    assert legend.y0 > line.transData.transform((0, 1))[1] + 2  # above everything that changes


# ---------------------------------------------------------------------------------------------
# the explorable (chapter 06's "tpu-activity")


def activity_params():
    """The chapter's controls: every live value, the site's values as static subsets."""
    dims = list(range(1, 65))
    return [explore.slider("R", list(range(8, 33, 4)), value=8, static=[8, 16], label="array R = C"),
            explore.choice("dataflow", [(v, k) for k, v in systolic.DATAFLOWS.items()], value="ws"),
            explore.slider("M", dims, value=64, static=[64]),
            explore.slider("N", dims, value=16, static=[16, 17]),
            explore.slider("K", dims, value=16, static=[16]),
            explore.choice("schedule", [(v, k) for k, v in sp.ActivityView.SCHEDULES.items()],
                           value="double")]


@pytest.fixture
def house_style():
    with style.style():
        yield


def test_activity_view_updates_equal_a_full_redraw(house_style):
    ex = explore.Explorable(sp.ActivityView, activity_params(), name="tpu-activity")
    assert ex.check() >= 10                   # the ends of every live range, a few site frames
    for values in (dict(R=32, dataflow="is", M=64, N=64, K=64, schedule="double"),
                   dict(R=8, dataflow="os", M=1, N=1, K=1, schedule="single"),
                   dict(R=20, dataflow="ws", M=37, N=50, K=45, schedule="pipelined")):
        got, cap = ex.frame(**values)
        want, want_cap = ex.reference(**values)
        assert explore.difference(got, want) <= explore.TOLERANCE["fraction"] and cap == want_cap


def test_activity_view_shows_the_model(house_style):
    view = sp.ActivityView()
    for R, df, M, N, K, sched in [(8, "ws", 64, 17, 16, "single"), (12, "os", 8, 8, 64, "single"),
                                  (16, "is", 30, 40, 50, "double"), (8, "ws", 5, 17, 30, "pipelined")]:
        caption = view.update(R=R, dataflow=df, M=M, N=N, K=K, schedule=sched)
        panels, run = view._panels, view.run
        closed = {"single": systolic.cycles, "double": systolic.cycles_double_buffered,
                  "pipelined": systolic.cycles_pipelined}[sched](M, N, K, R, R, df)
        assert run.pipelined == (sched == "pipelined")
        assert ("pipelined folds" in panels.title.get_text()) == (sched == "pipelined")
        assert run.cycles == closed and run.rows == run.cols == R and run.dataflow == df
        title = panels.title.get_text()
        assert f"{R} × {R} {systolic.DATAFLOWS[df]}" in title and f"M={M}, N={N}, K={K}" in title
        assert f"{closed} cycles simulated = {closed} closed form" in title
        up = lambda d: -(-d // R)                        # tiles of R along one dimension
        folds = {"ws": up(K) * up(N), "is": up(K) * up(M), "os": up(M) * up(N)}[df]
        assert f"{folds} fold{'s' if folds > 1 else ''}\n" in title
        assert len(panels.folds.get_segments()) == folds - 1  # a line at each boundary between folds
        assert panels.heat_image.get_array().shape == (R, closed, 4)   # RGBA bytes
        assert panels.pe_image.get_array().shape == (R, R, 4)
        assert panels.heat.get_xlim() == panels.line.get_xlim() == (-0.5, closed - 0.5)
        x, y = panels.busy.get_data()                   # a step per cycle, averaging to the utilization
        assert len(x) == closed + 1 and np.isclose(np.mean(y[:-1]), M * N * K / (R * R * closed))
        assert panels.mean.get_ydata()[0] == pytest.approx(M * N * K / (R * R * closed))
        assert caption == sp.activity_caption(run)


def test_random_moves_never_redraw_the_background(house_style):
    params = activity_params()
    ex = explore.Explorable(sp.ActivityView, params, name="tpu-activity")
    rng = np.random.default_rng(3)
    for _ in range(12):
        values = {p.name: p.values[rng.integers(len(p.values))] for p in params}
        ex.frame(**values)
    assert ex._renderer.full_draws == 1


def test_the_heat_maps_pixels_are_the_busy_fractions_colours(house_style):
    """The images draw nearest-neighbour without matplotlib's resampling: each pixel is the colour
    bar's colour of the busy fraction of the cell under it, as imshow(interpolation="nearest") draws."""
    view = sp.ActivityView()
    view.update(R=8, dataflow="ws", M=20, N=17, K=16, schedule="single")
    run, panels = view.run, view._panels
    fig = view.figure
    FigureCanvasAgg(fig).draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    height = pixels.shape[0]
    busy = run.activity.mean(axis=2).T                   # (rows, cycles)
    for r, t in [(1, 3), (3, run.cycles // 2), (6, run.cycles - 4), (5, 17)]:   # off the spines
        x, y = panels.heat.transData.transform((t, r))   # the cell's centre
        want = np.array(matplotlib.colormaps["Blues"](busy[r, t], bytes=True)[:3])
        assert np.abs(pixels[height - 1 - int(y), int(x)] - want).max() <= 1
    for cls in (matplotlib.image.AxesImage, sp._NearestImage):   # the same picture as imshow's
        other = style.standalone_figure((10, 4.6))
        FigureCanvasAgg(other)
        other.set_layout_engine("none")
        ax = other.add_axes(panels.heat.get_position())
        image = cls(ax, interpolation="nearest")
        image.set_data(panels.heat_image.get_array())
        image.set_extent(panels.heat_image.get_extent())
        ax.add_image(image)
        ax.set(xlim=panels.heat.get_xlim(), ylim=panels.heat.get_ylim())
        other.canvas.draw()
        if cls is sp._NearestImage:
            got = np.asarray(other.canvas.buffer_rgba()).copy()
        else:
            want = np.asarray(other.canvas.buffer_rgba()).copy()
    assert explore.difference(got, want) <= explore.TOLERANCE["fraction"]


def test_text_drawn_word_by_word_sits_where_matplotlib_puts_it(house_style):
    """The title and tick labels draw each word at a whole pixel (so that TextStamps can reuse it):
    the ink stays within a pixel or two of matplotlib's own drawing of the same text."""
    def ink(fig):
        fig.canvas.draw()
        dark = (np.asarray(fig.canvas.buffer_rgba())[..., :3] < 128).any(axis=2)
        rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
        return np.array([rows[0], rows[-1], cols[0], cols[-1]])

    text = "8 × 8 weight-stationary; M=64, N=16, K=16, 4 folds\n344 cycles simulated = 344 closed form"
    boxes = []
    for words in (False, True):
        fig = style.standalone_figure((10, 4.6))
        FigureCanvasAgg(fig)
        title = fig.suptitle(text, fontsize=10.5)
        if words:
            sp.by_word(title)
        boxes.append(ink(fig))
    assert np.abs(boxes[0] - boxes[1]).max() <= 2


def test_dynamic_text_is_drawn_at_whole_pixels(house_style):
    """Tick labels and title words are drawn at whole pixels, so the renderer's TextStamps keeps one
    picture per word (its keys end with the sub-pixel offset, in 1/64 pixel) and a word that comes
    back anywhere is stamped, not rendered glyph by glyph again."""
    ex = explore.Explorable(sp.ActivityView, activity_params(), name="tpu-activity")
    settings = [dict(R=16, dataflow="is", M=20, N=17, K=16), dict(R=8, dataflow="os", M=33, N=9, K=64),
                dict(R=12, dataflow="ws", M=64, N=16, K=40, schedule="pipelined")]
    for values in settings:
        ex.frame(**values)
    keys = list(ex._renderer.stamps.stamps)
    assert len(keys) > 20 and all(key[-2:] == (0, 0) for key in keys)
    for values in settings[::-1]:                               # nothing new to render
        ex.frame(**values)
    assert set(ex._renderer.stamps.stamps) == set(keys)


def test_activity_caption_names_the_mapping_the_folds_and_the_padding():
    run = run_of("ws", M=5, N=4, K=3, R=2, C=2)
    assert sp.activity_caption(run) == ("M = 5 streams through the array; K maps onto its rows and N "
                                         "onto its columns, in 4 folds. Padded to whole tiles of 2 × 2: "
                                         "K = 3 → 4.")
    exact = sp.activity_caption(run_of("is", M=4, N=3, K=2, R=2, C=2))
    assert exact.startswith("N = 3 streams") and "nothing is padded" in exact and "2 folds" in exact
    one = sp.activity_caption(run_of("os", M=2, N=2, K=5, R=2, C=2, double_buffer=True))
    assert "in 1 fold." in one and "double buffering changes nothing" in one
    rng = np.random.default_rng(0)
    piped = systolic.simulate(rng.random((3, 5)), rng.random((5, 2)), 2, 2, "ws", pipelined=True)
    assert "fill and drain are paid once" in sp.activity_caption(piped)


def test_pipelined_pes_hold_the_tile_of_the_last_wavefront_that_reached_them():
    # 2 x 2 array, A (2 x 4) @ B (4 x 2): fold 0 holds B[0:2], fold 1 B[2:4]; fold 1's wavefront
    # reaches PE (r, c) at 4 + r + c, so in cycle 5 the PEs on the anti-diagonal r + c = 1 and
    # the top-left PE hold fold 1's weights while PE (1, 1) still holds fold 0's
    rng = np.random.default_rng(1)
    run = systolic.simulate(rng.random((2, 4)), rng.random((4, 2)), 2, 2, "ws", pipelined=True)
    assert [f.stream_start for f in run.folds] == [2, 4]
    tile = sp.stationary_tile(run, 5)
    assert tile[:, :, 0].tolist() == [[2, 2], [3, 1]]          # k of the weight each PE holds
    assert tile[:, :, 1].tolist() == [[0, 1], [0, 1]]          # n
    assert sp.stationary_tile(run, 3)[:, :, 0].tolist() == [[0, 0], [1, 1]]
    with pytest.raises(ValueError, match="schedule"):
        sp.ActivityView.simulate(4, "ws", 2, 2, 2, "triple")


def test_busy_timeline_sums_the_activity():
    run = run_of("os")
    fig = Figure()
    ax = fig.add_subplot()
    sp.busy_timeline(ax, run, fraction=True)
    y = ax.lines[0].get_ydata()
    assert np.isclose(np.mean(y), run.utilization)


@pytest.mark.parametrize("call", [
    lambda run: sp.stationary_tile(run, run.cycles),
    lambda run: sp.stationary_tile(run, -1),
    lambda run: sp.stationary_tile("run", 0),
    lambda run: sp.snapshots(Figure(), run, []),
    lambda run: sp.snapshots(Figure(), run, [1], ncols=0),
    lambda run: sp.activity_figure(Figure(), None),
    lambda run: sp.activity_caption(None),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call(run_of("ws"))


def test_self_contained_player_refuses_a_template_it_does_not_know():
    with pytest.raises(ValueError, match="to_jshtml template changed"):
        sp.self_contained_player("<div>no stylesheet here</div>")


def test_the_view_exports_as_svg_and_png(house_style, tmp_path):
    """Word-by-word text and index-scaled images are for Agg; an SVG draws them as matplotlib does."""
    ex = explore.Explorable(sp.ActivityView, activity_params(), name="tpu-activity")
    svg, png = ex.export(tmp_path / "tpu-activity")
    assert svg.stat().st_size > 10_000 and png.stat().st_size > 10_000
    assert "<image" in svg.read_text()                      # the heat maps, embedded


@pytest.mark.parametrize("key", ["tpu-v1", "tpu-v4", "tpu-v5e", "tpu-v6e"])
def test_tensorcore_diagram_draws_the_database(key, house_style):
    from accelbook import specs
    from accelbook.units import fmt
    chip = specs.get_chip(key)
    fig = Figure(figsize=(7, 4.4))
    ax = fig.add_subplot()
    sp.tensorcore_diagram(ax, chip)
    texts = " | ".join(t.get_text() for t in ax.texts) + " | " + ax.get_title()
    mxus, rows = int(chip.value("mxus_per_tensorcore")), int(chip.value("mxu_rows"))
    assert sum(t.get_text().startswith(f"MXU {rows} × {rows}") for t in ax.texts) == mxus
    assert fmt(chip.memory_bandwidth, "B/s") in texts
    vmem = chip.value("on_chip_memory") / chip.value("tensorcores_per_chip")
    assert fmt(vmem, "B", binary=True) in texts
    assert "8 sublanes × 128 lanes" in texts
    assert ("shared by 2 TensorCores" in texts) == (chip.value("tensorcores_per_chip") == 2)
    fig.canvas.draw()
    assert min(t.get_fontsize() for t in ax.texts) >= 9     # legible at the column width


def test_tensorcore_diagram_refuses_a_gpu():
    ax = Figure().add_subplot()
    for bad in ("h100-sxm", "no-such-chip", 3):
        with pytest.raises((ValueError, KeyError)):
            sp.tensorcore_diagram(ax, bad)


def test_drawing_arguments_are_checked_before_drawing():
    run = systolic.simulate(np.ones((3, 2)), np.ones((2, 3)), 2, 2, "ws")
    fig = Figure()
    ax = fig.add_subplot()
    with pytest.raises(ValueError, match="^queue="):
        sp.draw_cycle(ax, run, 0, queue=2**64)  # looped queue times
    with pytest.raises(TypeError, match="^ax=None"):
        sp.draw_cycle(None, run, 0)
    with pytest.raises(ValueError, match="^schedule="):
        sp.draw_cycle(ax, run, 0, schedule=np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="^interval_ms=0"):
        sp.animation_html(run, interval_ms=0)
    with pytest.raises(ValueError, match="^fraction=1"):
        sp.busy_timeline(ax, run, fraction=1)
