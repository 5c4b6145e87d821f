"""Figures of a GPU: the SM and chip diagrams drawn from the spec database, the occupancy staircase
and explorer, the latency-hiding figure, and the tensor-versus-SIMT table. The chapter's three
explorable figures are views (:class:`AnatomyView`, :class:`OccupancyView`, :class:`LatencyView`):
drawn once, then updated by the same code that draws the plain figures.

Figures only: every number comes from :mod:`accelbook.models.gpu`.
Taught in: "Inside a GPU SM" (chapter 04).
"""

from __future__ import annotations

import functools
import textwrap
from typing import Sequence

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.figure import Figure

from accelbook import checks, explore, specs
from accelbook.models import gpu
from accelbook.plots.style import CYCLE, PALETTE, _axes, _figure, short_name
from accelbook.units import fmt


_SM_COLORS = {"scheduler": PALETTE["sky"], "registers": PALETTE["orange"], "fp32": PALETTE["blue"],
              "int32": PALETTE["blue"], "fp64": PALETTE["blue"], "tensor": PALETTE["green"],
              "sfu": PALETTE["vermillion"], "ldst": PALETTE["yellow"], "l1": PALETTE["purple"],
              "l2": PALETTE["yellow"], "memory": "#999999"}


def _patch(ax, x, y, w, h, color, alpha=0.35):
    """A rounded box (facecolor ``color`` at ``alpha``, dark edge) on ``ax``, in data units."""
    patch = mpl.patches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8",
                                       facecolor=mpl.colors.to_rgba(color, alpha), edgecolor="#333333",
                                       linewidth=0.8)
    ax.add_patch(patch)
    return patch


def _centred(ax, fontsize: float):
    """An empty text centred on its position, in the diagrams' text style (place it with :func:`_place`)."""
    return ax.text(0, 0, "", ha="center", va="center", fontsize=fontsize, color="#111111", linespacing=1.15)


def _place(text, x, y, w, h):
    """Centre ``text`` in the box (x, y, w, h)."""
    text.set_position((x + w / 2, y + h / 2))


def _anatomy(chip_or_anatomy):
    if isinstance(chip_or_anatomy, gpu.SMAnatomy):
        return chip_or_anatomy
    return gpu.sm_anatomy(chip_or_anatomy)


def _kib(value: float) -> str:
    return fmt(value, "B", binary=True)


def _linespacing(text) -> float:
    """``text``'s line spacing (``Text.get_linespacing`` is new in Matplotlib 3.11; the book also
    runs on Colab's 3.10 and on 3.7)."""
    getter = getattr(text, "get_linespacing", None)
    return getter() if getter is not None else text._linespacing


def _twin(text, stand_in: str, anchor: tuple[float, float], ha: str, va: str):
    """A text drawn where ``text`` is drawn, for a view to update (blitted), and ``text`` left as its
    invisible stand-in.

    A blitted artist takes no part in the figure's layout, and a title or an axis label that changes
    must not change the layout either. So ``text`` keeps its place in the layout, holding
    ``stand_in`` (as many lines as the twin will ever hold) in no colour, and the twin is anchored at
    the point ``anchor`` (fractions of ``text``'s box, where the layout put it) with alignment
    ``ha``, ``va``. Add the twin to the view's dynamic artists."""
    twin = mpl.text.Annotation("", anchor, xycoords=text, ha=ha, va=va, rotation=text.get_rotation(),
                               fontproperties=text.get_fontproperties(), color=text.get_color(),
                               linespacing=_linespacing(text), annotation_clip=False)
    text.set(text=stand_in, color="none")
    text.figure.add_artist(twin)
    return twin


# ---------------------------------------------------------------------------------------------
# The SM and the chip
# ---------------------------------------------------------------------------------------------
class _SMPanel:
    """The artists of :func:`sm_diagram`, made once for up to ``partitions`` sub-partitions;
    :meth:`show` sets their geometry, texts and visibility for one chip."""

    # (unit, y, height): the scheduler, the register file, then two rows of three execution units
    _UNITS = (("scheduler", 80, 8.5), ("registers", 64.5, 14), ("fp32", 49.5, 13.5), ("int32", 49.5, 13.5),
              ("fp64", 49.5, 13.5), ("tensor", 35.5, 12.5), ("sfu", 35.5, 12.5), ("ldst", 35.5, 12.5))

    def __init__(self, ax, partitions: int):
        ax.set(xlim=(0, 100), ylim=(0, 100))
        ax.axis("off")
        _patch(ax, 1, 12, 98, 86, "#ffffff", alpha=0.0)
        self.patches, self.parts = [], []  # patches back to front; per sub-partition (patches, texts)
        for _ in range(partitions):
            boxes = [_patch(ax, 0, 34, 1, 58, "#eeeeee", alpha=1.0)]
            boxes += [_patch(ax, 0, y, 1, h, _SM_COLORS[k]) for k, y, h in self._UNITS]
            texts = [ax.text(0, 90, "", ha="center", va="center", fontsize=9, color="#444444")]
            texts += [_centred(ax, 9) for _ in self._UNITS]
            self.patches += boxes
            self.parts.append((boxes, texts))
        _patch(ax, 3, 15, 94, 16, _SM_COLORS["l1"])
        self.l1 = _centred(ax, 9.5)
        _place(self.l1, 3, 15, 94, 16)
        ax.annotate("", xy=(50, 1.5), xytext=(50, 12), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
        self.l2 = ax.text(52, 6, "", ha="left", va="center", fontsize=9.5)
        self.title = ax.set_title(" ", fontsize=10.5)
        texts = [t for _, ts in self.parts for t in ts]
        self.changing = [*self.patches, *texts, self.l1, self.l2, self.title]  # what show() sets

    def show(self, a) -> None:
        if a.partitions > len(self.parts):
            raise ValueError(f"{a.chip.name} has {a.partitions} sub-partitions per SM; this diagram was "
                             f"made for at most {len(self.parts)}")
        gap, left = 2.0, 3.0
        w = (94 - gap * (a.partitions - 1)) / a.partitions
        third = (w - 4) / 3
        regs = a.registers_per_sm // a.partitions
        tc = a.tensor_cores_per_partition
        units = gpu.sm_units(a.compute_capability)
        per = lambda n: f"× {n // a.partitions}" if n % a.partitions == 0 else f"{n}/SM"
        labels = [f"warp scheduler\n≤ {a.max_warps_per_scheduler} warps",
                  f"register file {_kib(a.register_file_per_partition)}\n({regs:,} × 32-bit)",
                  f"FP32\n× {a.fp32_lanes_per_partition}", f"INT32\n{per(units.int32)}",
                  f"FP64\n{per(units.fp64)}", f"tensor\n× {tc}", f"SFU\n{per(units.sfu)}", "load/\nstore"]
        for p, (boxes, texts) in enumerate(self.parts):
            on = p < a.partitions
            x = left + p * (w + gap)
            # row of FP32, INT32, FP64: equal thirds; row of tensor, SFU, load/store: the words need more room
            widths = {"fp32": third, "int32": third, "fp64": third,
                      "tensor": 1.12 * third, "sfu": 0.76 * third, "ldst": 1.12 * third}
            bounds, cursor = [(x, 34, w, 58)], {}
            for k, y, h in self._UNITS:
                if k in ("scheduler", "registers"):
                    bounds.append((x + 1, y, w - 2, h))
                    continue
                left_edge = cursor.get(y, x + 1)
                bounds.append((left_edge, y, widths[k], h))
                cursor[y] = left_edge + widths[k] + 1
            for box, b in zip(boxes, bounds):
                box.set_bounds(*b)
                box.set_visible(on)
            texts[0].set(text=f"sub-partition {p}", x=x + w / 2, visible=on)
            for text, b, label in zip(texts[1:], bounds[1:], labels):
                text.set(text=label, visible=on)
                _place(text, *b)
        self.l1.set_text(f"L1 data cache / shared memory: {_kib(a.l1_smem_per_sm)} per SM\n"
                         f"(up to {_kib(a.shared_mem_per_sm)} as shared memory)")
        self.l2.set_text(f"to L2 ({fmt(a.l2_cache, 'B')}, all {a.sm_count} SMs) and "
                         f"{a.memory_type} ({fmt(a.memory_bandwidth, 'B/s')})")
        self.title.set_text(f"One SM of the {short_name(a.chip.name)} (CC {a.compute_capability}): "
                            f"{a.max_threads_per_sm:,} threads = {a.max_warps_per_sm} warps resident at most")


class _ChipPanel:
    """The artists of :func:`chip_diagram`: the SMs are one collection of squares, whose number,
    grid and colours :meth:`show` sets for one chip; the boxes of L2 and memory stay, their texts change."""

    def __init__(self, ax):
        ax.set(xlim=(0, 100), ylim=(0, 100))
        ax.axis("off")
        # The grid is chosen so that the SM boxes come out roughly square in this axes' shape.
        box = ax.get_position()
        fig_w, fig_h = ax.figure.get_size_inches()
        self.aspect = (0.94 * box.width * fig_w) / (0.5 * box.height * fig_h)
        self.sms = mpl.collections.PolyCollection([], linewidths=0.4, edgecolors="#333333")
        ax.add_collection(self.sms, autolim=False)
        self.summary = ax.text(50, 95.5, "", ha="center", va="center", fontsize=9.5)
        _patch(ax, 3, 23, 94, 10, _SM_COLORS["l2"], alpha=0.6)
        self.l2 = _centred(ax, 9.5)
        _place(self.l2, 3, 23, 94, 10)
        _patch(ax, 3, 2, 94, 13, _SM_COLORS["memory"], alpha=0.35)
        self.memory = _centred(ax, 9.5)
        _place(self.memory, 3, 2, 94, 13)
        for y0, y1 in ((33, 41), (15, 23)):
            ax.annotate("", xy=(50, y1), xytext=(50, y0), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
        self.title = ax.set_title(" ", fontsize=10)
        self.changing = [self.sms, self.summary, self.l2, self.memory, self.title]  # what show() sets

    def show(self, a, highlight: int = 0) -> None:
        n = a.sm_count
        if not 0 <= highlight < n:
            raise ValueError(f"highlight={highlight!r}: the {a.chip.name} has SMs 0 to {n - 1}")
        cols = max(1, int(np.ceil(np.sqrt(n * self.aspect))))
        rows = int(np.ceil(n / cols))
        cell_w, cell_h = 94 / cols, 50 / rows
        r, c = np.divmod(np.arange(n), cols)
        x0, y0 = 3 + c * cell_w + 0.3, 92 - (r + 1) * cell_h + 0.3
        x1, y1 = x0 + cell_w - 0.6, y0 + cell_h - 0.6
        self.sms.set_verts(np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                                     np.stack([x0, y1], 1)], 1))
        colors = np.tile(mpl.colors.to_rgba(PALETTE["blue"], 0.3), (n, 1))
        colors[highlight] = mpl.colors.to_rgba(PALETTE["blue"], 0.9)
        self.sms.set_facecolor(colors)
        self.summary.set_text(f"{n} SMs: {_kib(a.register_file_total)} of registers and "
                              f"{_kib(a.l1_smem_total)} of L1 / shared memory in all")
        self.l2.set_text(f"L2 cache: {fmt(a.l2_cache, 'B')}, shared by all SMs")
        self.memory.set_text(f"device memory ({a.memory_type}): {fmt(a.memory_capacity, 'B')} at "
                             f"{fmt(a.memory_bandwidth, 'B/s')}")
        self.title.set_text(f"{a.chip.name}: the whole chip (dark: SM {highlight})")


def sm_diagram(ax, chip) -> None:
    """Draw one SM of ``chip`` (a key, a :class:`~accelbook.specs.Chip` or an
    :class:`accelbook.models.gpu.SMAnatomy`) as labelled boxes on ``ax``.

    Four (``partitions``) sub-partitions, each with its warp scheduler, its slice of the register
    file, its FP32 lanes and its tensor cores; below them the L1 data cache / shared memory; every
    label carries the spec database's number (:func:`accelbook.models.gpu.sm_anatomy`). Taught in:
    "Inside a GPU SM" (chapter 04).
    """
    _axes("ax", ax)
    a = _anatomy(chip)
    _SMPanel(ax, a.partitions).show(a)


def chip_diagram(ax, chip, highlight: int = 0) -> None:
    """Draw the whole GPU: a grid of its ``sm_count`` SMs, the L2 cache they share and the device
    memory, labelled with the spec database's capacities and bandwidth. SM number ``highlight`` is
    filled darker (the one :func:`sm_diagram` zooms into). Taught in: "Inside a GPU SM" (chapter 04).
    """
    _axes("ax", ax)
    a = _anatomy(chip)
    highlight = checks.integer("highlight", highlight, minimum=0, maximum=a.sm_count - 1)
    _ChipPanel(ax).show(a, highlight)


class AnatomyView(explore.View):
    """One SM (:func:`sm_diagram`, top) and the whole chip (:func:`chip_diagram`, bottom) of the
    GPU picked by the explorable's ``chip`` control (a chip key among ``chips``; default: every GPU
    :func:`accelbook.models.gpu.anatomy_chips` lists).

    Built once, for the most sub-partitions the chips have; an update sets the boxes' geometry and
    visibility, the SMs (one collection) and every text for the chip. All of these are dynamic
    (the frame, the L1, L2 and memory boxes and the arrows stay in the cached picture), so no chip
    needs a full drawing; the renderer's text stamps draw a line of text seen before as an image.
    The titles keep their room in the layout with invisible stand-ins (the longest titles of the
    chips). Taught in: "Inside a GPU SM" (chapter 04), its explorable figure.
    """

    def __init__(self, chips: Sequence | None = None, highlight: int = 0):
        anatomies = [_anatomy(c) for c in (gpu.anatomy_chips() if chips is None else chips)]
        if not anatomies:
            raise ValueError("chips must not be empty")
        self.anatomies = {a.chip.key: a for a in anatomies}
        self.highlight = highlight
        self.figure = Figure(figsize=(7.5, 8), layout="tight")
        top, bottom = self.figure.subplots(2, 1, gridspec_kw={"height_ratios": [4.6, 3.4]})
        self.sm = _SMPanel(top, max(a.partitions for a in anatomies))
        self.chip = _ChipPanel(bottom)
        # The titles (one line each) are blitted twins of stand-ins that hold the longest title of
        # any chip, so the layout leaves room for every chip's; the rest of what changes with the
        # chip takes no part in the layout.
        longest = {}
        for a in anatomies:
            for panel in (self.sm, self.chip):
                panel.show(a, self.highlight) if panel is self.chip else panel.show(a)
                text = panel.title.get_text()
                longest[panel] = max(longest.get(panel, ""), text, key=len)
        for panel in (self.sm, self.chip):
            changing = panel.changing
            panel.title = _twin(panel.title, longest[panel], (0.5, 0), "center", "bottom")
            panel.changing = [*changing[:-1], panel.title]
        self.dynamic = [*self.sm.changing, *self.chip.changing]

    def update(self, chip):
        if chip not in self.anatomies:
            raise ValueError(f"chip={chip!r} is not one of this view's chips: {', '.join(self.anatomies)}")
        a = self.anatomies[chip]
        self.sm.show(a)
        self.chip.show(a, self.highlight)
        return None


# ---------------------------------------------------------------------------------------------
# Occupancy
# ---------------------------------------------------------------------------------------------
def _staircase_axes(ax, compute_capability) -> None:
    a = gpu.arch(compute_capability)
    ax.set(xlim=(0, 256), ylim=(-3, 105), xlabel="registers per thread",
           ylabel=f"occupancy (% of {a.max_warps_per_sm} warps per SM)")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(32))


def _staircase_title(compute_capability, shared_mem_per_block: int) -> str:
    a = gpu.arch(compute_capability)
    smem = f", {_kib(shared_mem_per_block)} shared memory per block" if shared_mem_per_block else ""
    return f"CC {a.compute_capability}, {a.name}{smem}"


def occupancy_staircase(ax, compute_capability, block_sizes: Sequence[int] = (128, 256, 512, 1024),
                        shared_mem_per_block: int = 0, mark: tuple[int, int] | None = None) -> None:
    """Theoretical occupancy against registers per thread (1..255), one step line per block size.

    ``mark`` = (threads per block, registers per thread) draws a ring on that configuration.
    Curves from :func:`accelbook.models.gpu.occupancy_vs_registers`. Taught in: "Inside a GPU SM" (chapter 04).
    """
    _axes("ax", ax)
    a = gpu.arch(compute_capability)
    block_sizes = checks.sequence("block_sizes", block_sizes, of=checks.positive_int)
    if mark is not None:
        if not (isinstance(mark, (tuple, list)) and len(mark) == 2):
            raise ValueError(f"mark={checks.show(mark)} must be None or a (threads per block, registers) pair")
        checks.positive_int("mark[0]", mark[0])
        checks.integer("mark[1]", mark[1], minimum=1, maximum=255)
    # Wider lines first, so a curve that coincides with another shows as a stripe inside it.
    for i in reversed(range(len(block_sizes))):
        threads = block_sizes[i]
        curve = gpu.occupancy_vs_registers(a.compute_capability, threads, shared_mem_per_block)
        ax.step(curve.registers, 100 * curve.occupancy, where="post", color=CYCLE[i % len(CYCLE)],
                label=f"{threads} threads per block", lw=1.4 + 1.1 * i, zorder=2 + len(block_sizes) - i)
        if mark is not None and mark[0] == threads:
            k = int(np.searchsorted(curve.registers, mark[1]))
            ax.plot([mark[1]], [100 * curve.occupancy[k]], "o", ms=11, mfc="none", mec="black", mew=2,
                    zorder=10)
    handles, labels = ax.get_legend_handles_labels()
    _staircase_axes(ax, compute_capability)
    ax.set_title(_staircase_title(compute_capability, shared_mem_per_block), fontsize=10.5)
    ax.legend(handles[::-1], labels[::-1], fontsize=9, loc="upper right")


_RESOURCES = ("warps", "blocks", "registers", "shared_memory")
_RESOURCE_LABELS = {"warps": "warp slots", "blocks": "block slots", "registers": "registers",
                    "shared_memory": "shared memory"}


class _LimitsPanel:
    """The artists of :func:`occupancy_limits`: one bar, one value and one 'no limit' note per
    resource, on an axis that ends at ``top`` blocks; :meth:`show` sets them for one occupancy."""

    def __init__(self, ax, top: float):
        self.top = top
        ax.set_axisbelow(True)  # the grid under the bars, whether they are drawn with it or over it
        n = len(_RESOURCES)
        self.bars = list(ax.barh(range(n), [0] * n, height=0.6, color=PALETTE["sky"]))
        self.values = [ax.annotate("", (0, i), xytext=(3, 0), textcoords="offset points", va="center",
                                   fontsize=9) for i in range(n)]
        self.unused = [ax.text(0.5, i, "no limit (uses none)", va="center", fontsize=9, color="#555555")
                       for i in range(n)]
        ax.set_yticks(range(n), [_RESOURCE_LABELS[k] for k in _RESOURCES])
        ax.set(xlim=(0, top), ylim=(n - 0.5, -0.5), xlabel="blocks per SM this resource allows")
        ax.grid(axis="y", visible=False)
        # the left spine is drawn over the bars' ends, as in a full drawing
        self.dynamic = [*self.bars, ax.spines["left"], *self.values, *self.unused]

    def show(self, occ) -> None:
        limits = occ.block_limits
        for i, k in enumerate(_RESOURCES):
            v = limits[k]
            bar, value, unused = self.bars[i], self.values[i], self.unused[i]
            unused.set_visible(v is None)
            bar.set_visible(v is not None)
            value.set_visible(v is not None)
            if v is None:
                continue
            inside = v <= self.top
            bar.set_width(min(v, self.top))
            bar.set_facecolor(PALETTE["vermillion"] if k in occ.limiting else PALETTE["sky"])
            value.set_text(f"{v}" + ("" if inside else " (off scale)") + (": cannot launch" if v == 0 else ""))
            value.xy = (min(v, self.top), i)
            value.xyann = (3 if inside else -3, 0)
            value.set_horizontalalignment("left" if inside else "right")


def occupancy_limits(ax, occ, top: float | None = None) -> None:
    """Horizontal bars: the blocks per SM each resource allows for one :class:`accelbook.models.gpu.Occupancy`;
    the limiting resources in vermillion, a resource the kernel does not use marked 'no limit'.
    The axis ends at ``top`` blocks (default: 1.3 times the block slots, which no resource can
    exceed by much); a longer bar is cut there and its value printed.
    Taught in: "Inside a GPU SM" (chapter 04).
    """
    _axes("ax", ax)
    checks.instance("occ", occ, gpu.Occupancy)
    if top is not None:
        top = checks.real("top", top, positive=True)
    _LimitsPanel(ax, 1.3 * occ.blocks_limit_blocks if top is None else top).show(occ)


@functools.lru_cache(maxsize=256)
def _occupancy_curve(cc, threads, smem, carveout):
    return gpu.occupancy_vs_registers(cc, threads, smem, shared_mem_carveout=carveout)


class _StaircasePanel:
    """One occupancy staircase (this block size and shared memory) with the configuration ringed."""

    def __init__(self, ax, compute_capability):
        (self.line,) = ax.step([np.nan], [np.nan], where="post", color=CYCLE[0], lw=1.4, zorder=3)
        (self.ring,) = ax.plot([np.nan], [np.nan], "o", ms=11, mfc="none", mec="black", mew=2, zorder=10)
        _staircase_axes(ax, compute_capability)
        self.ylabel = ax.yaxis.label
        self.title = ax.set_title(" ", fontsize=10)

    def show(self, occ, carveout) -> None:
        curve = _occupancy_curve(occ.compute_capability, occ.threads_per_block, occ.shared_mem_per_block,
                                 carveout)
        self.line.set_data(curve.registers, 100 * curve.occupancy)
        k = int(np.searchsorted(curve.registers, occ.registers_per_thread))
        self.ring.set_data([occ.registers_per_thread], [100 * curve.occupancy[k]])
        self.ylabel.set_text(f"occupancy (% of {occ.max_warps_per_sm} warps per SM)")
        self.title.set_text(_staircase_title(occ.compute_capability, occ.shared_mem_per_block))


_TITLE_WIDTH, _CONFIG_LINES, _RESULT_LINES = 90, 2, 3


def _occupancy_title(occ) -> str:
    config = (f"CC {occ.compute_capability}: {occ.threads_per_block} threads × {occ.registers_per_thread} "
              f"registers, {_kib(occ.shared_mem_per_block)} shared memory per block "
              f"(carveout {_kib(occ.shared_mem_carveout)})")
    if occ.blocks_per_sm == 0:
        result = "cannot launch: " + occ.reason
    else:
        limit = " and ".join(_RESOURCE_LABELS[k] for k in occ.limiting)
        result = (f"{occ.blocks_per_sm} blocks/SM = {occ.warps_per_sm} of {occ.max_warps_per_sm} warps: "
                  f"occupancy {100 * occ.occupancy:.0f} %, limited by {limit}")
    return "\n".join(textwrap.wrap(config, _TITLE_WIDTH, max_lines=_CONFIG_LINES, placeholder=" …")
                     + textwrap.wrap(result, _TITLE_WIDTH, max_lines=_RESULT_LINES, placeholder=" …"))


def _occupancy_panels(fig, compute_capabilities, start_cc):
    """The limits (top) and the staircase (below) on ``fig``, stacked so that the figure fits the
    text column; the bar axis ends at 1.3 times the most block slots of ``compute_capabilities``,
    the same for all of them."""
    left, right = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2, 3]})
    top = 1.3 * max(gpu.arch(cc).max_blocks_per_sm for cc in compute_capabilities)
    return _LimitsPanel(left, top), _StaircasePanel(right, start_cc)


def occupancy_explorer(fig, compute_capability, threads_per_block: int, registers_per_thread: int,
                       shared_mem_per_block: int, shared_mem_carveout: int | None = None):
    """Draw, on ``fig``, the occupancy of one launch configuration: the blocks per SM each
    resource allows (left, :func:`occupancy_limits`, on the same axis for every compute
    capability) and the occupancy staircase of this block size, shared memory and carveout with the
    configuration ringed (right). The title states blocks per SM, warps, occupancy and the
    limiting resource, or why the block cannot launch. :class:`OccupancyView` draws the same, once,
    and updates it. Taught in: "Inside a GPU SM" (chapter 04).
    """
    _figure("fig", fig)
    occ = gpu.occupancy(compute_capability, threads_per_block, registers_per_thread,
                        shared_mem_per_block, shared_mem_carveout=shared_mem_carveout)
    fig.clear()
    limits, stairs = _occupancy_panels(fig, gpu.compute_capabilities(), occ.compute_capability)
    limits.show(occ)
    stairs.show(occ, shared_mem_carveout)
    fig.suptitle(_occupancy_title(occ), fontsize=9.5)
    return fig


class OccupancyView(explore.View):
    """The occupancy explorer (:func:`occupancy_explorer`) drawn once and updated; controls ``cc``,
    ``threads`` (per block), ``registers`` (per thread), ``shared_kib`` (shared memory per block,
    KiB) and ``carveout`` (bytes, None: the largest).

    Fixed axes for every compute capability in ``compute_capabilities`` (default: all), so every
    bar, value, step line, ring, title and the staircase's y label are dynamic and no setting
    needs a full redraw. The layout keeps room for the longest title (five lines); the panels
    are stacked, so that the figure fits the text column.
    Taught in: "Inside a GPU SM" (chapter 04), its explorable figure.
    """

    def __init__(self, compute_capabilities: Sequence | None = None):
        ccs = tuple(gpu.compute_capabilities() if compute_capabilities is None else compute_capabilities)
        widest = max(ccs, key=lambda cc: gpu.arch(cc).max_warps_per_sm)
        fig = self.figure = Figure(figsize=(7, 7.6), layout="constrained")
        self.limits, self.stairs = _occupancy_panels(fig, ccs, widest)
        # The titles and the staircase's y label (it names the CC's warp slots) change: each is
        # blitted, and an invisible stand-in keeps its room in the layout (the most lines the title
        # can have, the widest label). The figure's title hangs from the top margin the layout keeps.
        fig.suptitle("\n".join(["Xg"] * (_CONFIG_LINES + _RESULT_LINES)), fontsize=9.5, color="none")
        top = 1 - fig.get_layout_engine().get()["h_pad"] / fig.get_figheight()
        self.title = fig.text(0.5, top, "", ha="center", va="top", fontsize=9.5)
        self.stairs.title = _twin(self.stairs.title, "Xg", (0.5, 0), "center", "bottom")
        self.stairs.ylabel = _twin(self.stairs.ylabel, self.stairs.ylabel.get_text(), (0.5, 0.5), "center", "center")
        self.dynamic = [*self.limits.dynamic, self.stairs.line, self.stairs.ring, self.stairs.title,
                        self.stairs.ylabel, self.title]

    def update(self, cc, threads, registers, shared_kib, carveout=None):
        occ = gpu.occupancy(cc, threads, registers, 1024 * shared_kib, shared_mem_carveout=carveout)
        self.limits.show(occ)
        self.stairs.show(occ, carveout)
        self.title.set_text(_occupancy_title(occ))
        return None


# ---------------------------------------------------------------------------------------------
# Latency hiding
# ---------------------------------------------------------------------------------------------
class _IssueRateArtists:
    """The artists of one :class:`accelbook.models.gpu.IssueRateCurve` on the latency-hiding axes:
    the bound, the simulated points, the knee line and its label (hidden when off the axis)."""

    def __init__(self, ax, color, label):
        (self.bound,) = ax.plot([np.nan], [np.nan], color=color, lw=1.5, label=label)
        (self.simulated,) = ax.plot([np.nan], [np.nan], "o", color=color, mfc="white", mew=1.5,
                                    label="_nolegend_")
        # the knee's line rises to the bound's ceiling, 1, and stays clear of the texts above it
        (self.knee,) = ax.plot([0, 0], [0, 1], color=color, ls=":", lw=1.2)
        # the label sits halfway up: low curves (little arithmetic per load) pass under it
        self.knee_text = ax.annotate("", (0, 0.45), xytext=(-3, 0), textcoords="offset points", fontsize=9,
                                     color=color, rotation=90, va="bottom", ha="right")
        self.lines = [self.bound, self.simulated, self.knee]

    def show(self, curve) -> None:
        w = np.arange(1, int(curve.warps.max()) + 1)
        self.bound.set_data(w, [gpu.issue_rate_bound(int(n), curve.alu_per_mem, curve.alu_latency,
                                                     curve.mem_latency) for n in w])
        self.simulated.set_data(curve.warps, curve.simulated)
        on = bool(curve.knee <= w[-1])
        self.knee.set_xdata([curve.knee, curve.knee])
        self.knee_text.xy = (curve.knee, 0.45)
        self.knee_text.set_text(f"knee: {curve.knee} warps")
        self.knee.set_visible(on)
        self.knee_text.set_visible(on)


def _latency_axes(ax, most_warps: int, max_warps: int | None) -> None:
    """Limits, ticks and labels of the latency-hiding axes, and the shading past ``max_warps``."""
    if max_warps is not None and max_warps < most_warps:
        ax.axvspan(max_warps, most_warps + 2, color="#bbbbbb", alpha=0.2, lw=0)
        # at the shading's right end, clear of a legend in the upper left
        ax.annotate(f"more warps than one scheduler\ncan hold ({max_warps})", (most_warps + 2, 1.12), xytext=(-4, 0),
                    textcoords="offset points", fontsize=9, color="#444444", va="top", ha="right")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(8))
    ax.set(xlim=(0, most_warps + 2), ylim=(0, 1.15), xlabel="resident warps on one scheduler",
           ylabel="instructions issued per cycle")


def latency_hiding_plot(ax, curve, max_warps: int | None = None, label: str | None = None,
                        color: str | None = None) -> None:
    """Issue rate of one warp scheduler against its resident warps, for one
    :class:`accelbook.models.gpu.IssueRateCurve`: the Little's-law bound ``min(1, n(A+1)/(A·L_alu + L_mem))``
    as a line (labelled ``label``) and the simulated steady-state rate as circles (unlabelled: say
    so in the title). A dotted line marks the knee (:func:`accelbook.models.gpu.warps_to_saturate`); with
    ``max_warps``, the warp counts one scheduler cannot hold are shaded. Linear axes, so the bound
    is a straight ramp up to the knee. Taught in: "Inside a GPU SM" (chapter 04).
    """
    _axes("ax", ax)
    checks.instance("curve", curve, gpu.IssueRateCurve)
    if max_warps is not None:
        max_warps = checks.positive_int("max_warps", max_warps)
    for name, value in (("label", label), ("color", color)):
        if value is not None:
            checks.text(name, value)
    label = label or f"{curve.alu_per_mem} arithmetic per load, load latency {curve.mem_latency} cycles"
    _IssueRateArtists(ax, color or CYCLE[0], label).show(curve)
    _latency_axes(ax, int(curve.warps.max()), max_warps)


@functools.lru_cache(maxsize=256)
def _issue_rate_curve(warps, alu_per_mem, alu_latency, mem_latency, policy):
    return gpu.issue_rate_curve(warps, alu_per_mem, alu_latency, mem_latency, policy=policy)


class LatencyView(explore.View):
    """The latency-hiding explorer: :func:`latency_hiding_plot` of one simulated scheduler at the
    warp counts ``warps``, the counts past ``max_warps`` shaded, drawn once and updated; controls
    ``mem_latency``, ``alu_per_mem``, ``alu_latency`` (cycles, counts) and ``policy``. The title
    gives the knee, also when it lies off the axis.

    Fixed axes (0 to the most warps, 0 to 1.15 instructions per cycle): the bound, the points, the
    knee and the title are dynamic, and no setting needs a full redraw. Each setting's
    simulation is the cost of an update; the last 256 are kept. Taught in: "Inside a GPU SM"
    (chapter 04), its explorable figure.
    """

    def __init__(self, warps: Sequence[int], max_warps: int | None = None):
        self.warps = tuple(int(w) for w in warps)
        if not self.warps:
            raise ValueError("warps must not be empty")
        self.figure = Figure(figsize=(7, 4.5), layout="tight")
        ax = self.figure.subplots()
        self.curve = _IssueRateArtists(ax, CYCLE[0], "Little's-law bound")
        _latency_axes(ax, max(self.warps), max_warps)
        # Upper left, above 1: no curve, point or knee line reaches the legend or the shading's note,
        # so both stay in the cached picture.
        ax.legend(fontsize=9, loc="upper left")
        self.title = _twin(ax.set_title(" ", fontsize=9.5), "Xg\nXg", (0.5, 0), "center", "bottom")
        # drawing order as in a full drawing: lines, the x axis' spine over the points on it, texts
        self.dynamic = [*self.curve.lines, ax.spines["bottom"], self.curve.knee_text, self.title]

    def update(self, mem_latency, alu_per_mem, alu_latency, policy="gto"):
        curve = _issue_rate_curve(self.warps, alu_per_mem, alu_latency, mem_latency, policy)
        self.curve.show(curve)
        self.title.set_text(f"{alu_per_mem} arithmetic (latency {alu_latency}) per load (latency {mem_latency} "
                            f"cycles): knee at {curve.knee} warps\ncircles: simulated, policy '{policy}'")
        return None


def ratio_table(ax, chips: Sequence, dtypes: Sequence[str] = ("tf32", "bf16", "fp16", "fp8", "int8")) -> None:
    """A heat-map table: for each GPU (rows) and dtype (columns), the dense peak of that dtype
    divided by the chip's FP32 peak (:func:`accelbook.models.gpu.tensor_vs_simt`), printed in each cell;
    '—' where the chip has no such mode. Log colour scale (cividis). Taught in: "Inside a GPU SM"
    (chapter 04).
    """
    _axes("ax", ax)
    chips = checks.sequence("chips", chips, of=lambda name, c: specs.as_chip(name, c))
    dtypes = checks.sequence("dtypes", dtypes, of=lambda name, d: checks.one_of(name, d, specs.DTYPES))
    values = np.full((len(chips), len(dtypes)), np.nan)
    for i, c in enumerate(chips):
        r = gpu.tensor_vs_simt(c)
        for j, d in enumerate(dtypes):
            if d in r:
                values[i, j] = r[d]
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise ValueError(f"dtypes={dtypes!r}: none of the chips has a tensor-core peak for any of them")
    lo = max(finite.min(), 1.0)
    norm = mpl.colors.LogNorm(vmin=lo, vmax=max(finite.max(), lo * 1.01))  # one value: a range around it
    cmap = mpl.colormaps["cividis"]
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(chips)):
        for j in range(len(dtypes)):
            v = values[i, j]
            if np.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
                ax.text(j, i, f"{v:.3g}×", ha="center", va="center", fontsize=9,
                        color="white" if dark else "#111111")
            else:
                ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="#777777")
    ax.set_xticks(range(len(dtypes)), [f"{d}\n/ fp32" for d in dtypes])
    ax.set_yticks(range(len(chips)), [f"{short_name(c.name)} ({c.year})" for c in chips], fontsize=9)
    ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)


__all__ = ["AnatomyView", "LatencyView", "OccupancyView", "chip_diagram", "latency_hiding_plot",
           "occupancy_explorer", "occupancy_limits", "occupancy_staircase", "ratio_table", "sm_diagram"]
