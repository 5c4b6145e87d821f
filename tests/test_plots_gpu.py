"""The figures of the chapter "Inside a GPU streaming multiprocessor" (accelbook.plots.gpu) draw what
the models say."""

import dataclasses
import random

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from accelbook import explore, models, plots, specs  # noqa: E402
from accelbook.units import fmt  # noqa: E402


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_sm_diagram_labels_carry_the_database_numbers():
    fig, ax = plt.subplots()
    plots.gpu.sm_diagram(ax, "h100-sxm")
    texts = "\n".join(_texts(ax))
    assert sum(t.startswith("sub-partition") for t in _texts(ax)) == 4
    assert texts.count("64 KiB") == 4 and texts.count("FP32\n× 32") == 4 and texts.count("tensor\n× 1") == 4
    # the units of the CUDA guide's throughput table, per sub-partition: 64 FP64, 64 INT32, 16 SFU lanes per SM
    assert texts.count("FP64\n× 16") == 4 and texts.count("INT32\n× 16") == 4 and texts.count("SFU\n× 4") == 4
    assert texts.count("load/\nstore") == 4
    assert "256 KiB per SM" in texts and "up to 228 KiB" in texts and "≤ 16 warps" in texts
    assert "50 MB" in texts and "3.35 TB/s" in texts and "132 SMs" in texts
    assert "2,048 threads" in ax.get_title()
    plt.close(fig)


def test_sm_diagram_of_a_t4_shows_two_tensor_cores_per_partition():
    fig, ax = plt.subplots()
    plots.gpu.sm_diagram(ax, models.gpu.sm_anatomy("t4"))
    texts = "\n".join(_texts(ax))
    assert texts.count("tensor\n× 2") == 4
    assert texts.count("FP64\n2/SM") == 4  # two FP64 lanes per SM on Turing: not split over the sub-partitions
    plt.close(fig)


def test_chip_diagram_draws_one_box_per_sm():
    fig, ax = plt.subplots()
    plots.gpu.chip_diagram(ax, "a100-40gb", highlight=3)
    (squares,) = ax.collections
    assert len(squares.get_paths()) == 108
    dark = np.flatnonzero(squares.get_facecolor()[:, 3] > 0.5)
    assert list(dark) == [3]
    texts = "\n".join(_texts(ax))
    chip = specs.get_chip("a100-40gb")
    assert fmt(chip.value("l2_cache"), "B") in texts and fmt(chip.memory_bandwidth, "B/s") in texts
    assert "108 SMs" in texts
    with pytest.raises(ValueError, match="highlight"):
        plots.gpu.chip_diagram(ax, "a100-40gb", highlight=108)
    plt.close(fig)


def test_sm_diagram_rejects_a_chip_without_an_anatomy():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError):
        plots.gpu.sm_diagram(ax, "tpu-v5e")
    plt.close(fig)


def test_occupancy_staircase_draws_the_model_curves():
    fig, ax = plt.subplots()
    plots.gpu.occupancy_staircase(ax, "9.0", (128, 1024), mark=(1024, 40))
    lines = {l.get_label(): l for l in ax.get_lines()}
    curve = models.gpu.occupancy_vs_registers("9.0", 1024)
    np.testing.assert_array_equal(lines["1024 threads per block"].get_ydata(), 100 * curve.occupancy)
    ring = [l for l in ax.get_lines() if l.get_marker() == "o"][0]
    assert list(ring.get_xdata()) == [40] and list(ring.get_ydata()) == [50.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["128 threads per block",
                                                                 "1024 threads per block"]
    assert "registers per thread" in ax.get_xlabel() and "%" in ax.get_ylabel()
    plt.close(fig)


def test_occupancy_explorer_states_the_result_and_the_limit():
    fig = Figure()
    plots.gpu.occupancy_explorer(fig, "8.0", 256, 64, 24 * 1024)
    title = fig._suptitle.get_text()
    assert "4 blocks/SM" in title and "occupancy 50 %" in title and "limited by registers" in title
    plots.gpu.occupancy_explorer(fig, "8.0", 1024, 65, 0)
    assert "cannot launch" in fig._suptitle.get_text()
    assert len(fig.axes) == 2  # redrawing clears the figure first


def test_occupancy_limits_colours_the_limiting_resource():
    fig, ax = plt.subplots()
    occ = models.gpu.occupancy("8.0", 256, 64, 24 * 1024)
    plots.gpu.occupancy_limits(ax, occ)
    widths = [p.get_width() for p in ax.patches]
    assert widths == [8, 32, 4, 6]
    vermillion = plots.style.PALETTE["vermillion"].lower()
    red = [p for p in ax.patches if matplotlib.colors.to_hex(p.get_facecolor()) == vermillion]
    assert [p.get_width() for p in red] == [4]
    plt.close(fig)


def test_latency_hiding_plot_draws_bound_and_simulation():
    curve = models.gpu.issue_rate_curve([1, 4, 16], 2, 4, 100)
    fig, ax = plt.subplots()
    plots.gpu.latency_hiding_plot(ax, curve, max_warps=8, label="test")
    bound = next(l for l in ax.get_lines() if l.get_label() == "test")
    x, y = bound.get_data()
    assert list(x) == list(range(1, 17))
    assert list(y) == [models.gpu.issue_rate_bound(n, 2, 4, 100) for n in range(1, 17)]
    sim = next(l for l in ax.get_lines() if l.get_marker() == "o")
    np.testing.assert_array_equal(sim.get_ydata(), curve.simulated)
    assert "warps" in ax.get_xlabel() and "per cycle" in ax.get_ylabel()
    plt.close(fig)


def test_ratio_table_prints_each_ratio_and_dashes_for_missing_modes():
    chips = [specs.get_chip("t4"), specs.get_chip("a100-40gb")]
    fig, ax = plt.subplots()
    plots.gpu.ratio_table(ax, chips, ("tf32", "bf16", "int8"))
    assert _texts(ax) == ["—", "—", "16×", "8×", "16×", "32×"]
    with pytest.raises(ValueError, match="chips"):
        plots.gpu.ratio_table(ax, [])
    plt.close(fig)


def test_occupancy_explorer_rings_the_occupancy_of_the_chosen_carveout():
    fig = Figure()
    plots.gpu.occupancy_explorer(fig, "9.0", 256, 32, 16 * 1024, 32 * 1024)
    ring = next(l for l in fig.axes[1].get_lines() if l.get_marker() == "o")
    want = models.gpu.occupancy("9.0", 256, 32, 16 * 1024, shared_mem_carveout=32 * 1024).occupancy
    assert list(ring.get_ydata()) == [100 * want] and want < 1  # the largest carveout would give 100 %


# -- the explorables: views drawn once and updated -------------------------------------------------
def styled(view, *args, **kwargs):
    """A view factory that builds the view in the house style, as the chapter does."""
    def make():
        with plots.style.style():
            return view(*args, **kwargs)
    return make


def assert_inside(fig):
    """Nothing drawn leaves the figure (the check tests this for the dynamic artists only)."""
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_size_inches()
    assert box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= w + 0.01 and box.y1 <= h + 0.01


GPUS = models.gpu.anatomy_chips()


def anatomy_explorable(value="h100-sxm", chips=GPUS):
    param = explore.choice("chip", [(c.name, c.key) for c in chips], value=value)
    return explore.Explorable(styled(plots.gpu.AnatomyView, chips), [param], name="gpu-anatomy", dpi=60)


def test_anatomy_view_updates_match_a_full_redraw():
    assert anatomy_explorable().check() >= 4


def test_anatomy_view_labels_every_chip_with_its_numbers_and_fits_the_figure():
    ex = anatomy_explorable()
    for chip in GPUS:
        ex.frame(chip=chip.key)
        view, a = ex._renderer.view, models.gpu.sm_anatomy(chip)
        texts = "\n".join(t.get_text() for ax in view.figure.axes for t in ax.texts if t.get_visible())
        assert view.sm.title.get_text().startswith(f"One SM of the {plots.style.short_name(chip.name)} (CC ")
        assert view.chip.title.get_text().startswith(chip.name)
        assert texts.count(f"≤ {a.max_warps_per_sm // a.partitions} warps") == a.partitions
        assert texts.count(f"FP32\n× {a.fp32_lanes_per_sm // a.partitions}") == a.partitions
        assert f"{a.sm_count} SMs" in texts and fmt(chip.memory_bandwidth, "B/s") in texts
        assert len(view.chip.sms.get_paths()) == a.sm_count
        assert_inside(view.figure)


def test_anatomy_view_never_redraws_the_figure():
    ex = anatomy_explorable()
    rng = random.Random(2)
    ex.frame()
    for _ in range(30):
        ex.frame(chip=rng.choice(GPUS).key)
    assert ex._renderer.full_draws == 1  # every chip is blitted over the one cached picture


def test_anatomy_view_titles_fit_the_room_the_layout_keeps():
    ex = anatomy_explorable()
    for chip in GPUS:
        ex.frame(chip=chip.key)
        view = ex._renderer.view
        renderer = view.figure.canvas.get_renderer()
        for panel, ax in ((view.sm, view.figure.axes[0]), (view.chip, view.figure.axes[1])):
            title = panel.title.get_window_extent(renderer)
            assert title.y0 >= ax.get_window_extent(renderer).y1 - 1  # above its axes
        # the SM panel's title stays below the top of the figure, the chip's clear of the SM's boxes
        assert view.chip.title.get_window_extent(renderer).y1 <= view.figure.axes[0].get_window_extent(renderer).y0 + 1


def test_anatomy_view_hides_the_sub_partitions_a_chip_lacks():
    h100 = models.gpu.sm_anatomy("h100-sxm")
    two = dataclasses.replace(h100, chip=dataclasses.replace(h100.chip, key="two-part", name="Two Part"),
                              partitions=2)
    view = plots.gpu.AnatomyView([h100, two])
    view.update(chip="two-part")
    shown = [t.get_text() for t in view.figure.axes[0].texts if t.get_visible() and t.get_text().startswith("sub-")]
    assert shown == ["sub-partition 0", "sub-partition 1"]
    assert sum(p.get_visible() for p in view.sm.patches) == 2 * 9  # frame, scheduler, registers, six units
    view.update(chip="h100-sxm")
    assert sum(p.get_visible() for p in view.sm.patches) == 4 * 9
    with pytest.raises(ValueError, match="t4"):
        view.update(chip="t4")


CARVEOUTS = [None, 64 * 1024, 32 * 1024]


def occupancy_explorable():
    params = [explore.choice("cc", models.gpu.compute_capabilities(), value="9.0", static=["7.5", "9.0"]),
              explore.slider("threads", range(32, 1025, 32), value=256, static=[32, 256, 1024]),
              explore.slider("registers", range(1, 256), value=64, static=[32, 64, 128]),
              explore.slider("shared_kib", range(0, 229), value=32, static=[0, 32]),
              explore.choice("carveout", CARVEOUTS, static=[None])]
    return explore.Explorable(styled(plots.gpu.OccupancyView), params, name="gpu-occupancy", dpi=60)


def test_occupancy_view_updates_match_a_full_redraw():
    assert occupancy_explorable().check() >= 8


@pytest.mark.parametrize("cc, threads, registers, shared_kib, carveout", [
    ("9.0", 256, 64, 32, None), ("7.5", 1024, 128, 0, None), ("8.0", 32, 1, 0, None),
    ("8.6", 1024, 255, 228, 32 * 1024), ("8.9", 512, 40, 20, 64 * 1024), ("7.0", 96, 200, 100, None)])
def test_occupancy_view_shows_the_model(cc, threads, registers, shared_kib, carveout):
    ex = occupancy_explorable()
    ex.frame(cc=cc, threads=threads, registers=registers, shared_kib=shared_kib, carveout=carveout)
    view = ex._renderer.view
    occ = models.gpu.occupancy(cc, threads, registers, 1024 * shared_kib, shared_mem_carveout=carveout)
    assert list(view.stairs.ring.get_xdata()) == [registers]
    assert list(view.stairs.ring.get_ydata()) == [100 * occ.occupancy]
    curve = models.gpu.occupancy_vs_registers(cc, threads, 1024 * shared_kib, shared_mem_carveout=carveout)
    np.testing.assert_array_equal(view.stairs.line.get_ydata(), 100 * curve.occupancy)
    top = view.limits.top
    assert top == 1.3 * 32  # the most block slots of any CC: one axis for every CC
    vermillion = plots.style.PALETTE["vermillion"].lower()
    for bar, (k, v) in zip(view.limits.bars, occ.block_limits.items()):
        assert bar.get_visible() == (v is not None)
        if v is not None:
            assert bar.get_width() == min(v, top)
            assert (matplotlib.colors.to_hex(bar.get_facecolor()) == vermillion) == (k in occ.limiting)
    title = view.title.get_text()
    assert title.startswith(f"CC {cc}: {threads} threads × {registers} registers")
    assert (f"occupancy {100 * occ.occupancy:.0f} %" in title) == (occ.blocks_per_sm > 0)
    assert ("cannot launch" in title) == (occ.blocks_per_sm == 0) and len(title.splitlines()) <= 5
    assert view.stairs.ylabel.get_text() == f"occupancy (% of {occ.max_warps_per_sm} warps per SM)"
    # the title, however long, keeps clear of the axes below it
    fig = view.figure
    renderer = fig.canvas.get_renderer()
    below = max(ax.get_tightbbox(renderer).y1 for ax in fig.axes)
    assert view.title.get_window_extent(renderer).y0 >= below - 1
    assert_inside(fig)


def test_occupancy_view_never_redraws_the_axes():
    assert occupancy_explorable().random_walk(30, seed=3) == 1


WARPS = [1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64]


def latency_explorable():
    params = [explore.slider("mem_latency", range(50, 1001, 50), value=600, static=[300, 600]),
              explore.slider("alu_per_mem", range(0, 65), value=8, static=[0, 8, 64]),
              explore.slider("alu_latency", range(1, 17), value=4, static=[4]),
              explore.choice("policy", models.gpu.POLICIES, value="gto")]
    return explore.Explorable(styled(plots.gpu.LatencyView, WARPS, max_warps=16), params, name="gpu-latency",
                              dpi=60)


def test_latency_view_updates_match_a_full_redraw():
    assert latency_explorable().check() >= 8


@pytest.mark.parametrize("mem, alu, alu_latency, policy", [(600, 8, 4, "gto"), (50, 64, 1, "round_robin"),
                                                            (1000, 0, 4, "gto"), (300, 32, 16, "round_robin")])
def test_latency_view_shows_the_model(mem, alu, alu_latency, policy):
    ex = latency_explorable()
    ex.frame(mem_latency=mem, alu_per_mem=alu, alu_latency=alu_latency, policy=policy)
    view = ex._renderer.view
    x, y = view.curve.bound.get_data()
    assert list(x) == list(range(1, 65))
    assert list(y) == [models.gpu.issue_rate_bound(n, alu, alu_latency, mem) for n in range(1, 65)]
    curve = models.gpu.issue_rate_curve(WARPS, alu, alu_latency, mem, policy=policy)
    np.testing.assert_array_equal(view.curve.simulated.get_ydata(), curve.simulated)
    knee = models.gpu.warps_to_saturate(alu, alu_latency, mem)
    assert view.curve.knee.get_visible() == view.curve.knee_text.get_visible() == (knee <= 64)
    assert list(view.curve.knee.get_xdata()) == [knee, knee]
    assert f"knee at {knee} warps" in view.title.get_text() and f"policy '{policy}'" in view.title.get_text()
    ax = view.figure.axes[0]
    assert ax.get_xlim() == (0, 66) and ax.get_ylim() == (0, 1.15)


def test_latency_view_never_redraws_the_axes():
    assert latency_explorable().random_walk(12, seed=4) == 1


def test_gpu_figures_check_their_arguments_by_name():
    import matplotlib.pyplot as plt
    import pytest

    from accelbook import plots

    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="^ax=None"):
        plots.gpu.sm_diagram(None, "h100-sxm")
    with pytest.raises(ValueError, match="^mark\\[1\\]=300"):
        plots.gpu.occupancy_staircase(ax, "8.0", mark=(128, 300))  # indexed past the curve
    with pytest.raises(ValueError, match="^highlight=9999"):
        plots.gpu.chip_diagram(ax, "h100-sxm", highlight=9999)
    with pytest.raises(ValueError, match="^dtypes="):
        plots.gpu.ratio_table(ax, ["t4"], ("bf16",))  # the T4 has no bf16
    plots.gpu.ratio_table(ax, ["t4"], ("fp16",))  # one value: its colour scale is a range around it
    plt.close(fig)
