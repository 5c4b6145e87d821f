"""Figures of chapter 03: measured matmul rates against the overhead model and a chip's prediction.

The records drawn come from :mod:`accelbook.measure` (``matmul``, :mod:`~accelbook.measure.sweeps`),
the models from :mod:`accelbook.models.matmul`; this module only draws them. It also holds
:class:`TextStamps`, which makes the text of an explorable view cheap to redraw (chapter 05's view
uses it too). Taught in: "The same matmul on every device" (chapter 03).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from accelbook import explore
from accelbook.models import matmul
from accelbook.plots.style import CYCLE, MARKERS, log_axes
from accelbook.units import fmt


def measured_rates(ax, records: Sequence, *, color: str, marker: str, label: str):
    """Median achieved FLOP/s of matmul ``records`` against n, with p10–p90 error bars; returns
    matplotlib's ``ErrorbarContainer``.

    The bars come from the timing percentiles: the slowest runs (p90 time) give the lowest rate.
    Taught in: "The same matmul on every device".
    """
    rate = np.array([r.flop_per_s for r in records])
    lo = np.array([r.flops / r.timing.p90 for r in records])
    hi = np.array([r.flops / r.timing.p10 for r in records])
    return ax.errorbar([r.n for r in records], rate, yerr=[rate - lo, hi - rate], color=color, marker=marker,
                       capsize=3, label=label)


class TextStamps:
    """The pixels of rendered lines of text, drawn again as images when the same line comes back.

    Matplotlib's Agg backend renders text one glyph at a time on every draw, and in an explorable
    view that updates its title and legend on every frame, the text takes most of the time (about
    0.3 ms of CPU per glyph here, against 0.01 ms for the same line stamped from this cache).
    ``attach(artist)`` routes the text that ``artist`` (a Text, a Legend) draws on an Agg canvas
    through the cache: a line is rendered once onto a scratch canvas at the same sub-pixel offset,
    cropped to its ink and kept, keyed by its string, font, colour and sub-pixel offset; each later
    draw of that line composites the kept pixels, which gives the same pixels as rendering it again.
    Other renderers (SVG, PDF), math, rotated and translucent text draw as usual. The ``size`` most
    recently used lines are kept. Taught in: the explorable figures of chapters 03 and 05 use it.
    """

    def __init__(self, size: int = 256):
        self.size, self.stamps, self._proxy = size, OrderedDict(), None

    def attach(self, artist, *, frozen: bool = False):
        """Make ``artist`` draw its text through the cache; returns ``artist``.

        ``frozen=True`` is for an artist that does not change once made (a legend that is rebuilt,
        not edited, when its entries change): its whole drawing on an Agg canvas is kept as one
        image, made on its first drawing on a canvas of that size, and drawn again from there."""
        draw = artist.draw
        if not frozen:
            artist.draw = lambda renderer, *args, **kwargs: draw(self._wrap(renderer), *args, **kwargs)
            return artist

        def draw_frozen(renderer, *args, **kwargs):
            if not isinstance(renderer, RendererAgg):
                return draw(renderer, *args, **kwargs)
            size = (renderer.width, renderer.height, renderer.dpi)
            kept = getattr(artist, "_accelbook_stamp", None)
            if kept is None or kept[0] != size:
                scratch = RendererAgg(int(renderer.width), int(renderer.height), renderer.dpi)
                draw(_StampingRenderer(scratch, self), *args, **kwargs)
                rgba = np.asarray(scratch.buffer_rgba())
                ink = rgba[..., 3] > 0
                rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
                image = None if rows.size == 0 else rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][::-1].copy()
                kept = (size, image, cols[0] if image is not None else 0,
                        renderer.height - rows[-1] - 1 if image is not None else 0)
                artist._accelbook_stamp = kept
            _size, image, x0, y0 = kept
            if image is not None:
                gc = renderer.new_gc()
                renderer.draw_image(gc, x0, y0, image)
                gc.restore()

        artist.draw = draw_frozen
        return artist

    def _wrap(self, renderer):
        if not isinstance(renderer, RendererAgg):
            return renderer
        if self._proxy is None or self._proxy._renderer is not renderer:  # one proxy per canvas:
            self._proxy = _StampingRenderer(renderer, self)  # matplotlib caches text metrics per renderer
        return self._proxy

    def _stamp(self, renderer, gc, x, y, s, prop, ismath, mtext):
        """The line ``s`` as Agg's ``draw_text`` draws it at (x, y) (pixels from the top left), unclipped:
        (its ink, bottom row first; the ink's offset from ``floor(x), floor(y)``), or None if blank."""
        ix, iy = math.floor(x), math.floor(y)
        key = (s, prop.copy(), tuple(gc.get_rgb()), gc.get_alpha(), gc.get_antialiased(), renderer.dpi,
               round(64 * (x - ix)), round(64 * (y - iy)))  # FreeType places glyphs in 1/64 pixels
        if key in self.stamps:
            self.stamps.move_to_end(key)
            return self.stamps[key]
        w, h, _d = renderer.get_text_width_height_descent(s, prop, ismath)
        pad, top = int(h) + 8, int(2 * h) + 8
        scratch = RendererAgg(int(w) + 2 * pad, int(h) + 2 * top, renderer.dpi)
        plain = scratch.new_gc()
        plain.copy_properties(gc)
        plain.set_clip_rectangle(None)  # the real canvas clips when the stamp is drawn
        plain.set_clip_path(None)
        scratch.draw_text(plain, x - ix + pad, y - iy + top, s, prop, 0, ismath, mtext)  # whole-pixel shift
        plain.restore()
        rgba = np.asarray(scratch.buffer_rgba())
        ink = rgba[..., 3] > 0
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        stamp = None if rows.size == 0 else (
            rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][::-1].copy(), cols[0] - pad, rows[0] - top)
        self.stamps[key] = stamp
        while len(self.stamps) > self.size:
            self.stamps.popitem(last=False)
        return stamp


class _StampingRenderer:
    """An Agg renderer whose ``draw_text`` goes through a :class:`TextStamps`; all else is forwarded."""

    def __init__(self, renderer, owner: TextStamps):
        self._renderer, self._owner = renderer, owner

    def __getattr__(self, name):
        return getattr(self._renderer, name)

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        r = self._renderer
        if ismath or angle or gc.get_alpha() != 1:  # math, turned or translucent text: drawn as usual
            return r.draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        stamp = self._owner._stamp(r, gc, x, y, s, prop, ismath, mtext)
        if stamp is not None:
            image, dx, dy = stamp  # image rows bottom-up, as draw_image wants them
            r.draw_image(gc, math.floor(x) + dx, r.height - (math.floor(y) + dy + image.shape[0]), image)


def _log_margins(lo: float, hi: float, fraction: float = 0.05) -> tuple[float, float]:
    """``(lo, hi)`` widened by ``fraction`` of their log range on each side (matplotlib's margins)."""
    pad = (hi / lo) ** fraction
    return lo / pad, hi * pad


def _draw_order(ax, artists) -> list:
    """``artists`` in the order ``ax`` draws them (by z-order, then as added): the blitting order
    that reproduces a full drawing."""
    place = {id(a): i for i, a in enumerate(ax.get_children())}
    return sorted(artists, key=lambda a: (a.get_zorder(), place.get(id(a), len(place))))


class MatmulModelView(explore.View):
    """This device's measured matmul rates, their fitted overhead model and a chip's predicted curve,
    for the explorable ``mm-model``; ``update(run, n, chip, utilization, t0)``.

    ``runs``: ``{(dtype, precision): records}`` (each record with ``n``, ``flops``, ``flop_per_s``,
    ``timing``); ``fits``: the fitted :class:`~accelbook.models.matmul.OverheadModel` per run;
    ``chips``: the spec-database chips on offer (``chip`` is a key). The chip's curve is
    :func:`accelbook.models.matmul.chip_model`: its spec-sheet peak for the run's dtype and
    precision times ``utilization``, plus ``t0`` (seconds) per call. ``n`` rings the measured point
    of that size. A run's colour and marker follow its dtype's first appearance in ``runs``.

    The axes are fixed: they hold every run's measurements and fit, and every chip's peak and curve
    for every ``t0`` in ``t0_values`` and utilization in ``utilizations`` (the values the controls
    offer), so the picture behind the data never changes and frames compare at a glance. Every
    data artist, the legend and the title are dynamic. Taught in: "The same matmul on every
    device", its explorable figure.
    """

    def __init__(self, runs: Mapping[tuple[str, str], Sequence], fits: Mapping, chips: Sequence, *,
                 device_label: str, t0_values: Sequence[float], utilizations: Sequence[float] = (1.0,),
                 n_axis: Sequence[float] | None = None, figsize: tuple[float, float] = (7.0, 4.2)):
        self.runs = {run: list(records) for run, records in runs.items()}
        missing = [run for run in self.runs if run not in fits]
        if not self.runs or missing:
            raise ValueError(f"every run needs records and a fit; no fit for {missing}")
        self.fits, self.chips, self.device_label = fits, {c.key: c for c in chips}, device_label
        self.n_axis = np.geomspace(16, 32768, 200) if n_axis is None else np.asarray(n_axis, dtype=float)
        flops = 2 * self.n_axis**3
        dtypes = list(dict.fromkeys(d for d, _p in self.runs))
        self.figure = Figure(figsize=figsize, layout="constrained")
        ax = self.ax = self.figure.add_subplot()
        self.measured = {}  # run -> (its ErrorbarContainer, the artists drawn for it)
        for (dtype, precision), records in self.runs.items():
            i = dtypes.index(dtype)
            bars = measured_rates(ax, records, color=CYCLE[i % len(CYCLE)], marker=MARKERS[i % len(MARKERS)],
                                  label=f"{dtype} ({precision}), measured on {device_label}")
            self.measured[dtype, precision] = (bars, [a for a in bars.get_children() if a is not None])
        (self.fit_line,) = ax.plot(self.n_axis, np.ones_like(self.n_axis), ls=":", label="its fitted model")
        (self.ring,) = ax.plot([1], [1], "o", ms=14, mfc="none", mec="black", mew=2)
        (self.pred_line,) = ax.plot(self.n_axis, np.ones_like(self.n_axis), "k--")
        self.peak_line = ax.axhline(1, color="black", lw=0.8)
        # fixed limits: everything any setting of the controls can show
        t0_max, u_min = max(t0_values), min(utilizations)
        lows, highs = [], []
        for run, records in self.runs.items():
            lows += [r.flops / r.timing.p90 for r in records] + [float(fits[run].rate(flops[0]))]
            highs += [r.flops / r.timing.p10 for r in records] + [float(fits[run].rate(flops[-1]))]
            for chip in self.chips.values():
                slowest = matmul.chip_model(chip, run[0], t0=t0_max, utilization=u_min, precision=run[1])
                if slowest is not None:
                    lows.append(float(slowest.rate(flops[0])))
                    highs.append(slowest.peak / u_min)  # the spec-sheet peak
        x_lo, x_hi = _log_margins(self.n_axis[0], self.n_axis[-1])
        log_axes(ax, y_unit="FLOP/s")
        ax.set(xlim=(x_lo, x_hi), ylim=_log_margins(min(lows), max(highs)),
               xlabel="matrix size n", ylabel="rate (FLOP/s)")
        # The title is dynamic, so it takes no part in the layout: a blank axes title of two lines
        # holds its place, and the title is drawn at its height, centred on the figure (the longest
        # chip names fit in the figure's width, not in the axes').
        ax.set_title("Mg(|)\nMg(|)", color="none")
        where = blended_transform_factory(self.figure.transFigure, ax.title.get_transform())
        self.title = self.figure.text(0.5, 1.0, " \n ", transform=where, ha="center", va="baseline",
                                      fontsize=mpl.rcParams["axes.titlesize"])
        self.stamps = TextStamps()  # the title and legend are redrawn on every frame: keep their lines
        self.stamps.attach(self.title)
        self.legend = None
        self._legend_key = None

    def update(self, run, n, chip, utilization, t0):
        run = tuple(run)
        records, fit = self.runs[run], self.fits[run]
        here = next((r for r in records if r.n == n), None)
        if here is None:
            raise ValueError(f"n={n!r} is not one of the measured sizes {[r.n for r in records]}")
        dtype, precision = run
        chip = self.chips[chip]
        pred = matmul.chip_model(chip, dtype, t0=t0, utilization=utilization, precision=precision)
        bars = self.measured[run][0]
        for other, (_b, arts) in self.measured.items():
            for a in arts:
                a.set_visible(other == run)
        flops = 2 * self.n_axis**3
        self.fit_line.set_ydata(fit.rate(flops))
        self.fit_line.set_color(bars.lines[0].get_color())
        self.ring.set_data([n], [here.flop_per_s])
        self.ring.set_label(f"n = {n}")
        title = f"{self.device_label}, n = {n}: {fmt(here.timing.median, 's')} measured\n"
        handles = [self.fit_line, self.ring]
        self.pred_line.set_visible(pred is not None)
        self.peak_line.set_visible(pred is not None)
        if pred is None:
            title += f"{chip.name}: no spec-sheet peak for {dtype} at precision '{precision}'"
        else:
            self.pred_line.set_ydata(pred.rate(flops))
            self.pred_line.set_label(f"{chip.name}: MODEL, {100 * utilization:.0f} % of peak")
            self.peak_line.set_ydata([pred.peak / utilization] * 2)
            self.peak_line.set_label(f"{chip.name}: spec-sheet peak")
            title += f"{chip.name}, predicted by the model: {fmt(float(pred.seconds(2 * n**3)), 's')}"
            handles += [self.pred_line, self.peak_line]
        self.title.set_text(title)
        handles.append(bars)
        key = (run, n, chip.key, utilization, pred is None)
        if key != self._legend_key:  # entries (or colours) changed: a new legend
            self.legend = self.stamps.attach(self.ax.legend(handles, [h.get_label() for h in handles],
                                                            fontsize=7.5, loc="lower right"), frozen=True)
            self._legend_key = key
        drawn = [a for arts in (a for _b, a in self.measured.values()) for a in arts]
        self.dynamic = _draw_order(self.ax, drawn + [self.fit_line, self.ring, self.pred_line, self.peak_line,
                                                     self.legend]) + [self.title]
        return None


__all__ = ["MatmulModelView", "TextStamps", "measured_rates"]
