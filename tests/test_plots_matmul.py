"""The figures of chapter 03 (accelbook.plots.matmul): measured rates against the overhead model."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import plots  # noqa: E402
from accelbook.units import fmt  # noqa: E402


def _record(n, median, p10, p90, dtype="fp32", precision="default"):
    from types import SimpleNamespace

    flops = 2.0 * n**3
    return SimpleNamespace(n=n, flops=flops, flop_per_s=flops / median, dtype=dtype, precision=precision,
                           timing=SimpleNamespace(median=median, p10=p10, p90=p90))


def test_measured_rates_bars_span_the_p10_p90_rates():
    recs = [_record(64, 1e-4, 0.8e-4, 1.5e-4), _record(128, 5e-4, 4e-4, 1e-3)]
    fig, ax = plt.subplots()
    plots.matmul.measured_rates(ax, recs, color="k", marker="o", label="m")
    bars = ax.containers[0]
    np.testing.assert_allclose(bars.lines[0].get_ydata(), [r.flop_per_s for r in recs])
    segs = bars.lines[2][0].get_segments()
    for seg, r in zip(segs, recs):
        # from the slowest run's rate (flops / p90) to the fastest's (flops / p10)
        np.testing.assert_allclose(sorted(seg[:, 1]), [r.flops / r.timing.p90, r.flops / r.timing.p10])
    plt.close(fig)


def test_matmul_vs_model_titles_the_measured_and_predicted_time():
    from accelbook.models.matmul import OverheadModel

    recs = [_record(64, 1e-4, 0.9e-4, 1.1e-4), _record(1024, 2e-2, 1.9e-2, 2.2e-2)]
    fit, pred = OverheadModel(1e-5, 1e11), OverheadModel(1e-5, 0.5 * 312e12)
    fig, ax = plt.subplots()
    plots.matmul.matmul_vs_model(ax, recs, fit, 1024, device_label="this CPU", chip_name="A100",
                                 pred=pred, utilization=0.5)
    title = ax.get_title()
    assert title.startswith(f"this CPU, n = 1024: {fmt(2e-2, 's')} measured")
    assert title.endswith(f"A100, predicted by the model: {fmt(1e-5 + 2 * 1024**3 / pred.peak, 's')}")
    # the spec-sheet line is the peak before the utilization was applied
    assert any(np.allclose(l.get_ydata(), 312e12) for l in ax.lines)
    plt.close(fig)
    fig, ax = plt.subplots()
    plots.matmul.matmul_vs_model(ax, recs, fit, 64, device_label="this CPU", chip_name="TPU v5e", pred=None)
    assert "TPU v5e: no spec-sheet peak for fp32 at precision 'default'" in ax.get_title()
    with pytest.raises(ValueError, match="n=100"):
        plots.matmul.matmul_vs_model(ax, recs, fit, 100, device_label="x", chip_name="y")
    plt.close(fig)
