"""Figures of a GPU: the SM and chip diagrams drawn from the spec database, the occupancy staircase
and explorer, the latency-hiding figure, and the tensor-versus-SIMT table.

Figures only: every number comes from :mod:`accelbook.models.gpu`.
Taught in: "Inside a GPU SM" (chapter 04).
"""

from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np

from accelbook.models import gpu
from accelbook.plots.style import CYCLE, PALETTE, short_name
from accelbook.units import fmt


_SM_COLORS = {"scheduler": PALETTE["sky"], "registers": PALETTE["orange"], "fp32": PALETTE["blue"],
              "tensor": PALETTE["green"], "l1": PALETTE["purple"], "l2": PALETTE["yellow"],
              "memory": "#999999"}


def _box(ax, x, y, w, h, color, text="", fontsize=8.0, alpha=0.35, weight="normal"):
    ax.add_patch(mpl.patches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8",
                                            facecolor=mpl.colors.to_rgba(color, alpha),
                                            edgecolor="#333333", linewidth=0.8))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color="#111111", fontweight=weight, linespacing=1.15)


def _anatomy(chip_or_anatomy):
    if isinstance(chip_or_anatomy, gpu.SMAnatomy):
        return chip_or_anatomy
    return gpu.sm_anatomy(chip_or_anatomy)


def _kib(value: float) -> str:
    return fmt(value, "B", binary=True)


def sm_diagram(ax, chip) -> None:
    """Draw one SM of ``chip`` (a key, a :class:`~accelbook.specs.Chip` or an
    :class:`accelbook.models.gpu.SMAnatomy`) as labelled boxes on ``ax``.

    Four (``partitions``) sub-partitions, each with its warp scheduler, its slice of the register
    file, its FP32 lanes and its tensor cores; below them the L1 data cache / shared memory; every
    label carries the spec database's number (:func:`accelbook.models.gpu.sm_anatomy`). Taught in:
    "Inside a GPU SM" (chapter 04).
    """
    a = _anatomy(chip)
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    _box(ax, 1, 12, 98, 80, "#ffffff", alpha=0.0)
    gap, left = 2.0, 3.0
    w = (94 - gap * (a.partitions - 1)) / a.partitions
    regs = a.registers_per_sm // a.partitions
    for p in range(a.partitions):
        x = left + p * (w + gap)
        _box(ax, x, 34, w, 56, "#eeeeee", alpha=1.0)
        ax.text(x + w / 2, 88, f"sub-partition {p}", ha="center", va="center", fontsize=8, color="#444444")
        _box(ax, x + 1, 76, w - 2, 9, _SM_COLORS["scheduler"],
             f"warp scheduler\n≤ {a.max_warps_per_scheduler} warps", fontsize=8.5)
        _box(ax, x + 1, 56, w - 2, 18, _SM_COLORS["registers"],
             f"register file\n{_kib(a.register_file_per_partition)}\n({regs:,} × 32-bit)", fontsize=8.5)
        half = (w - 3) / 2
        _box(ax, x + 1, 36, half, 18, _SM_COLORS["fp32"], f"FP32\nlanes\n× {a.fp32_lanes_per_partition}",
             fontsize=8.5)
        _box(ax, x + 2 + half, 36, half, 18, _SM_COLORS["tensor"],
             f"tensor\ncore{'s' if a.tensor_cores_per_partition > 1 else ''}\n× {a.tensor_cores_per_partition}",
             fontsize=8.5)
    _box(ax, left, 15, 94, 16, _SM_COLORS["l1"],
         f"L1 data cache / shared memory: {_kib(a.l1_smem_per_sm)} per SM "
         f"(up to {_kib(a.shared_mem_per_sm)} as shared memory)", fontsize=9.5)
    ax.annotate("", xy=(50, 1.5), xytext=(50, 12), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
    ax.text(52, 6, f"to L2 ({fmt(a.l2_cache, 'B')}, shared by all {a.sm_count} SMs) and "
            f"{a.memory_type} ({fmt(a.memory_bandwidth, 'B/s')})", ha="left", va="center", fontsize=9)
    ax.set_title(f"One SM of the {short_name(a.chip.name)} (CC {a.compute_capability}): "
                 f"{a.max_threads_per_sm:,} threads = {a.max_warps_per_sm} warps resident at most",
                 fontsize=10)


def chip_diagram(ax, chip, highlight: int = 0) -> None:
    """Draw the whole GPU: a grid of its ``sm_count`` SMs, the L2 cache they share and the device
    memory, labelled with the spec database's capacities and bandwidth. SM number ``highlight`` is
    filled darker (the one :func:`sm_diagram` zooms into). Taught in: "Inside a GPU SM" (chapter 04).
    """
    a = _anatomy(chip)
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    n = a.sm_count
    # Choose the grid so that the SM boxes come out roughly square in this axes' shape.
    box = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    aspect = (0.94 * box.width * fig_w) / (0.5 * box.height * fig_h)
    cols = max(1, int(np.ceil(np.sqrt(n * aspect))))
    rows = int(np.ceil(n / cols))
    cell_w, cell_h = 94 / cols, 50 / rows
    for i in range(n):
        r, c = divmod(i, cols)
        alpha = 0.9 if i == highlight else 0.3
        ax.add_patch(mpl.patches.Rectangle((3 + c * cell_w + 0.3, 92 - (r + 1) * cell_h + 0.3),
                                           cell_w - 0.6, cell_h - 0.6, linewidth=0.4,
                                           facecolor=mpl.colors.to_rgba(PALETTE["blue"], alpha),
                                           edgecolor="#333333"))
    ax.text(50, 95.5, f"{n} SMs: {_kib(a.register_file_total)} of registers and "
            f"{_kib(a.l1_smem_total)} of L1 / shared memory in all", ha="center", va="center", fontsize=9.5)
    _box(ax, 3, 23, 94, 10, _SM_COLORS["l2"], f"L2 cache: {fmt(a.l2_cache, 'B')}, shared by all SMs",
         fontsize=9.5, alpha=0.6)
    _box(ax, 3, 2, 94, 13, _SM_COLORS["memory"],
         f"device memory ({a.memory_type}): {fmt(a.memory_capacity, 'B')} at {fmt(a.memory_bandwidth, 'B/s')}",
         fontsize=9.5, alpha=0.35)
    for y0, y1 in ((33, 41), (15, 23)):
        ax.annotate("", xy=(50, y1), xytext=(50, y0), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
    ax.set_title(f"{a.chip.name}: the whole chip (dark: SM {highlight})", fontsize=10)


def occupancy_staircase(ax, compute_capability, block_sizes: Sequence[int] = (128, 256, 512, 1024),
                        shared_mem_per_block: int = 0, mark: tuple[int, int] | None = None) -> None:
    """Theoretical occupancy against registers per thread (1..255), one step line per block size.

    ``mark`` = (threads per block, registers per thread) draws a ring on that configuration.
    Curves from :func:`accelbook.models.gpu.occupancy_vs_registers`. Taught in: "Inside a GPU SM" (chapter 04).
    """
    a = gpu.arch(compute_capability)
    block_sizes = list(block_sizes)
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
    ax.set(xlim=(0, 256), ylim=(-3, 105), xlabel="registers per thread",
           ylabel=f"occupancy (% of {a.max_warps_per_sm} warps per SM)")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(32))
    smem = f", {_kib(shared_mem_per_block)} shared memory per block" if shared_mem_per_block else ""
    ax.set_title(f"CC {a.compute_capability}, {a.name}{smem}", fontsize=10)
    ax.legend(handles[::-1], labels[::-1], fontsize=8, loc="upper right")


_RESOURCE_LABELS = {"warps": "warp slots", "blocks": "block slots", "registers": "registers",
                    "shared_memory": "shared memory"}


def occupancy_limits(ax, occ) -> None:
    """Horizontal bars: the blocks per SM each resource allows for one :class:`accelbook.models.gpu.Occupancy`;
    the limiting resources in vermillion, a resource the kernel does not use marked 'no limit'.
    Taught in: "Inside a GPU SM" (chapter 04).
    """
    limits = occ.block_limits
    names = list(limits)
    # No resource can allow more blocks than the block slots, so the axis ends a little past them;
    # a longer bar is cut there and its value printed.
    top = 1.3 * occ.blocks_limit_blocks
    for i, k in enumerate(names):
        v = limits[k]
        if v is None:
            ax.text(0.5, i, "no limit (uses none)", va="center", fontsize=8, color="#555555")
            continue
        color = PALETTE["vermillion"] if k in occ.limiting else PALETTE["sky"]
        ax.barh(i, min(v, top), color=color, height=0.6)
        text = f"{v}" + (" (off scale)" if v > top else "") + (": cannot launch" if v == 0 else "")
        ax.annotate(text, (min(v, top), i), xytext=(3 if v <= top else -3, 0), textcoords="offset points",
                    va="center", ha="left" if v <= top else "right", fontsize=8.5)
    ax.set_yticks(range(len(names)), [_RESOURCE_LABELS[k] for k in names])
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xlabel("blocks per SM this resource allows")
    ax.grid(axis="y", visible=False)


def occupancy_explorer(fig, compute_capability, threads_per_block: int, registers_per_thread: int,
                       shared_mem_per_block: int, shared_mem_carveout: int | None = None):
    """Draw, on ``fig``, the occupancy of one launch configuration: the blocks per SM each
    resource allows (left, :func:`occupancy_limits`) and the occupancy staircase of this block
    size and shared memory with the configuration marked (right). The title states blocks per SM,
    warps, occupancy and the limiting resource, or why the block cannot launch.
    Taught in: "Inside a GPU SM" (chapter 04), in its explorable figure.
    """
    occ = gpu.occupancy(compute_capability, threads_per_block, registers_per_thread,
                        shared_mem_per_block, shared_mem_carveout=shared_mem_carveout)
    fig.clear()
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 3]})
    occupancy_limits(left, occ)
    occupancy_staircase(right, compute_capability, (threads_per_block,), shared_mem_per_block,
                        mark=(threads_per_block, registers_per_thread))
    right.get_legend().remove()
    config = (f"CC {occ.compute_capability}: {threads_per_block} threads × {registers_per_thread} registers, "
              f"{_kib(shared_mem_per_block)} shared memory per block (carveout {_kib(occ.shared_mem_carveout)})")
    if occ.blocks_per_sm == 0:
        result = "cannot launch: " + textwrap.shorten(occ.reason, 300, placeholder=" …")
    else:
        limit = " and ".join(_RESOURCE_LABELS[k] for k in occ.limiting)
        result = (f"{occ.blocks_per_sm} blocks/SM = {occ.warps_per_sm} of {occ.max_warps_per_sm} warps: "
                  f"occupancy {100 * occ.occupancy:.0f} %, limited by {limit}")
    fig.suptitle("\n".join(textwrap.wrap(config, 110) + textwrap.wrap(result, 110)), fontsize=9.5)
    return fig


def latency_hiding_plot(ax, curve, max_warps: int | None = None, label: str | None = None,
                        color: str | None = None) -> None:
    """Issue rate of one warp scheduler against its resident warps, for one
    :class:`accelbook.models.gpu.IssueRateCurve`: the Little's-law bound ``min(1, n(A+1)/(A·L_alu + L_mem))``
    as a line (labelled ``label``) and the simulated steady-state rate as circles (unlabelled: say
    so in the title). A dotted line marks the knee (:func:`accelbook.models.gpu.warps_to_saturate`); with
    ``max_warps``, the warp counts one scheduler cannot hold are shaded. Linear axes, so the bound
    is a straight ramp up to the knee. Taught in: "Inside a GPU SM" (chapter 04).
    """
    color = color or CYCLE[0]
    label = label or f"{curve.alu_per_mem} arithmetic per load, load latency {curve.mem_latency} cycles"
    w = np.arange(1, int(curve.warps.max()) + 1)
    bound = [gpu.issue_rate_bound(int(n), curve.alu_per_mem, curve.alu_latency, curve.mem_latency) for n in w]
    ax.plot(w, bound, color=color, lw=1.5, label=label)
    ax.plot(curve.warps, curve.simulated, "o", color=color, mfc="white", mew=1.5, label="_nolegend_")
    if curve.knee <= w[-1]:
        ax.axvline(curve.knee, color=color, ls=":", lw=1.2)
        ax.annotate(f"knee: {curve.knee} warps", (curve.knee, 0.03), xytext=(-3, 0), textcoords="offset points",
                    fontsize=8, color=color, rotation=90, va="bottom", ha="right")
    if max_warps is not None and max_warps < w[-1]:
        ax.axvspan(max_warps, w[-1] + 2, color="#bbbbbb", alpha=0.2, lw=0)
        ax.annotate(f"more warps than one scheduler\ncan hold ({max_warps})", (max_warps, 1.12),
                    xytext=(4, 0), textcoords="offset points", fontsize=8, color="#444444", va="top")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(8))
    ax.set(xlim=(0, w[-1] + 2), ylim=(0, 1.15), xlabel="resident warps on one scheduler",
           ylabel="instructions issued per cycle")


def ratio_table(ax, chips: Sequence, dtypes: Sequence[str] = ("tf32", "bf16", "fp16", "fp8", "int8")) -> None:
    """A heat-map table: for each GPU (rows) and dtype (columns), the dense peak of that dtype
    divided by the chip's FP32 peak (:func:`accelbook.models.gpu.tensor_vs_simt`), printed in each cell;
    '—' where the chip has no such mode. Log colour scale (cividis). Taught in: "Inside a GPU SM"
    (chapter 04).
    """
    chips = list(chips)
    if not chips:
        raise ValueError("chips must not be empty")
    values = np.full((len(chips), len(dtypes)), np.nan)
    for i, c in enumerate(chips):
        r = gpu.tensor_vs_simt(c)
        for j, d in enumerate(dtypes):
            if d in r:
                values[i, j] = r[d]
    finite = values[np.isfinite(values)]
    norm = mpl.colors.LogNorm(vmin=max(finite.min(), 1.0), vmax=finite.max())
    cmap = mpl.colormaps["cividis"]
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(chips)):
        for j in range(len(dtypes)):
            v = values[i, j]
            if np.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
                ax.text(j, i, f"{v:.3g}×", ha="center", va="center", fontsize=8.5,
                        color="white" if dark else "#111111")
            else:
                ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="#777777")
    ax.set_xticks(range(len(dtypes)), [f"{d}\n/ fp32" for d in dtypes])
    ax.set_yticks(range(len(chips)), [f"{short_name(c.name)} ({c.year})" for c in chips], fontsize=8.5)
    ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)


__all__ = ["chip_diagram", "latency_hiding_plot", "occupancy_explorer", "occupancy_limits",
           "occupancy_staircase", "ratio_table", "sm_diagram"]
