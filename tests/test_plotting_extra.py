"""The figures of the chapter "Inside a GPU streaming multiprocessor" draw what the models say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from accelbook import gpu, plotting, specs  # noqa: E402
from accelbook.units import fmt  # noqa: E402


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_sm_diagram_labels_carry_the_database_numbers():
    fig, ax = plt.subplots()
    plotting.sm_diagram(ax, "h100-sxm")
    texts = "\n".join(_texts(ax))
    assert sum(t.startswith("sub-partition") for t in _texts(ax)) == 4
    assert texts.count("64 KiB") == 4 and texts.count("lanes\n× 32") == 4 and texts.count("core\n× 1") == 4
    assert "256 KiB per SM" in texts and "up to 228 KiB" in texts and "≤ 16 warps" in texts
    assert "50 MB" in texts and "3.35 TB/s" in texts and "132 SMs" in texts
    assert "2,048 threads" in ax.get_title()
    plt.close(fig)


def test_sm_diagram_of_a_t4_shows_two_tensor_cores_per_partition():
    fig, ax = plt.subplots()
    plotting.sm_diagram(ax, gpu.sm_anatomy("t4"))
    assert "\n".join(_texts(ax)).count("cores\n× 2") == 4
    plt.close(fig)


def test_chip_diagram_draws_one_box_per_sm():
    fig, ax = plt.subplots()
    plotting.chip_diagram(ax, "a100-40gb", highlight=3)
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
        plotting.sm_diagram(ax, "tpu-v5e")
    plt.close(fig)


def test_occupancy_staircase_draws_the_model_curves():
    fig, ax = plt.subplots()
    plotting.occupancy_staircase(ax, "9.0", (128, 1024), mark=(1024, 40))
    lines = {l.get_label(): l for l in ax.get_lines()}
    curve = gpu.occupancy_vs_registers("9.0", 1024)
    np.testing.assert_array_equal(lines["1024 threads per block"].get_ydata(), 100 * curve.occupancy)
    ring = [l for l in ax.get_lines() if l.get_marker() == "o"][0]
    assert list(ring.get_xdata()) == [40] and list(ring.get_ydata()) == [50.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["128 threads per block",
                                                                 "1024 threads per block"]
    assert "registers per thread" in ax.get_xlabel() and "%" in ax.get_ylabel()
    plt.close(fig)


def test_occupancy_explorer_states_the_result_and_the_limit():
    fig = Figure()
    plotting.occupancy_explorer(fig, "8.0", 256, 64, 24 * 1024)
    title = fig._suptitle.get_text()
    assert "4 blocks/SM" in title and "occupancy 50 %" in title and "limited by registers" in title
    plotting.occupancy_explorer(fig, "8.0", 1024, 65, 0)
    assert "cannot launch" in fig._suptitle.get_text()
    assert len(fig.axes) == 2  # redrawing clears the figure first


def test_occupancy_limits_colours_the_limiting_resource():
    fig, ax = plt.subplots()
    occ = gpu.occupancy("8.0", 256, 64, 24 * 1024)
    plotting.occupancy_limits(ax, occ)
    widths = [p.get_width() for p in ax.patches]
    assert widths == [8, 32, 4, 6]
    red = [p for p in ax.patches if matplotlib.colors.to_hex(p.get_facecolor()) == plotting.PALETTE["vermillion"].lower()]
    assert [p.get_width() for p in red] == [4]
    plt.close(fig)


def test_latency_hiding_plot_draws_bound_and_simulation():
    curve = gpu.issue_rate_curve([1, 4, 16], 2, 4, 100)
    fig, ax = plt.subplots()
    plotting.latency_hiding_plot(ax, curve, max_warps=8, label="test")
    bound = next(l for l in ax.get_lines() if l.get_label() == "test")
    x, y = bound.get_data()
    assert list(x) == list(range(1, 17))
    assert list(y) == [gpu.issue_rate_bound(n, 2, 4, 100) for n in range(1, 17)]
    sim = next(l for l in ax.get_lines() if l.get_marker() == "o")
    np.testing.assert_array_equal(sim.get_ydata(), curve.simulated)
    assert "warps" in ax.get_xlabel() and "per cycle" in ax.get_ylabel()
    plt.close(fig)


def test_ratio_table_prints_each_ratio_and_dashes_for_missing_modes():
    chips = [specs.get_chip("t4"), specs.get_chip("a100-40gb")]
    fig, ax = plt.subplots()
    plotting.ratio_table(ax, chips, ("tf32", "bf16", "int8"))
    assert _texts(ax) == ["—", "—", "16×", "8×", "16×", "32×"]
    with pytest.raises(ValueError, match="chips"):
        plotting.ratio_table(ax, [])
    plt.close(fig)


# -- chapter 03: measured rates against the overhead model ---------------------------------------
def _record(n, median, p10, p90, dtype="fp32", precision="default"):
    from types import SimpleNamespace

    flops = 2.0 * n**3
    return SimpleNamespace(n=n, flops=flops, flop_per_s=flops / median, dtype=dtype, precision=precision,
                           timing=SimpleNamespace(median=median, p10=p10, p90=p90))


def test_measured_rates_bars_span_the_p10_p90_rates():
    recs = [_record(64, 1e-4, 0.8e-4, 1.5e-4), _record(128, 5e-4, 4e-4, 1e-3)]
    fig, ax = plt.subplots()
    plotting.measured_rates(ax, recs, color="k", marker="o", label="m")
    bars = ax.containers[0]
    np.testing.assert_allclose(bars.lines[0].get_ydata(), [r.flop_per_s for r in recs])
    segs = bars.lines[2][0].get_segments()
    for seg, r in zip(segs, recs):
        # from the slowest run's rate (flops / p90) to the fastest's (flops / p10)
        np.testing.assert_allclose(sorted(seg[:, 1]), [r.flops / r.timing.p90, r.flops / r.timing.p10])
    plt.close(fig)


def test_matmul_vs_model_titles_the_measured_and_predicted_time():
    from accelbook.measure import OverheadModel

    recs = [_record(64, 1e-4, 0.9e-4, 1.1e-4), _record(1024, 2e-2, 1.9e-2, 2.2e-2)]
    fit, pred = OverheadModel(1e-5, 1e11), OverheadModel(1e-5, 0.5 * 312e12)
    fig, ax = plt.subplots()
    plotting.matmul_vs_model(ax, recs, fit, 1024, device_label="this CPU", chip_name="A100",
                             pred=pred, utilization=0.5)
    title = ax.get_title()
    assert title.startswith(f"this CPU, n = 1024: {fmt(2e-2, 's')} measured")
    assert title.endswith(f"A100, predicted by the model: {fmt(1e-5 + 2 * 1024**3 / pred.peak, 's')}")
    # the spec-sheet line is the peak before the utilization was applied
    assert any(np.allclose(l.get_ydata(), 312e12) for l in ax.lines)
    plt.close(fig)
    fig, ax = plt.subplots()
    plotting.matmul_vs_model(ax, recs, fit, 64, device_label="this CPU", chip_name="TPU v5e", pred=None)
    assert "TPU v5e: no spec-sheet peak for fp32 at precision 'default'" in ax.get_title()
    with pytest.raises(ValueError, match="n=100"):
        plotting.matmul_vs_model(ax, recs, fit, 100, device_label="x", chip_name="y")
    plt.close(fig)
