"""Helpers for the chapters' notebooks: glue numbers into the prose, show tables.

:func:`glue` hands a value to myst-nb when the book is being built, so the prose can quote a
number the code computed (``{glue:text}`name```). It also keeps the value in the kernel, for the
notebook edition (Colab, Jupyter): there each paragraph that quotes glued values is a hidden cell
calling :func:`render`, which fills the paragraph's ``⟪name⟫`` and ``⟪name:.1f⟫`` slots with this
run's values, formatted as the website formats them. Tables are Markdown, built from records
(never typed numbers).

Taught in: every chapter; "Spec tables" (appendix) uses :func:`spec_table` and :func:`source_table`.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from accelbook import checks, specs
from accelbook.units import fmt


def _chips(chip_list: Any) -> list:
    return checks.sequence("chip_list", chip_list, nonempty=False,
                           of=lambda name, c: checks.instance(name, c, specs.Chip))


def _fields(fields: Any) -> list:
    return checks.sequence("fields", fields, nonempty=False, of=_field)


def _field(name: str, field: Any) -> str:
    if not isinstance(field, str) or (field not in specs.DTYPES and field not in specs.FIELDS):
        raise KeyError(f"{name}: field={checks.show(field)} is neither a dtype ({', '.join(specs.DTYPES)}) nor a spec field")
    return field


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


_GLUED: dict = {}  # every value glued in this kernel: what render() fills the edition's slots with
_WAITING: dict = {}  # name -> the rendered blocks that show "…" until it is glued


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the prose: to myst-nb in the book's build, and to
    :func:`render` in the notebook edition. Returns nothing, so a cell that ends in a ``glue``
    call prints nothing on the page.

    Numbers are quoted with ``{glue:text}`name:.1f```; NumPy scalars are glued as the Python
    number they hold (their repr, ``np.float64(3.3)``, cannot be formatted). Strings (say
    ``fmt(x, "B/s")``) are glued as Markdown and quoted with ``{glue:md}`name```, so they
    render without Python's quotes. A number that is not finite (NaN, inf) is an error: it would
    read "nan" on the page.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    display = checks.boolean("display", display)
    if value is None or checks.is_bool(value):
        raise ValueError(f"value={value!r} for glue name {name!r} must be a number or a string: "
                         f"it would read as '{value}' on the page")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
        raise ValueError(f"value={value!r} for glue name {name!r} must be a finite number: "
                         "it would read as 'nan' or 'inf' on the page")
    _GLUED[name] = value
    for block in _WAITING.pop(name, []):  # paragraphs of the edition shown before this value existed
        block.refresh()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: the edition's render() reads _GLUED
        return None
    if isinstance(value, str):
        from IPython.display import Markdown

        _glue(name, Markdown(value), display=display)
    else:
        _glue(name, value, display=display)
    return None


# -- the notebook edition: prose with this run's numbers ------------------------------------------

SLOT = re.compile(r"⟪([A-Za-z_][A-Za-z0-9_.-]*)(?::([^⟪⟫]*))?⟫")
MISSING = "…"  # what a slot shows until its value is glued (a later cell may glue it)


def fill(template: str, values: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``template`` with each slot replaced by its value: ``⟪name⟫`` inserts a string as Markdown
    (``{glue:md}``) and a number as Python writes it (``{glue:text}`` without a format);
    ``⟪name:.1f⟫`` formats the value with the format spec (``{glue:text}`name:.1f```).

    Returns the text and the names that ``values`` lacks, in order; their slots read "…".
    """
    template = checks.text("template", template)
    checks.instance("values", values, Mapping)
    missing = []

    def one(match: re.Match) -> str:
        name, spec = match.group(1), match.group(2)
        if name not in values:
            missing.append(name)
            return MISSING
        value = values[name]
        if spec is None:
            return value if isinstance(value, str) else str(value)
        try:
            return format(value, spec)
        except (ValueError, TypeError) as err:
            raise ValueError(f"template: slot {match.group(0)} cannot format {value!r}: {err}") from None

    return SLOT.sub(one, template), missing


class Code:
    """Code inside a collapsed block of :func:`render` (a solution's computation): it runs once,
    in the notebook's namespace, and the block shows it with what it printed or displayed. With
    ``shown=False`` (set-up code the website hides) it runs and shows only what it displays."""

    def __init__(self, source: str, shown: bool = True):
        self.source = checks.text("source", source).strip("\n")
        self.shown = checks.boolean("shown", shown)

    def run(self, namespace: dict) -> list[tuple[str, str]]:
        """Execute in ``namespace``. Returns what it showed, in pieces ``(kind, content)``: kind
        ``"text"`` (printed; then any plain-text display), ``"markdown"`` (a Markdown display such
        as :func:`show`'s table) or ``"png"`` (a base64 image, such as a figure)."""
        checks.instance("namespace", namespace, dict)
        from IPython import get_ipython

        code = compile(self.source, "<solution>", "exec")
        if get_ipython() is None:  # no kernel: only what is printed can be caught
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, namespace)  # noqa: S102 (the book's own code)
            return [("text", out.getvalue())] if out.getvalue().strip() else []
        from IPython.utils.capture import capture_output

        with capture_output(stdout=True, stderr=False, display=True) as cap:
            exec(code, namespace)  # noqa: S102
        pieces = [("text", cap.stdout)] if cap.stdout.strip() else []
        for shown in cap.outputs:
            data = shown.data
            if "text/markdown" in data:
                pieces.append(("markdown", data["text/markdown"]))
            elif "image/png" in data:
                pieces.append(("png", data["image/png"]))
            elif data.get("text/plain", "").strip():
                pieces.append(("text", data["text/plain"]))
        return pieces


class _Block:
    """One displayed block of :func:`render`, filled again when a value it waits for is glued."""

    def __init__(self, parts: list, summary: str | None):
        self.parts, self.summary, self.handle = parts, summary, None

    def markdown(self, values: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
        pieces, missing = [], []
        for part in self.parts:
            if isinstance(part, str):
                text, lacking = fill(part, _GLUED if values is None else values)
                pieces.append(text)
                missing += lacking
            else:
                code, shown = part
                if code.shown:
                    pieces.append(f"```python\n{code.source.rstrip()}\n```")
                if shown and code.shown:  # labelled: some renderers draw code and output fences alike
                    pieces.append("*Output:*")
                for kind, content in shown:
                    pieces.append(f"```text\n{content.rstrip()}\n```" if kind == "text" else content
                                  if kind == "markdown" else f"![output](data:image/png;base64,{content.strip()})")
        body = "\n\n".join(pieces)
        if self.summary is not None:
            body = f"<details>\n<summary><b>{self.summary}</b></summary>\n\n{body}\n\n</details>"
        return body, list(dict.fromkeys(missing))

    def refresh(self) -> None:
        from IPython.display import Markdown

        text, missing = self.markdown()
        self.handle.update(Markdown(text))
        for name in missing:
            if self not in _WAITING.setdefault(name, []):
                _WAITING[name].append(self)


def _parts(parts: tuple, summary: Any) -> tuple[list, str | None]:
    if not parts:
        raise ValueError("parts: render needs at least one Markdown text or Code")
    for i, part in enumerate(parts):
        if not isinstance(part, (str, Code)):
            raise TypeError(f"parts[{i}]={checks.show(part)} must be Markdown text (str) or a Code")
    if summary is not None:
        summary = checks.text("summary", summary)
    return [p.strip("\n") if isinstance(p, str) else p for p in parts], summary


def preview(*parts: str | Code, summary: str | None = None) -> str:
    """What :func:`render` shows before any value is glued and before any code runs: each slot
    reads "…", and a :class:`Code` shows its source without output. The notebook edition stores it
    as the output of each render cell, so the text reads before the notebook runs."""
    parts, summary = _parts(parts, summary)
    return _Block([p if isinstance(p, str) else (p, []) for p in parts], summary).markdown({})[0]


def render(*parts: str | Code, summary: str | None = None) -> None:
    """Show prose of the notebook edition with this run's glued values in it (see :func:`fill`).

    Each part is Markdown (a template with slots) or a :class:`Code` to run now, in the notebook's
    namespace; the block shows its source and what it printed. Blank lines around a Markdown part
    are dropped. With ``summary`` the whole block is
    collapsed under it (HTML ``<details>``), as the edition shows a solution. A slot whose value a
    later cell glues reads "…" until that cell runs, then the block is drawn again.
    """
    from IPython import get_ipython
    from IPython.display import Markdown, display

    parts, summary = _parts(parts, summary)
    shell = get_ipython()
    if shell is None and any(isinstance(p, Code) for p in parts):
        raise RuntimeError("render: Code parts run in the notebook's namespace; no IPython kernel here")
    block = _Block([p if isinstance(p, str) else (p, p.run(shell.user_ns)) for p in parts], summary)
    text, missing = block.markdown()
    block.handle = display(Markdown(text), display_id=True)
    for name in missing:
        _WAITING.setdefault(name, []).append(block)
    return None


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are converted with ``str`` and '|' is escaped."""
    headers = checks.sequence("headers", headers, of=checks.text)
    rows = checks.sequence("rows", rows, nonempty=False)
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    for i, row in enumerate(rows):
        row = checks.sequence(f"rows[{i}]", row, nonempty=False)
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}]={checks.show(row)} has {len(row)} cells; headers have {len(headers)}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def show(markdown: str):
    """Display Markdown in the notebook (and in the built book)."""
    from IPython.display import Markdown, display

    display(Markdown(checks.text("markdown", markdown)))


_DISPLAY = {  # field -> (unit for fmt, binary prefixes?)
    "memory_capacity": ("B", False),
    "memory_bandwidth": ("B/s", False),
    "l2_cache": ("B", False),
    "on_chip_memory": ("B", True),
    "clock": ("Hz", False),
    "tdp": ("W", False),
    "host_link_bandwidth": ("B/s", False),
    "scaleup_bandwidth": ("B/s", False),
    "shared_mem_per_sm": ("B", True),
    "l1_smem_per_sm": ("B", True),
    "register_file_per_sm": ("B", True),
}


def format_spec(spec: specs.Spec) -> str:
    """One spec value for display: as printed by its source when the units allow, else SI."""
    checks.instance("spec", spec, specs.Spec)
    if spec.si_unit in ("text", "count", "year"):
        return str(spec.raw)
    if spec.field in specs.DTYPES:
        return fmt(spec.value, "OP/s" if spec.field == "int8" else "FLOP/s")
    unit, binary = _DISPLAY.get(spec.field, (spec.si_unit, False))
    if spec.unit.endswith("iB"):
        binary = True
    return fmt(spec.value, unit, binary=binary)


def spec_table(chip_list: Sequence[specs.Chip], fields: Sequence[str],
               source_links: bool = True) -> str:
    """Markdown table: one row per chip, one column per field ('bf16' etc. mean peak FLOP/s).

    A missing value shows as '—'. With ``source_links`` each value links to its source.
    """
    chip_list, fields = _chips(chip_list), _fields(fields)
    source_links = checks.boolean("source_links", source_links)
    headers = ["chip"] + [field_label(f) for f in fields]
    rows = []
    for chip in chip_list:
        row = [chip.name]
        for f in fields:
            spec = chip.peak.get(f) if f in specs.DTYPES else chip.specs.get(f)
            if f not in specs.DTYPES and f not in specs.FIELDS:
                raise KeyError(f"field={f!r} is neither a dtype nor a spec field")
            if spec is None:
                row.append("—")
            elif source_links:
                row.append(f"[{format_spec(spec)}]({spec.source.url})")
            else:
                row.append(format_spec(spec))
        rows.append(row)
    return markdown_table(headers, rows)


def source_table(chip_list: Sequence[specs.Chip]) -> str:
    """Markdown table of the documents cited by ``chip_list``, with their kind."""
    seen: dict[str, specs.Source] = {}
    for chip in _chips(chip_list):
        for spec in list(chip.peak.values()) + list(chip.specs.values()):
            seen.setdefault(spec.source.key, spec.source)
    rows = [(f"[{s.title}]({s.url})", s.kind) for s in sorted(seen.values(), key=lambda s: s.title)]
    return markdown_table(["source", "kind"], rows)


def device_summary(info, ceilings=None) -> str:
    """Markdown describing the device running the notebook, and where its ceilings come from.

    ``info`` is a :class:`accelbook.device.DeviceInfo`; ``ceilings`` an optional
    :class:`accelbook.measure.Ceilings` to report next to it. On a CPU the table names the CPU
    (:func:`accelbook.device.cpu_info`): model, cores used, vector width, FMA units, clock and the
    peak they imply, beside the measured one, and says whether the measured numbers are the
    book build's single measurement. On TPU v2 and v3 it says that a JAX device is one
    TensorCore, with its share of the chip. Taught in: "Introduction" (what is this machine?).
    """
    import os

    from accelbook import device

    checks.instance("info", info, device.DeviceInfo)
    if ceilings is not None:
        for name in ("peak_flops", "memory_bandwidth"):
            if not hasattr(ceilings, name):
                raise TypeError(f"ceilings={checks.show(ceilings)} must be an accelbook.measure.Ceilings or None")
            checks.real(f"ceilings.{name}", getattr(ceilings, name), positive=True)
    rows = [("backend", info.backend), ("device kind (from JAX)", f"`{info.device_kind}`"),
            ("devices", info.device_count)]
    if info.has_spec_sheet:
        chip = info.chip
        rows.append(("spec sheet", f"{chip.name} ({chip.architecture}, {chip.year})"))
        if info.tensorcores_per_device:
            share = f"1/{info.tensorcores_per_device}"
            rows.append(("one JAX device", f"one of the chip's {info.tensorcores_per_device} TensorCores: "
                                           f"{share} of its peak, bandwidth and memory"))
    elif info.chip is not None:
        rows.append(("spec sheet", "none applies to a CPU: ceilings are measured"))
    else:
        rows.append(("spec sheet", "device not in the database: ceilings are measured"))
    cpu = device.cpu_info(info)
    cores = None
    if cpu is not None:
        cores = ceilings.cpu_cores if ceilings is not None and ceilings.cpu_cores else cpu.cores
        arch = f" ({cpu.microarchitecture})" if cpu.microarchitecture else ""
        rows.append(("CPU", f"{cpu.model_name}{arch}"))
        used = f"{cores} of {cpu.total_cpus} logical CPUs"
        if cpu.logical_cpus < cpu.total_cpus:
            pinned = os.environ.get("ACCELBOOK_CPU_PINNING") == "one core"  # set by the build
            used += (" (the book build pins every chapter to one core, so that the measurements on each page "
                     "see the same machine; XLA sizes its CPU thread pool from the CPUs a process may use)"
                     if pinned else " (this process may use only these; XLA sizes its CPU thread pool from them)")
        rows.append(("cores used", used))
        if cpu.vector_bits is not None:
            fma = f"{cpu.fma_units} FMA units of {cpu.fma_bits} bits per core"
            fma += (" (assumed: this CPU is not in the table)" if cpu.fma_assumed
                    else f" ({cpu.fma_source.title})")
            rows.append(("vector instructions", f"{cpu.simd}: {cpu.fp32_lanes} fp32 lanes; {fma}"))
        rows.append(("clock", "unknown" if cpu.clock_hz is None
                     else f"{fmt(cpu.clock_hz, 'Hz')}, {cpu.clock_source}"))
        dtype = ceilings.dtype if ceilings is not None and ceilings.dtype in ("fp64", "fp32", "bf16", "fp16") else "fp32"
        peak = cpu.peak_flops(dtype, cores)
        if peak is not None:
            per_cycle = cpu.flop_per_cycle(dtype)
            rows.append((f"computed peak ({dtype})",
                         f"{fmt(peak, 'FLOP/s')} = {cores} core{'s' if cores != 1 else ''} × {per_cycle:.0f} FLOP "
                         f"per cycle × "
                         f"{fmt(cpu.clock_hz, 'Hz')}" + (" (bf16 has no arithmetic of its own here: "
                                                         "it is computed in fp32)" if dtype == "bf16" else "")))
    if ceilings is not None:
        rows.append((f"peak ({ceilings.dtype}, {ceilings.source})", fmt(ceilings.peak_flops, "FLOP/s")))
        rows.append((f"memory bandwidth ({ceilings.source})", fmt(ceilings.memory_bandwidth, "B/s")))
        rows.append(("ridge point", f"{ceilings.ridge_point:.3g} FLOP/byte"))
        if ceilings.source == "measured":
            rounds = len(ceilings.peak_samples)
            how = (f"once for this build of the book, before any chapter ran (the same numbers on every page)"
                   if ceilings.once_per_build else "in this notebook's process")
            spread = ceilings.peak_spread
            rows.append(("how measured", f"{how}: the best of {rounds} interleaved rounds of a large matmul and a "
                                         f"STREAM triad (other work only slows a round down); the rounds differ by "
                                         f"{spread:.0%} (peak) and {ceilings.bandwidth_spread:.0%} (bandwidth)"))
            if cpu is not None and peak is not None:
                ratio = ceilings.peak_flops / peak
                if ratio <= 1:
                    why = "of the computed peak"
                elif cpu.clock_is_max:
                    why = ("above the computed peak: this CPU has more FMA throughput than "
                           + ("the assumed default" if cpu.fma_assumed else "its table entry") + " says")
                else:
                    why = "above the computed peak: the cores run faster than the clock the system reports"
                rows.append(("measured ÷ computed peak", f"{ratio:.2f} ({why})"))
    return markdown_table(["property", "this machine"], rows)


# --- Added for "Introduction" and the appendix "Spec tables" -----------------------------------


# Headings that must say what a bandwidth counts: which links, and which direction.
_LABELS = {
    "host_link_bandwidth": "host link bandwidth (one direction)",
    "scaleup_bandwidth": "scale-up bandwidth (all links, both directions)",
    "scaleup_link_bandwidth": "one scale-up link (one direction)",
    "scaleup_peer_bandwidth": "to one neighbour (one direction)",
    "scaleup_links": "scale-up links",
    "scaleup_link": "scale-up link",
    "scaleup_topology": "scale-up topology",
}


def field_label(field: str) -> str:
    """Column heading for a dtype ('bf16' -> 'bf16 peak') or a spec field ('l2_cache' -> 'l2 cache').

    The same headings :func:`spec_table` uses. Taught in: appendix "Spec tables".
    """
    if not isinstance(field, str):
        raise KeyError(f"field={checks.show(field)} must be a dtype ({', '.join(specs.DTYPES)}) or a spec field name")
    if field in specs.DTYPES:
        return f"{field} peak"
    if field in _LABELS:
        return _LABELS[field]
    if field in specs.FIELDS:
        return field.replace("_", " ")
    raise KeyError(f"field={field!r} is neither a dtype ({', '.join(specs.DTYPES)}) nor a spec field")


def _get(chip: specs.Chip, field: str) -> specs.Spec | None:
    field_label(field)  # raises KeyError for an unknown field
    return chip.peak.get(field) if field in specs.DTYPES else chip.specs.get(field)


def fields_present(chip_list: Sequence[specs.Chip], fields: Sequence[str]) -> list[str]:
    """The ``fields`` (dtype names or spec fields) that at least one chip in ``chip_list`` has.

    Keeps the given order, so a generated table never shows a column that is '—' for every row.
    Taught in: appendix "Spec tables".
    """
    chip_list, fields = _chips(chip_list), _fields(fields)
    return [f for f in fields if any(_get(c, f) is not None for c in chip_list)]


def field_table(fields: Sequence[str]) -> str:
    """Markdown table explaining ``fields``: heading, SI unit in the library, and what it means.

    Dtype names are peak throughput (FLOP/s; OP/s for int8); spec fields are described by
    :data:`accelbook.specs.FIELDS`. Taught in: appendix "Spec tables".
    """
    rows = []
    for f in _fields(fields):
        label = field_label(f)
        if f in specs.DTYPES:
            unit = "OP/s" if f == "int8" else "FLOP/s"
            rows.append((label, unit, f"dense peak {f} throughput of the whole chip"))
        else:
            rows.append((label, *specs.FIELDS[f]))
    return markdown_table(["column", "unit", "meaning"], rows)


def notes_table(chip_list: Sequence[specs.Chip]) -> str:
    """Markdown table of every note in the database for ``chip_list``: chip, value, note.

    A note says how a value was read or derived (say, "datasheet prints 1,979 TFLOP/s with
    sparsity; dense is half"). Each value links to its source; a note on the chip itself is
    listed first as 'whole chip'. Taught in: appendix "Spec tables".
    """
    rows = []
    for chip in _chips(chip_list):
        if chip.note:
            rows.append((chip.name, "whole chip", chip.note))
        ordered = [d for d in specs.DTYPES if d in chip.peak] + [f for f in specs.FIELDS if f in chip.specs]
        for f in ordered:
            spec = _get(chip, f)
            if spec.note:
                rows.append((chip.name, f"{field_label(f)}: [{format_spec(spec)}]({spec.source.url})",
                             spec.note))
    return markdown_table(["chip", "value", "note"], rows)


def device_kind_table(chip_list: Sequence[specs.Chip]) -> str:
    """Markdown table of the JAX ``device_kind`` strings each chip in ``chip_list`` matches.

    Matching ignores case and repeated spaces (:func:`accelbook.specs.chip_for_device_kind`).
    Taught in: "Introduction" (what is this machine?) and appendix "Spec tables".
    """
    rows = [(c.name, c.kind, ", ".join(f"`{k}`" for k in c.device_kinds) or "—") for c in _chips(chip_list)]
    return markdown_table(["chip", "kind", "JAX device kind"], rows)


__all__ = ["Code", "device_kind_table", "device_summary", "field_label", "field_table",
           "fields_present", "fill", "format_spec", "glue", "markdown_table", "notes_table", "preview", "render",
           "show", "source_table", "spec_table"]
