"""plots.choose: the ranked bars (order, lengths, colours, notes, the measured marker, the target),
the step breakdown (its terms add up to the step, the larger of compute and memory named), the
chapter's explorable (frames equal fresh drawings, the fixed x range holds every value of every
setting, bad values named) and the argument checks. Chapter 11."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from accelbook import explore, specs
from accelbook.models import choose
from accelbook.plots import choose as pch
from accelbook.plots.style import chip_label

MODELS = ("llama-3-8b", "llama-3-70b")


def _ax():
    return Figure(figsize=(7.0, 4.5)).add_subplot()


def _serve(model="llama-3.1-405b", batch=256, target=None):
    return choose.Workload("serve", model, batch=batch, context=4096, tpot_target=target)


def _rows(ax):
    """Per row (top first): its y and its tick label."""
    return [(t.get_position()[1], t.get_text()) for t in ax.get_yticklabels()]


def _bar_at(ax, y):
    found = [p for p in ax.patches if p.get_visible() and abs(p.get_y() + p.get_height() / 2 - y) < 1e-9]
    assert len(found) <= 1
    return found[0] if found else None


def _texts_at(ax, y):
    return [t for t in ax.texts if t.get_visible() and abs(t.get_position()[1] - y) < 1e-9]


def _marker(ax):
    found = [line for line in ax.lines if line.get_label() == pch.MEASURED_LABEL]
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# ranked_bars
# ---------------------------------------------------------------------------------------------

def test_bars_follow_the_verdicts_order_length_and_binding():
    vs = choose.rank(_serve())  # 405B at batch 256: some chips fit, the rest do not
    assert any(v.fits for v in vs) and not all(v.fits for v in vs)
    ax = _ax()
    pch.ranked_bars(ax, vs)
    rows = _rows(ax)
    assert [name for _y, name in rows] == [chip_label(v) for v in vs]
    ys = [y for y, _ in rows]
    assert ys == sorted(ys, reverse=True)  # the first verdict on top
    for (y, _name), v in zip(rows, vs):
        bar = _bar_at(ax, y)
        if v.fits:
            assert bar.get_x() + bar.get_width() == pytest.approx(v.tokens_per_s_per_chip)
            assert bar.get_x() == pytest.approx(ax.get_xlim()[0])  # from the axis' left edge
            assert to_rgba(bar.get_facecolor()) == to_rgba(pch.BINDING_COLORS[v.binding])
            assert any(t.get_text().startswith(f"×{v.devices} chip") for t in _texts_at(ax, y))
        else:
            assert bar is None
            assert [t.get_text() for t in _texts_at(ax, y)] == [f"does not fit on up to {choose.SERVE_MAX_DEVICES} chips"]
    assert ax.get_xscale() == "log"
    assert "PEAK" in ax.get_xlabel()
    lo, hi = ax.get_xlim()
    assert lo < min(v.tokens_per_s_per_chip for v in vs if v.fits) and hi > max(v.tokens_per_s_per_chip for v in vs if v.fits)


def test_total_throughput_bars_are_per_chip_times_devices():
    vs = choose.rank(_serve("llama-3-70b", 16))
    ax = _ax()
    pch.ranked_bars(ax, vs, metric="tokens_per_s")
    for (y, _), v in zip(_rows(ax), vs):
        bar = _bar_at(ax, y)
        # tokens/s of the plan = batch / step time, whatever the chip count
        assert bar.get_x() + bar.get_width() == pytest.approx(16 / v.step_time)
        assert bar.get_x() + bar.get_width() == pytest.approx(v.tokens_per_s_per_chip * v.devices)


def test_the_measured_marker_sits_at_the_measured_rate_and_only_where_there_is_one():
    vs = choose.rank(_serve("llama-3-70b", 16))
    with_row = [v for v in vs if choose.achieved(v.chip) is not None]
    without = [v for v in vs if choose.achieved(v.chip) is None]
    assert with_row and without
    ax = _ax()
    pch.ranked_bars(ax, vs)
    rows = dict((name, y) for y, name in _rows(ax))
    marker = _marker(ax)
    got = dict(zip(marker.get_ydata(), marker.get_xdata()))
    assert set(got) == {rows[chip_label(v)] for v in with_row}
    for v in with_row:
        assert got[rows[chip_label(v)]] == pytest.approx(v.tokens_per_s_per_chip_at_achieved)
        assert got[rows[chip_label(v)]] <= v.tokens_per_s_per_chip * (1 + 1e-12)  # never past the peak bar
        assert _bar_at(ax, rows[chip_label(v)]) is not None  # beside the bar, not instead of it
    assert pch.MEASURED_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]


def test_per_joule_uses_the_tdp_and_notes_chips_without_one():
    vs = choose.rank(_serve("llama-3-70b", 16))
    ax = _ax()
    pch.ranked_bars(ax, vs, metric="tokens_per_joule")
    marker = _marker(ax)
    got = dict(zip(marker.get_ydata(), marker.get_xdata()))
    for (y, _), v in zip(_rows(ax), vs):
        tdp = specs.get_chip(v.chip).value("tdp")
        bar = _bar_at(ax, y)
        if tdp is None:
            assert bar is None
            assert [t.get_text() for t in _texts_at(ax, y)] == ["no sourced TDP: no tokens per joule"]
            continue
        assert bar.get_x() + bar.get_width() == pytest.approx(v.tokens_per_s_per_chip / tdp)
        if v.tokens_per_s_per_chip_at_achieved is not None:
            assert got[y] == pytest.approx(v.tokens_per_s_per_chip_at_achieved / tdp)


def test_no_marker_without_any_measured_row():
    chips = ["tpu-v5e", "tpu-v4", "tpu-v5p"]
    vs = choose.rank(_serve("llama-3-8b", 4), chips)
    assert vs and all(v.tokens_per_s_per_chip_at_achieved is None for v in vs)
    ax = _ax()
    pch.ranked_bars(ax, vs)
    assert _marker(ax) is None
    assert pch.MEASURED_LABEL not in [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_target_is_judged_against_each_step_time():
    vs = [v for v in choose.rank(_serve("llama-3-70b", 16)) if v.fits]
    target = float(np.median([v.step_time for v in vs]))  # splits the chips in two
    ax = _ax()
    pch.ranked_bars(ax, vs, target=target)
    verdict = {}
    for (y, _), v in zip(_rows(ax), vs):
        (text,) = [t.get_text() for t in _texts_at(ax, y)]
        verdict[v.chip] = "meets" in text
        assert ("misses" in text) != verdict[v.chip]
        assert verdict[v.chip] == (v.step_time <= target)
    assert len(set(verdict.values())) == 2


def test_without_a_target_the_verdicts_own_is_said():
    vs = [v for v in choose.rank(_serve("llama-3-70b", 16, target=1e-9)) if v.fits]  # nothing meets 1 ns
    ax = _ax()
    pch.ranked_bars(ax, vs)
    assert all("misses the target" in t.get_text() for t in ax.texts)
    ax = _ax()
    pch.ranked_bars(ax, choose.rank(_serve("llama-3-70b", 16)))  # no target: no word on it
    assert not any("target" in t.get_text() or "meets" in t.get_text() for t in ax.texts)


def test_legend_names_the_bindings_present():
    vs = choose.rank(_serve())
    ax = _ax()
    pch.ranked_bars(ax, vs, label="Serve 405B")
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    present = {v.binding for v in vs}
    expect = [("capacity: does not fit" if b == "capacity" else b) for b in choose.BINDINGS if b in present]
    assert labels[:len(expect)] == expect
    assert legend.get_title().get_text() == "Serve 405B"


def test_ranked_bars_rejects_bad_arguments_by_name():
    vs = choose.rank(_serve("llama-3-8b", 4), ["h100-sxm", "l4"])
    with pytest.raises(ValueError, match="metric"):
        pch.ranked_bars(_ax(), vs, metric="tokens_per_dollar")
    with pytest.raises(ValueError, match="verdicts"):
        pch.ranked_bars(_ax(), [])
    with pytest.raises(TypeError, match=r"verdicts\[0\]"):
        pch.ranked_bars(_ax(), [("h100", 3.0)])
    with pytest.raises(TypeError, match="ax"):
        pch.ranked_bars(None, vs)
    with pytest.raises(ValueError, match="target"):
        pch.ranked_bars(_ax(), vs, target=-1.0)
    train = choose.rank(choose.Workload("train", "llama-3-8b", tokens_per_step=4096), ["h100-sxm"])
    with pytest.raises(ValueError, match="target"):
        pch.ranked_bars(_ax(), train, target=0.05)
    with pytest.raises(ValueError, match="verdicts"):
        pch.ranked_bars(_ax(), vs + train)  # served and trained tokens on one axis


def test_binding_colors_cover_every_binding_with_distinct_colours():
    assert set(pch.BINDING_COLORS) == set(choose.BINDINGS)
    assert len({to_rgba(c) for c in pch.BINDING_COLORS.values()}) == len(choose.BINDINGS)
    grey = to_rgba(pch.BINDING_COLORS["capacity"])
    assert grey[0] == grey[1] == grey[2]


# ---------------------------------------------------------------------------------------------
# step_breakdown
# ---------------------------------------------------------------------------------------------

def _segments(ax, y):
    return sorted((p for p in ax.patches if abs(p.get_y() + p.get_height() / 2 - y) < 1e-9), key=lambda p: p.get_x())


def test_step_breakdown_adds_up_to_the_decode_step_with_t0():
    w = _serve("llama-3-70b", 16)
    t0 = 2e-3
    vs = [choose.evaluate(w, chip, t0=t0) for chip in ("h100-sxm", "mi300x", "a100-80gb")]
    ax = _ax()
    pch.step_breakdown(ax, vs, label="serve 70B")
    for (y, name), v in zip(_rows(ax), vs):
        assert name == chip_label(v)
        segs = _segments(ax, y)
        # contiguous: each segment starts where the one before ends
        for a, b in zip(segs, segs[1:]):
            assert b.get_x() == pytest.approx(a.get_x() + a.get_width())
        assert segs[0].get_x() == 0.0
        # serving: t = t0 + max(compute, memory) + all-reduces (not overlapped)
        assert segs[0].get_width() == pytest.approx(t0)
        assert to_rgba(segs[0].get_facecolor()) == to_rgba(pch.BINDING_COLORS["overhead"])
        busy = max(v.compute_time, v.memory_time)
        assert segs[1].get_width() == pytest.approx(busy)
        kind = "memory bandwidth" if v.memory_time > v.compute_time else "compute"
        assert to_rgba(segs[1].get_facecolor()) == to_rgba(pch.BINDING_COLORS[kind])
        total = t0 + busy + v.comm_time
        assert segs[-1].get_x() + segs[-1].get_width() == pytest.approx(total)
        assert total == pytest.approx(v.step_time)


def test_step_breakdown_shows_only_the_exposed_communication_of_training():
    w = choose.Workload("train", "llama-3-70b", tokens_per_step=4096)
    vs = choose.rank(w)[:8]
    ax = _ax()
    pch.step_breakdown(ax, vs)
    seen_hidden = False
    for (y, _), v in zip(_rows(ax), vs):
        segs = _segments(ax, y)
        exposed = max(0.0, v.comm_time - v.compute_time)  # FSDP prefetch hides the rest
        seen_hidden |= exposed < v.comm_time
        assert sum(s.get_width() for s in segs) == pytest.approx(v.compute_time + exposed)
        assert to_rgba(segs[0].get_facecolor()) == to_rgba(pch.BINDING_COLORS["compute"])
        if exposed > 0:
            assert to_rgba(segs[-1].get_facecolor()) == to_rgba(pch.BINDING_COLORS["interconnect"])
    assert seen_hidden


def test_step_breakdown_notes_unfit_chips_and_refuses_long_lists():
    vs = choose.rank(_serve())
    unfit = [v for v in vs if not v.fits][:2]
    ax = _ax()
    pch.step_breakdown(ax, [vs[0]] + unfit)
    rows = _rows(ax)
    for (y, _), v in zip(rows[1:], unfit):
        assert _segments(ax, y) == []
        assert [t.get_text() for t in _texts_at(ax, y)] == [f"does not fit on up to {choose.SERVE_MAX_DEVICES} chips"]
    with pytest.raises(ValueError, match="verdicts"):
        pch.step_breakdown(_ax(), vs[:9])
    with pytest.raises(ValueError, match="verdicts"):
        pch.step_breakdown(_ax(), [])
    with pytest.raises(TypeError, match=r"verdicts\[1\]"):
        pch.step_breakdown(_ax(), [vs[0], "h100"])


# ---------------------------------------------------------------------------------------------
# The explorable
# ---------------------------------------------------------------------------------------------

def _view():
    return pch.ChooseView(MODELS)


def _explorable():
    return explore.Explorable(_view, [
        explore.choice("model", list(MODELS), value="llama-3-70b"),
        explore.choice("mode", ["serve", "finetune", "train"], static=["serve", "train"]),
        explore.slider("batch", list(pch.VIEW_BATCHES), value=16, static=[1, 16, 256]),
        explore.choice("metric", ["per chip", "per joule"])], name="choose-test")


def test_view_matches_a_fresh_drawing():
    assert _explorable().check() >= 6


def test_view_redraws_its_axis_only_when_the_metric_changes():
    # bars, names, texts, title and legend are drawn over a cached picture of the axis, one per metric
    assert _explorable().random_walk(12, seed=2) <= 2


def test_view_draws_rank_in_order_with_names_and_title():
    view = _view()
    caption = view.update(model="llama-3-70b", mode="train", batch=16, metric="per chip")
    w = choose.Workload("train", "llama-3-70b", tokens_per_step=16 * 4096)
    vs = choose.rank(w)
    assert [t.get_text() for t in view._rows.names] == [chip_label(v) for v in vs]
    for bar, v in zip(view._rows.bars, vs):
        assert bar.get_x() + bar.get_width() == pytest.approx(v.tokens_per_s_per_chip)
        assert to_rgba(bar.get_facecolor()) == to_rgba(pch.BINDING_COLORS[v.binding])
    assert "Llama-3-70B" in view._rows.title.get_text() and "16 × 4,096" in view._rows.title.get_text()
    best = max(vs, key=lambda v: v.tokens_per_s_per_chip)
    assert best.name in caption and f"{len(vs)} of {len(vs)} chips fit" in caption


def test_view_workloads_are_the_ones_described():
    s = pch.view_workload("llama-3-8b", "serve", 32)
    assert (s.mode, s.batch, s.context, s.tokens_per_step) == ("serve", 32, 4096, None)
    t = pch.view_workload("llama-3-8b", "train", 32)
    assert (t.tokens_per_step, t.trainable_fraction) == (32 * 4096, 1.0)
    f = pch.view_workload("llama-3-8b", "finetune", 32)
    assert (f.tokens_per_step, f.trainable_fraction) == (32 * 4096, 0.01)
    with pytest.raises(ValueError, match="batch"):
        pch.view_workload("llama-3-8b", "serve", 3)
    with pytest.raises(ValueError, match="mode"):
        pch.view_workload("llama-3-8b", "infer", 2)


def test_view_x_range_holds_every_value_of_every_setting():
    view = _view()
    limits = {}
    for metric in pch.VIEW_METRICS:
        view.update(model=MODELS[0], mode="serve", batch=1, metric=metric)
        limits[metric] = view.ax.get_xlim()
    assert limits["per chip"] != limits["per joule"]
    field = {"per chip": "tokens_per_s_per_chip", "per joule": "tokens_per_joule"}
    count = 0
    for model in MODELS:
        for mode in choose.MODES:
            for batch in pch.VIEW_BATCHES:
                kw = dict(batch=batch, context=4096) if mode == "serve" else \
                    dict(tokens_per_step=batch * 4096, trainable_fraction=0.01 if mode == "finetune" else 1.0)
                for v in choose.rank(choose.Workload(mode, model, **kw)):
                    if not v.fits:
                        continue
                    for metric, (lo, hi) in limits.items():
                        x = getattr(v, field[metric])
                        if x is None:
                            continue
                        at = v.tokens_per_s_per_chip_at_achieved
                        scale = 1.0 if metric == "per chip" else x / v.tokens_per_s_per_chip
                        for value in (x, None if at is None else at * scale):
                            if value is not None:
                                assert lo < value < hi, (model, mode, batch, v.chip, metric, value, lo, hi)
                                count += 1
    assert count > 500


def test_view_end_texts_stay_in_the_figure_at_the_extremes():
    view = _view()
    for setting in (dict(model="llama-3-8b", mode="finetune", batch=256), dict(model="llama-3-70b", mode="train", batch=1)):
        view.update(metric="per chip", **setting)
        fig = view.figure
        fig.canvas.draw()
        for t in view._rows.ends:
            if t.get_visible():
                assert t.get_window_extent().x1 <= fig.bbox.x1


def test_view_rejects_values_outside_its_controls():
    view = _view()
    with pytest.raises(ValueError, match="model"):
        view.update(model="llama-3.1-405b", mode="serve", batch=1, metric="per chip")
    with pytest.raises(ValueError, match="batch"):
        view.update(model="llama-3-8b", mode="serve", batch=3, metric="per chip")
    with pytest.raises(ValueError, match="metric"):
        view.update(model="llama-3-8b", mode="serve", batch=1, metric="per watt")
    with pytest.raises(ValueError, match="mode"):
        view.update(model="llama-3-8b", mode="prefill", batch=1, metric="per chip")


def test_view_constructor_names_bad_arguments():
    with pytest.raises(ValueError, match="models"):
        pch.ChooseView([])
    with pytest.raises(KeyError, match=r"models\[0\]"):
        pch.ChooseView(["gpt-5"])
    with pytest.raises(ValueError, match="models"):
        pch.ChooseView(["llama-3-8b", "llama-3-8b"])
    with pytest.raises(KeyError, match=r"chips\[0\]"):
        pch.ChooseView(["llama-3-8b"], chips=["no-such-chip"])
    with pytest.raises(ValueError, match="chips"):
        pch.ChooseView(["llama-3-8b"], chips=["t4"])  # no dense bf16 peak


def test_view_on_a_chip_subset_has_one_row_per_eligible_chip():
    view = pch.ChooseView(["llama-3-8b"], chips=["h100-sxm", "l4", "t4"])
    assert view.rows == 2  # the T4 has no dense bf16 peak
    view.update(model="llama-3-8b", mode="serve", batch=4, metric="per chip")
    assert sorted(t.get_text() for t in view._rows.names) == sorted(chip_label(specs.get_chip(k)) for k in ("h100-sxm", "l4"))


def test_the_end_text_names_the_plans_chip_count():
    one = choose.evaluate(_serve("llama-3-8b", 1), "h100-sxm")
    many = choose.evaluate(_serve("llama-3-70b", 1), "h100-sxm")
    assert one.devices == 1 and many.devices > 1
    ax = _ax()
    pch.ranked_bars(ax, [one, many])
    assert sorted(t.get_text() for t in ax.texts) == sorted(["×1 chip", f"×{many.devices} chips"])
