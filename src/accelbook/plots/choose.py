"""Figures of choosing a chip: one workload, every chip of the spec database ranked, each bar
coloured by the limit that binds it; the terms of each chip's step behind the ranking; and the
chapter's explorable (workload → chips ranked, with the binding limit for each).

Every number comes from :mod:`accelbook.models.choose`, made at the chips' dense PEAK FLOP/s. The
measured matmul rate of ``data/achieved.toml`` is drawn beside a bar as a hollow marker, never in
its place.

Taught in: "How to choose (without vibes)" (chapter 11).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator
from matplotlib.transforms import blended_transform_factory, offset_copy

from accelbook import checks, explore, specs
from accelbook.models import choose as M
from accelbook.models import decoder
from accelbook.plots.style import PALETTE, _axes, chip_label, si_formatter
from accelbook.units import fmt

BINDING_COLORS = {
    "compute": PALETTE["blue"],
    "memory bandwidth": PALETTE["orange"],
    "interconnect": PALETTE["vermillion"],
    "overhead": PALETTE["purple"],
    "capacity": "#8c8c8c",
}
"""One colour per binding limit (:data:`accelbook.models.choose.BINDINGS`): Okabe–Ito colours,
colour-blind safe, on the figures' opaque white background in light and dark themes; "capacity"
(a chip that does not fit) is a mid grey. Taught in: chapter 11."""

METRICS = ("tokens_per_s_per_chip", "tokens_per_s", "tokens_per_joule")
"""What :func:`ranked_bars` can draw: tokens/s per chip, tokens/s of all the chips of the plan,
or tokens per joule (each chip at its full TDP). Taught in: chapter 11."""

MEASURED_LABEL = "at the measured matmul rate"
"""The legend entry of the hollow marker: the same model with the dense peak replaced by the
published achievable matmul rate. Taught in: chapter 11."""

_UNIT = {"tokens_per_s_per_chip": "tokens/s", "tokens_per_s": "tokens/s", "tokens_per_joule": "tokens/J"}
_XLABEL = {"tokens_per_s_per_chip": "tokens/s per chip, at the dense PEAK",
           "tokens_per_s": "tokens/s of all the plan's chips, at the dense PEAK",
           "tokens_per_joule": "tokens per joule, at the dense PEAK and full TDP"}
_GREY = "#6b6b6b"
_NAME_FONT = 9.0
_END_FONT = 8.5
_BAR_HEIGHT = 0.7
_END_POINTS = 8.0  # the end text starts this far right of the bar's end (points): clear of the marker
MAX_BREAKDOWN = 8


# ---------------------------------------------------------------------------------------------
# Arguments and values
# ---------------------------------------------------------------------------------------------

def _verdicts(name: str, verdicts: Any, *, maximum: int | None = None) -> list:
    items = checks.sequence(name, verdicts, of=lambda n, v: checks.instance(n, v, M.Verdict))
    if maximum is not None and len(items) > maximum:
        raise ValueError(f"{name} holds {len(items)} verdicts; at most {maximum} are legible in one chart "
                         f"(pass the first {maximum}, say)")
    modes = sorted({v.mode for v in items})
    if len(modes) > 1:
        raise ValueError(f"{name} mixes modes {modes}: tokens served and tokens trained are not comparable; "
                         "draw the verdicts of one workload")
    return items


def _value(v, metric: str) -> float | None:
    """The verdict's value of ``metric`` at the dense peak (None: does not fit, or no TDP)."""
    if not v.fits:
        return None
    return getattr(v, metric)


def _measured(v, metric: str) -> float | None:
    """The verdict's value of ``metric`` at the measured matmul rate (None: no row in achieved.toml)."""
    at = v.tokens_per_s_per_chip_at_achieved
    if not v.fits or at is None:
        return None
    if metric == "tokens_per_s_per_chip":
        return at
    if metric == "tokens_per_s":
        return at * v.devices
    if v.tokens_per_joule is None:  # per joule: the same TDP divides both rates
        return None
    return v.tokens_per_joule * at / v.tokens_per_s_per_chip


def _chips_word(n: int) -> str:
    return f"×{n} chip" + ("" if n == 1 else "s")


def _unfit_note(v) -> str:
    cap = M.SERVE_MAX_DEVICES if v.mode == "serve" else M.TRAIN_MAX_DEVICES
    for note in v.notes:  # a training plan with a fixed device count says which count it tried
        m = re.search(r" on (\d+) devices exceeds", note)
        if m:
            return f"does not fit on {m.group(1)} chips"
    return f"does not fit on up to {cap} chips"


def _end_text(v, target: float | None) -> str:
    """What follows a bar: the chip count and, serving with a target, whether the step meets it."""
    text = _chips_word(v.devices)
    if v.mode == "serve":
        meets = v.meets_target if target is None else v.step_time <= target
        if meets is not None:
            goal = f"{fmt(target, 's')}/token" if target is not None else "the target"
            text += f", {'meets' if meets else 'misses'} {goal}"
    return text


def _row_name(v) -> str:
    return chip_label(v)


def _xlim(lo: float, hi: float, room: float, width: float) -> tuple[float, float]:
    """Limits of a log axis ``width`` inches wide that holds values from ``lo`` to ``hi`` and
    leaves ``room`` inches right of ``hi`` for the end texts (at most 60 % of the width)."""
    span = math.log10(hi / lo)
    pad = 0.04 * span + 0.1  # decades left of the smallest value
    share = min(room / width, 0.6)
    total = (span + pad) / (1.0 - share)
    return lo / 10 ** pad, hi * 10 ** (total - span - pad)


def _text_inches(texts, fontsize: float) -> float:
    """A generous estimate of the width of the longest of ``texts`` (inches): 0.6 em a character."""
    return max((len(t) for t in texts), default=0) * 0.6 * fontsize / 72


# ---------------------------------------------------------------------------------------------
# The ranked bars: artists made once, set for each list of verdicts
# ---------------------------------------------------------------------------------------------

class _WholePixels:
    """An Agg renderer whose ``draw_text`` puts each line at a whole pixel (all else forwarded): the
    same line in another row or after another bar is then the same picture, which an explorable's
    text stamps (:class:`accelbook.explore.TextStamps`) keep once instead of rendering it again."""

    def __init__(self, renderer):
        self._inner = renderer

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        return self._inner.draw_text(gc, round(x), round(y), s, prop, angle, ismath, mtext)


def _at_whole_pixels(text):
    """Make ``text`` draw at whole pixels on an Agg canvas (it moves by less than half a pixel);
    other renderers (SVG, PDF) draw it as usual. Returns ``text``."""
    from matplotlib.backends.backend_agg import RendererAgg

    plain, kept = text.draw, {}

    def draw(renderer, *args, **kwargs):
        if not (isinstance(renderer, RendererAgg) or isinstance(getattr(renderer, "_renderer", None), RendererAgg)):
            return plain(renderer, *args, **kwargs)
        if kept.get("inner") is not renderer:  # one proxy per renderer: matplotlib caches text metrics by it
            kept.update(inner=renderer, proxy=_WholePixels(renderer))
        return plain(kept["proxy"], *args, **kwargs)

    text.draw = draw
    return text


def _legend_entries(present: list, marker: bool) -> tuple[list, list]:
    handles = [Patch(facecolor=BINDING_COLORS[b]) for b in present]
    labels = ["capacity: does not fit" if b == "capacity" else b for b in present]
    if marker:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6.5, markerfacecolor="white",
                              markeredgecolor="black", markeredgewidth=1.4))
        labels.append(MEASURED_LABEL)
    return handles, labels


class _Rows:
    """The artists of a ranked bar chart of ``n`` rows on ``ax`` (top row first), set by :meth:`set`.

    ``view=False`` (a one-off chart): the chip names are the y tick labels and the title heads the
    legend. ``view=True`` (an explorable, drawn over a cached background): the names are texts
    where tick labels would be, the title is a figure text at ``title_y`` (figure fraction), texts
    sit at whole pixels, and each distinct legend is built once and kept as a picture."""

    def __init__(self, ax, n: int, *, view: bool, title_y: float = 0.98):
        self.ax, self.n, self.view = ax, n, view
        self.y = np.arange(n, dtype=float)[::-1]
        self.bars = list(ax.barh(self.y, np.ones(n), height=_BAR_HEIGHT, color=BINDING_COLORS["capacity"],
                                 zorder=2))
        rows = blended_transform_factory(ax.transAxes, ax.transData)
        after = offset_copy(ax.transData, fig=ax.figure, x=_END_POINTS, y=0, units="points")
        self.ends = [ax.text(1.0, y, " ", transform=after, va="center", ha="left", fontsize=_END_FONT,
                             color="#111111", zorder=3) for y in self.y]
        self.notes = [ax.text(0.012, y, " ", transform=rows, va="center", ha="left", fontsize=_END_FONT,
                              color=_GREY, style="italic", zorder=3) for y in self.y]
        (self.marker,) = ax.plot([], [], linestyle="none", marker="o", markersize=6.5, markerfacecolor="white",
                                 markeredgecolor="black", markeredgewidth=1.4, label=MEASURED_LABEL, zorder=4)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=7))
        ax.minorticks_off()
        ax.grid(axis="y", visible=False)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
        self.legend, self.names, self.title = None, [], None
        if view:
            ax.set_yticks(self.y, [""] * n)
            names = offset_copy(rows, fig=ax.figure, x=-5, y=0, units="points")
            self.names = [ax.text(0.0, y, " ", transform=names, ha="right", va="center", fontsize=_NAME_FONT,
                                  color="#111111", clip_on=False) for y in self.y]
            left = ax.get_position().x0
            self.title = ax.figure.text(left, title_y, " ", ha="left", va="top", fontsize=10, color="#111111")
            for text in (*self.ends, *self.notes, *self.names, self.title):
                _at_whole_pixels(text)
            self.stamps = explore.TextStamps()
            self.kept: dict = {}  # (bindings, marker) -> Legend, kept with its picture
            box, height = ax.get_position(), ax.figure.get_figheight()
            below_title = title_y - 0.27 / height  # the legend hangs under the title line (figure fraction)
            self.legend_at = (0.0, (below_title - box.y0) / box.height)

    def artists(self) -> list:
        return [*self.bars, self.marker, *self.ends, *self.notes, *self.names] + \
            [a for a in (self.legend, self.title) if a is not None]

    def set(self, verdicts: list, metric: str, target: float | None, title: str | None, left: float) -> dict:
        """Set every row for ``verdicts`` (as many as rows), bars from ``left`` (the axis' lower
        limit: a log axis has no zero); returns what was drawn: ``values``, ``measured`` (None
        where absent) and the ``bindings`` of the bars, in order."""
        if len(verdicts) != self.n:
            raise ValueError(f"verdicts holds {len(verdicts)} verdicts for {self.n} rows")
        values, measured, bindings, mx, my = [], [], [], [], []
        for y, v, bar, end, note in zip(self.y, verdicts, self.bars, self.ends, self.notes):
            x, at = _value(v, metric), _measured(v, metric)
            values.append(x)
            measured.append(at)
            drawn = x is not None
            bar.set_visible(drawn)
            end.set_visible(drawn)
            note.set_visible(not drawn)
            if drawn:
                bar.set_x(left)
                bar.set_width(x - left)
                bar.set_facecolor(BINDING_COLORS[v.binding])
                bindings.append(v.binding)
                end.set_x(x)
                end.set_text(_end_text(v, target))
                if at is not None:
                    mx.append(at)
                    my.append(y)
            else:
                note.set_text(_unfit_note(v) if not v.fits else "no sourced TDP: no tokens per joule")
                if not v.fits:
                    bindings.append("capacity")
        self.marker.set_data(mx, my)
        self.marker.set_visible(bool(mx))
        present = tuple(b for b in M.BINDINGS if b in bindings)
        if self.view:
            for name, v in zip(self.names, verdicts):
                name.set_text(_row_name(v))
            self.title.set_text(title or " ")
            self._kept_legend(present, bool(mx))
        else:
            self.ax.set_yticks(self.y, [_row_name(v) for v in verdicts], fontsize=_NAME_FONT)
            handles, labels = _legend_entries(list(present), bool(mx))
            self.legend = self.ax.legend(handles, labels, title=title or None, alignment="left",
                                         **self._legend_style(labels))
        return {"values": values, "measured": measured, "bindings": bindings}

    @staticmethod
    def _legend_style(labels: list) -> dict:
        return dict(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=min(len(labels), 2) or 1,
                    fontsize=_END_FONT, title_fontsize=10, handlelength=1.2, columnspacing=1.2,
                    borderaxespad=0.0, borderpad=0.2)

    def _kept_legend(self, present: tuple, marker: bool) -> None:
        key = (present, marker)
        if key not in self.kept:
            handles, labels = _legend_entries(list(present), marker)
            self.ax.legend_ = None
            style = {**self._legend_style(labels), "loc": "upper left", "bbox_to_anchor": self.legend_at}
            self.kept[key] = self.stamps.attach(self.ax.legend(handles, labels, **style), frozen=True)
        self.ax.legend_ = self.legend = self.kept[key]


def ranked_bars(ax, verdicts: Sequence, *, metric: str = "tokens_per_s_per_chip", target: float | None = None,
                label: str | None = None) -> None:
    """One horizontal bar per :class:`~accelbook.models.choose.Verdict`, in the order given, top to
    bottom (:func:`~accelbook.models.choose.rank`'s order: best first).

    The bar's length is ``metric`` (:data:`METRICS`: "tokens_per_s_per_chip", "tokens_per_s" or
    "tokens_per_joule"; tokens/s or tokens/J, log x axis, all at the chips' dense PEAK FLOP/s);
    its colour is the binding limit (:data:`BINDING_COLORS`). After the bar: the plan's chip count
    ("×4 chips") and, for serving, whether the step meets ``target`` (seconds per output token;
    None: the verdict's own ``meets_target``, said only when its workload had a target). A chip
    that does not fit gets no bar and a grey note "does not fit on up to N chips"; per joule, a
    chip without a sourced TDP gets "no sourced TDP". Where achieved.toml has a measured matmul
    rate, a hollow circle marks the same metric at that rate (:data:`MEASURED_LABEL`), beside the
    peak bar. Legend above the axes: the bindings present and the marker, under ``label`` (a
    title line naming the workload, or None). Chip names are the y tick labels. About 7 × 4.5
    inches suits 14 chips.

    ``ValueError`` for an unknown metric, empty verdicts, verdicts of several modes, a ``target``
    that is not a positive number of seconds or that is given for training; ``TypeError`` for an
    ``ax`` that is not an Axes or a verdict that is not a Verdict. Taught in: chapter 11.
    """
    _axes("ax", ax)
    metric = checks.one_of("metric", metric, METRICS)
    items = _verdicts("verdicts", verdicts)
    if target is not None:
        target = checks.real("target", target, positive=True)
        if items[0].mode != "serve":
            raise ValueError(f"target={target!r} is a time per output token, for serving; the verdicts are "
                             f"mode={items[0].mode!r} (allowed: None)")
    if label is not None:
        checks.text("label", label)
    shown = [x for v in items for x in (_value(v, metric), _measured(v, metric)) if x is not None]
    if shown:
        box = ax.get_position()
        width = max(box.width * ax.figure.get_figwidth(), 1.0)
        room = _text_inches([_end_text(v, target) for v in items if v.fits], _END_FONT) + _END_POINTS / 72
        lim = _xlim(min(shown), max(shown), room, width)
    else:  # nothing to draw: an empty axis with the notes
        lim = (1.0, 10.0)
    rows = _Rows(ax, len(items), view=False)
    drawn = rows.set(items, metric, target, label, lim[0])
    for x, bar, end, note in zip(drawn["values"], rows.bars, rows.ends, rows.notes):
        for artist in ((bar, end) if x is None else (note,)):  # a one-off chart keeps no hidden artist
            artist.remove()
    if all(m is None for m in drawn["measured"]):
        rows.marker.remove()
    ax.set_xlim(*lim)
    if math.log10(lim[1] / lim[0]) < 2.5:  # a short axis: ticks at 1, 2 and 5 of each decade
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.xaxis.set_major_formatter(si_formatter(_UNIT[metric]))
    ax.set_xlabel(_XLABEL[metric])


# ---------------------------------------------------------------------------------------------
# The step's terms
# ---------------------------------------------------------------------------------------------

def step_breakdown(ax, verdicts: Sequence, *, label: str | None = None) -> None:
    """The step time of each :class:`~accelbook.models.choose.Verdict` (at most
    :data:`MAX_BREAKDOWN`, 8) as a stacked horizontal bar, top to bottom in the order given: the
    fixed overhead ``t0`` (``overhead_time``), then the larger of ``compute_time`` and
    ``memory_time`` coloured by which it is (training has no memory term: compute), then the
    exposed communication (``comm_exposed``: all of it when serving, the part not hidden behind
    compute when training). The three add up to ``step_time`` (seconds, linear x axis), written
    after the bar with the chip count. A chip that does not fit gets no bar and a grey note. The
    "why" behind :func:`ranked_bars`. ``label``: a title line, or None.

    ``ValueError`` for empty verdicts, more than 8, or verdicts of several modes; ``TypeError`` for
    an ``ax`` that is not an Axes or a verdict that is not a Verdict. Taught in: chapter 11.
    """
    _axes("ax", ax)
    items = _verdicts("verdicts", verdicts, maximum=MAX_BREAKDOWN)
    if label is not None:
        checks.text("label", label)
    n = len(items)
    y = np.arange(n, dtype=float)[::-1]
    rows = blended_transform_factory(ax.transAxes, ax.transData)
    segments = {"overhead": [], "compute": [], "memory bandwidth": [], "interconnect": []}
    totals = []
    for yi, v in zip(y, items):
        if not v.fits:
            ax.text(0.012, yi, _unfit_note(v), transform=rows, va="center", ha="left", fontsize=_END_FONT,
                    color=_GREY, style="italic")
            totals.append(None)
            continue
        memory = v.memory_time if v.memory_time is not None else 0.0
        busy_kind = "memory bandwidth" if memory > v.compute_time else "compute"
        parts = [("overhead", v.overhead_time), (busy_kind, max(v.compute_time, memory)),
                 ("interconnect", v.comm_exposed)]
        left = 0.0
        for kind, width in parts:
            if width > 0:
                segments[kind].append(ax.barh([yi], [width], left=[left], height=_BAR_HEIGHT,
                                              color=BINDING_COLORS[kind], zorder=2)[0])
            left += width
        totals.append((yi, left, v))
    drawn = [t for t in totals if t is not None]
    top = max((t[1] for t in drawn), default=1.0)
    for yi, total, v in drawn:
        ax.text(total + 0.015 * top, yi, f"{fmt(total, 's')} {_chips_word(v.devices)}", va="center", ha="left",
                fontsize=_END_FONT, color="#111111")
    ax.set_xlim(0.0, top * 1.45)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(y, [_row_name(v) for v in items], fontsize=_NAME_FONT)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.set_axisbelow(True)
    ax.xaxis.set_major_formatter(si_formatter("s"))
    ax.set_xlabel("time per step (s), at the dense PEAK")
    names = {"overhead": "overhead t0", "compute": "compute (FLOP / peak)",
             "memory bandwidth": "memory (bytes / bandwidth)", "interconnect": "exposed communication"}
    present = [k for k, bars in segments.items() if bars]
    ax.legend([Patch(facecolor=BINDING_COLORS[k]) for k in present], [names[k] for k in present],
              title=label or None, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=_END_FONT,
              title_fontsize=10, alignment="left", handlelength=1.2, borderaxespad=0.0, borderpad=0.2)


# ---------------------------------------------------------------------------------------------
# The explorable
# ---------------------------------------------------------------------------------------------

VIEW_BATCHES = tuple(2 ** k for k in range(9))
"""The batches :class:`ChooseView` takes: powers of two from 1 to 256."""

VIEW_METRICS = {"per chip": "tokens_per_s_per_chip", "per joule": "tokens_per_joule"}
"""The metrics :class:`ChooseView` offers, by the label its control shows."""

SEQUENCE_TOKENS = 4096
"""Tokens per sequence in :class:`ChooseView`: the context each served sequence has cached, and the
length of a training sequence (a step trains ``batch · 4096`` tokens)."""

FINETUNE_FRACTION = 0.01
"""Trainable fraction of the parameters in :class:`ChooseView`'s fine-tuning (a LoRA-like run;
LoRA trains about 0.001 to 0.01 of them)."""


def view_workload(model: str, mode: str, batch: int) -> M.Workload:
    """The :class:`~accelbook.models.choose.Workload` :class:`ChooseView` draws: serving ``batch``
    sequences decoding together at :data:`SEQUENCE_TOKENS` (4,096) tokens of context; training
    (all weights) or fine-tuning (:data:`FINETUNE_FRACTION` of them) ``batch`` sequences of 4,096
    tokens per step; bf16 weights and KV cache, no latency target. ``batch`` is one of
    :data:`VIEW_BATCHES`. ``ValueError``/``KeyError`` name a bad argument. Taught in: chapter 11."""
    checks.text("model", model)
    mode = checks.one_of("mode", mode, M.MODES)
    batch = checks.one_of("batch", batch, VIEW_BATCHES)
    if mode == "serve":
        return M.Workload("serve", model, batch=batch, context=SEQUENCE_TOKENS)
    return M.Workload(mode, model, tokens_per_step=batch * SEQUENCE_TOKENS,
                      trainable_fraction=FINETUNE_FRACTION if mode == "finetune" else 1.0)


def _title(model_name: str, mode: str, batch: int) -> str:
    if mode == "serve":
        return f"Serve {model_name}: batch {batch}, {SEQUENCE_TOKENS:,} tokens of context each"
    what = "all weights" if mode == "train" else f"{100 * FINETUNE_FRACTION:g} % of the weights"
    verb = "Train" if mode == "train" else "Fine-tune"
    return f"{verb} {model_name}: {batch} × {SEQUENCE_TOKENS:,} tokens a step, {what}"


@functools.lru_cache(maxsize=16)
def _ranges(models: tuple[str, ...], chips: tuple[str, ...] | None) -> dict[str, tuple[float, float]]:
    """Per view metric, the smallest and largest value (at the peak or the measured rate) over
    every setting the view's controls can take, and under ``"devices"`` the largest chip count."""
    out = {"devices": (1, 1)}
    for mode in M.MODES:
        for model in models:
            for batch in VIEW_BATCHES:
                for v in M.rank(view_workload(model, mode, batch), chips):
                    if v.fits:
                        out["devices"] = (1, max(out["devices"][1], v.devices))
                    for label, metric in VIEW_METRICS.items():
                        for x in (_value(v, metric), _measured(v, metric)):
                            if x is not None:
                                lo, hi = out.get(label, (x, x))
                                out[label] = (min(lo, x), max(hi, x))
    return out


class ChooseView(explore.View):
    """The chapter's explorable: a workload → every chip ranked, with the binding limit of each.

    ``update(model, mode, batch, metric)``: ``model`` one of ``models`` (keys of models.toml);
    ``mode`` "serve", "finetune" or "train"; ``batch`` one of :data:`VIEW_BATCHES` (sequences
    decoding together when serving; sequences of 4,096 tokens per step when training, see
    :func:`view_workload`); ``metric`` "per chip" or "per joule" (:data:`VIEW_METRICS`). The
    figure is :func:`ranked_bars` of :func:`accelbook.models.choose.rank` on ``chips`` (None: the
    whole spec database), drawn once and updated, with a title line naming the workload. The x
    range of each metric is fixed: it holds every value of every setting of the controls (computed
    once per set of models and chips, at construction). Bars, texts, names, the marker and the
    legend are dynamic; the axis is redrawn only when the metric changes. Returns a Markdown
    caption: the leader, its chip count and binding limit, and how many chips fit.

    ``ValueError``/``KeyError``/``TypeError`` name a bad argument. Taught in: chapter 11.
    """

    def __init__(self, models: Sequence[str], chips: Sequence | None = None):
        items = checks.sequence("models", models, of=checks.text)
        if len(set(items)) != len(items):
            raise ValueError(f"models={checks.show(models)} names a model twice")
        self.configs = {m: decoder.as_model(f"models[{i}]", m) for i, m in enumerate(items)}
        self.models = tuple(items)
        if chips is None:
            self.chips = None
            keys = tuple(c.key for c in specs.chips())
        else:
            recs = [specs.as_chip(f"chips[{i}]", c) for i, c in enumerate(checks.sequence("chips", chips))]
            keys = tuple(dict.fromkeys(c.key for c in recs))
            self.chips = keys
        probe = view_workload(self.models[0], "serve", 1)
        skipped = M.skipped(probe, list(keys))
        self.rows = len([k for k in keys if k not in skipped])
        if not self.rows:
            raise ValueError(f"chips={checks.show(chips)}: none has a dense bf16 peak, a memory bandwidth and a "
                             f"capacity ({skipped})")
        self.ranges = _ranges(self.models, self.chips)
        n = self.rows
        height = 1.95 + 0.21 * n
        self.figure = fig = Figure(figsize=(7.0, height))
        longest = max(len(chip_label(specs.get_chip(k))) for k in keys if k not in skipped)
        left = (0.3 + 0.075 * longest) / 7.0
        fig.subplots_adjust(left=left, right=0.975, bottom=0.62 / height, top=1 - 1.0 / height)
        self.ax = ax = fig.add_subplot()
        self._rows = _Rows(ax, n, view=True, title_y=1 - 0.08 / height)
        self.metric = None
        self.dynamic = self._rows.artists()

    def background(self, model, mode, batch, metric):
        """The key of the cached picture under the dynamic artists: ``metric`` (its x range, ticks
        and label are the only things outside them that change)."""
        return metric

    def _set_metric(self, label: str) -> None:
        if label == self.metric:
            return
        metric = VIEW_METRICS[label]
        lo, hi = self.ranges.get(label, (1.0, 10.0))
        width = self.ax.get_position().width * self.figure.get_figwidth()
        room = _text_inches([_chips_word(self.ranges["devices"][1])], _END_FONT) + _END_POINTS / 72
        self.ax.set_xlim(*_xlim(lo, hi, room, width))
        self.ax.xaxis.set_major_formatter(si_formatter(_UNIT[metric]))
        self.ax.set_xlabel(_XLABEL[metric])
        self.metric = label

    def update(self, model: str, mode: str, batch: int, metric: str) -> str:
        """Rank the chips for :func:`view_workload` ``(model, mode, batch)`` and draw them by
        ``metric`` ("per chip" or "per joule"); returns the Markdown caption. ``ValueError`` names
        a value outside the view's controls."""
        model = checks.one_of("model", model, self.models)
        mode = checks.one_of("mode", mode, M.MODES)
        batch = checks.one_of("batch", batch, VIEW_BATCHES)
        label = checks.one_of("metric", metric, tuple(VIEW_METRICS))
        verdicts = M.rank(view_workload(model, mode, batch), self.chips)
        self._set_metric(label)
        title = _title(self.configs[model].name, mode, batch)
        self._rows.set(verdicts, VIEW_METRICS[label], None, title, self.ax.get_xlim()[0])
        self.dynamic = self._rows.artists()
        return _caption(verdicts, VIEW_METRICS[label], mode)


def _caption(verdicts: list, metric: str, mode: str) -> str:
    fit = [v for v in verdicts if v.fits]
    what = "generated" if mode == "serve" else "trained"
    head = f"{len(fit)} of {len(verdicts)} chips fit"
    if not fit:
        cap = M.SERVE_MAX_DEVICES if mode == "serve" else M.TRAIN_MAX_DEVICES
        return head + f" (none holds this workload on up to {cap} chips)."
    scored = [v for v in fit if getattr(v, metric) is not None]
    best = max(scored, key=lambda v: getattr(v, metric)) if scored else None
    if best is None:
        return head + "; none has a sourced TDP, so no tokens per joule."
    value = fmt(getattr(best, metric), _UNIT[metric])
    per = "per chip" if metric == "tokens_per_s_per_chip" else "at full TDP"
    binds = Counter(v.binding for v in fit)
    common = max(binds, key=lambda b: (binds[b], -M.BINDINGS.index(b)))
    out = (f"{head}. Best: **{best.name}** with {value} {what} {per}, on {_chips_word(best.devices)[1:]}, "
           f"bound by {best.binding}. " + (f"All {len(fit)} are bound by {common}." if binds[common] == len(fit) else
                                            f"Most chips here are bound by {common} ({binds[common]} of {len(fit)})."))
    if metric == "tokens_per_joule" and len(scored) < len(fit):
        k = len(fit) - len(scored)
        out += f" {k} fitting chip{' has' if k == 1 else 's have'} no sourced TDP."
    return out


__all__ = ["BINDING_COLORS", "FINETUNE_FRACTION", "MAX_BREAKDOWN", "MEASURED_LABEL", "METRICS", "SEQUENCE_TOKENS",
           "VIEW_BATCHES", "VIEW_METRICS", "ChooseView", "ranked_bars", "step_breakdown", "view_workload"]
