"""The figures of the chapter "Inside a GPU streaming multiprocessor" (accelbook.plots.gpu) draw what
the models say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from accelbook import models, plots, specs  # noqa: E402
from accelbook.units import fmt  # noqa: E402


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_sm_diagram_labels_carry_the_database_numbers():
    fig, ax = plt.subplots()
    plots.gpu.sm_diagram(ax, "h100-sxm")
    texts = "\n".join(_texts(ax))
    assert sum(t.startswith("sub-partition") for t in _texts(ax)) == 4
    assert texts.count("64 KiB") == 4 and texts.count("lanes\n× 32") == 4 and texts.count("core\n× 1") == 4
    assert "256 KiB per SM" in texts and "up to 228 KiB" in texts and "≤ 16 warps" in texts
    assert "50 MB" in texts and "3.35 TB/s" in texts and "132 SMs" in texts
    assert "2,048 threads" in ax.get_title()
    plt.close(fig)


def test_sm_diagram_of_a_t4_shows_two_tensor_cores_per_partition():
    fig, ax = plt.subplots()
    plots.gpu.sm_diagram(ax, models.gpu.sm_anatomy("t4"))
    assert "\n".join(_texts(ax)).count("cores\n× 2") == 4
    plt.close(fig)


def test_chip_diagram_draws_one_box_per_sm():
    fig, ax = plt.subplots()
    plots.gpu.chip_diagram(ax, "a100-40gb", highlight=3)
    squares = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    assert len(squares) == 108
    dark = [p for p in squares if p.get_facecolor()[3] > 0.5]
    assert len(dark) == 1
    texts = "\n".join(_texts(ax))
    chip = specs.get_chip("a100-40gb")
    assert fmt(chip.value("l2_cache"), "B") in texts and fmt(chip.memory_bandwidth, "B/s") in texts
    assert "108 SMs" in texts
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
