"""The book's hardware picture: one chip, its memory, its host and a neighbour, each labelled with
the term of the time model it sets.

    t ≈ t0 + max(F / P, Q / W) + S / B_link

``t0`` is the host → device launch path (PCIe), ``P`` the chip's compute units, ``W`` its device
memory (HBM), ``B_link`` the link to a neighbouring chip. Every number on the picture comes from the
spec database (:mod:`accelbook.specs`); each term names the chapter that sharpens it.

Taught in: "Introduction" (chapter 01), "One sentence".
"""

from __future__ import annotations

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from accelbook import checks, specs
from accelbook.plots.style import PALETTE, style
from accelbook.units import fmt

TERM_COLORS = {"t0": PALETTE["vermillion"], "P": PALETTE["blue"], "W": "#007A59",
               "B_link": "#A8467F"}
"""One colour per term of the time model, for its box, arrow and label (the house palette's
vermillion and blue; its green and reddish purple darkened so small text keeps its contrast)."""

TERM_CHAPTERS = {
    "t0": "Overheads",
    "P": "Roofline, Same matmul, GPU SM, TPUs",
    "W": "Roofline, Memory hierarchy (planned)",
    "B_link": "Interconnects (planned)",
}
"""The chapters that sharpen each term (planned chapters say so)."""

FONT = 10.0  # points; at the figure's width this displays at >= 12 CSS px in the text column


def _peak(chip: specs.Chip, dtype: str) -> tuple[str, float | None]:
    """The peak for ``dtype``, or the 16-bit peak the chip has (fp16 on chips without bf16)."""
    for d in (dtype, "bf16", "fp16", "fp32"):
        if d in chip.peak:
            return d, chip.peak[d].value
    return dtype, None


def link_summary(chip: specs.Chip) -> tuple[float | None, str, str]:
    """The chip's link to a neighbour: (bandwidth in bytes/s or None, what it covers, the link).

    The bandwidth is to one peer in one direction where the database has it
    (``scaleup_peer_bandwidth``), else all links in one direction; ``None`` when the chip has no
    scale-up link and talks to peers over PCIe.
    """
    if not isinstance(chip, specs.Chip):
        raise TypeError(f"chip={chip!r} must be a specs.Chip (e.g. specs.get_chip('h100-sxm'))")
    link = chip.value("scaleup_link") or "no scale-up link"
    peer = chip.value("scaleup_peer_bandwidth")
    if peer is not None:
        return peer, "to one peer, one direction", link
    both = chip.value("scaleup_bandwidth")
    if both is not None:
        return both / 2, "all links, one direction", link
    return None, "no scale-up link: peers talk over PCIe", link


def hardware_picture(chip: specs.Chip, dtype: str = "bf16", *,
                     figsize: tuple[float, float] = (7.3, 4.6), fig: Figure | None = None) -> Figure:
    """Draw the host, the PCIe link, the chip (compute units and HBM) and a neighbour chip.

    Each part carries its term of ``t ≈ t0 + max(F/P, Q/W) + S/B_link`` with the chip's value from
    the spec database (``P`` at ``dtype``, or the chip's 16-bit peak if it lacks ``dtype``); a key
    at the bottom names the chapters that sharpen each term. Draws into ``fig`` when given (say
    ``plt.figure(figsize=...)``, so that a notebook shows it), else into a new Figure of ``figsize``
    that is not registered with pyplot; returns the figure.
    """
    if not isinstance(chip, specs.Chip):
        raise TypeError(f"chip={chip!r} must be a specs.Chip (e.g. specs.get_chip('h100-sxm'))")
    specs.check_dtype(dtype)
    size = checks.sequence("figsize", figsize, of=lambda n, v: checks.real(n, v, positive=True, maximum=100))
    if len(size) != 2:
        raise ValueError(f"figsize={checks.show(figsize)} must be (width, height) in inches")
    peak_dtype, peak = _peak(chip, dtype)
    bw, cap = chip.memory_bandwidth, chip.memory_bytes
    host_bw = chip.value("host_link_bandwidth")
    memory = chip.value("memory_type") or "device memory"
    if memory.upper().startswith("HBM"):
        memory = "HBM"
    link_bw, link_what, link_name = link_summary(chip)

    with style():
        if fig is None:
            fig = Figure(figsize=tuple(size))
        elif not isinstance(fig, Figure):
            raise TypeError(f"fig={fig!r} must be a matplotlib Figure or None")
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 6.6)
        ax.axis("off")

        def box(x0, y0, x1, y1, color, fill=0.12, lw=1.6):
            ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0,
                                        boxstyle="round,pad=0.02,rounding_size=0.12",
                                        facecolor=mpl.colors.to_rgba(color, fill), edgecolor=color, lw=lw))

        def arrow(a, b, color, linestyle="-"):
            ax.add_patch(FancyArrowPatch(a, b, arrowstyle="<|-|>", mutation_scale=14, color=color, lw=2.2,
                                         shrinkA=0, shrinkB=0, linestyle=linestyle))

        def text(x, y, s, color="#111111", size=FONT, **kw):
            ax.text(x, y, s, color=color, fontsize=size, ha=kw.pop("ha", "center"),
                    va=kw.pop("va", "center"), **kw)

        c = TERM_COLORS
        ax.text(5.0, 6.25, r"$t \;\approx\; t_0 \;+\; \max(F/P,\; Q/W) \;+\; S/B_\mathrm{link}$",
                fontsize=FONT + 4, ha="center", va="center", color="#111111")

        # host and the launch path
        box(0.15, 3.0, 2.1, 5.3, "#555555", fill=0.06)
        text(1.12, 4.9, "host", weight="bold")
        text(1.12, 4.05, "CPU, DRAM;\nPython and JAX\nqueue each\nkernel")
        arrow((2.15, 4.1), (3.05, 4.1), c["t0"])
        text(2.6, 4.3, "PCIe", size=FONT - 1, va="bottom")
        if host_bw:
            text(2.6, 3.9, f"{fmt(host_bw, 'B/s')}\nper\ndirection", size=FONT - 1, va="top")
        text(1.12, 2.75, r"$t_0$: launch," + "\ndispatch, sync,\nper kernel", color=c["t0"], va="top",
             weight="bold")

        # chip: compute units over device memory
        box(3.1, 1.45, 6.9, 5.75, "#333333", fill=0.03)
        text(5.0, 5.45, chip.name, weight="bold")
        box(3.35, 4.0, 6.65, 5.1, c["P"])
        text(5.0, 4.75, "compute units: " + r"$P$", color=c["P"], weight="bold")
        text(5.0, 4.3, f"{fmt(peak, 'FLOP/s')} dense ({peak_dtype})" if peak else "measured", color=c["P"])
        box(3.35, 1.7, 6.65, 2.8, c["W"])
        text(5.0, 2.5, memory + (f", {fmt(cap, 'B')}" if cap else ""), color=c["W"], weight="bold")
        text(5.0, 2.05, "weights, activations, KV cache", color=c["W"], size=FONT - 1)
        arrow((4.2, 2.85), (4.2, 3.95), c["W"])
        text(4.45, 3.4, r"$W$ = " + (fmt(bw, "B/s") if bw else "measured"), color=c["W"], ha="left",
             weight="bold")

        # neighbour and the link
        box(8.0, 3.0, 9.85, 5.3, "#555555", fill=0.06)
        text(8.93, 4.15, "neighbour\nchip", weight="bold")
        arrow((6.95, 4.1), (7.95, 4.1), c["B_link"], linestyle="-" if link_bw else "--")
        label = r"$B_\mathrm{link}$" + (f" = {fmt(link_bw, 'B/s')}" if link_bw else "")
        text(8.6, 2.75, label, color=c["B_link"], va="top", weight="bold")
        detail = _wrap(link_what, 26) + ("\n" + _wrap(link_name, 22) if link_bw else "")
        text(8.6, 2.3, detail, color=c["B_link"], va="top", size=FONT - 1)

        # key: which chapters sharpen which term
        text(0.15, 0.95, "Sharpened in:", ha="left", size=FONT - 0.5)
        for (x, y), term, label in (((1.75, 0.95), "t0", r"$t_0$"), ((4.3, 0.95), "P", r"$F, P$"),
                                    ((1.75, 0.45), "W", r"$Q, W$"), ((6.2, 0.45), "B_link",
                                                                     r"$S, B_\mathrm{link}$")):
            text(x, y, f"{label}: {TERM_CHAPTERS[term]}", color=c[term], ha="left", size=FONT - 0.5)
    return fig


def _wrap(s: str, width: int) -> str:
    words, lines, line = s.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


__all__ = ["FONT", "TERM_CHAPTERS", "TERM_COLORS", "hardware_picture", "link_summary"]
