"""Regenerate every figure of the book: ``python -m accelbook.figures [--chapter NN] [--out DIR]``.

Each chapter notebook is executed on this machine (a ``python3`` kernel started in the notebook's
folder, ``ACCELBOOK_EXPLORE=live``) and every figure its page shows is written as
``<out>/<chapter>/<name>.svg`` and ``.png`` (default ``<out>``: ``figures/`` beside ``book/``).
Names come from the chapter, never from a cell number:

- a plain Matplotlib figure: the code cell that shows it carries the metadata
  ``"accelbook": {"figures": ["name-1", "name-2"]}``, one name per image the cell shows, in order.
  A cell whose images and names do not match one to one is an error naming the chapter and the
  cell's first line. An injected first cell asks the inline backend for SVG as well as PNG (the
  chapter's own ``plots.style.use_style()`` still sets the look).
- an explorable: ``explore.show(..., name=...)``; with ``ACCELBOOK_FIGURES_DIR`` set,
  :meth:`accelbook.explore.Explorable.show` writes its figure at the starting values.
- an animation player (``FuncAnimation.to_jshtml``): the cell that shows it carries
  ``"accelbook": {"animation": "name"}``; its first frame, as the player's writer draws it, is the
  figure (the page shows the player as one image, at its first frame until the reader presses play).

Outputs of cells tagged ``remove-output`` or ``remove-cell`` are not on the page and are skipped.
:func:`collect` derives the same list of figures from any executed notebook (the book build's
static one as well as this command's live one); the tests compare it with the built pages.

This module is a command, not part of what the chapters import; it needs ``nbclient`` and
``nbformat`` (installed with the book's requirements, not on Colab) and imports them when it runs.

Documented in the README ("Two commands": ``make figures``).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from accelbook import checks, explore

NAME = re.compile(r"^[a-z][a-z0-9-]*$")
CHAPTER = re.compile(r"^(\d\d)_[^/]*\.ipynb$")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
REMOVED_TAGS = ("remove-output", "remove-cell")
EXPLORE_ID = re.compile(r'<div class="accelbook-explore" id="accelbook-explore-([a-z][a-z0-9-]*)"')
PLAYER_ID = re.compile(r'<img id="_anim_img([0-9a-f]+)"')
ANIMATIONS = "animations"  # subfolder of the kernel's figures folder for the players' first frames
CELL_TIMEOUT_S = 600
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FigureError(ValueError):
    """A chapter whose figures cannot be named: what to fix, cell by cell."""


class ChapterError(RuntimeError):
    """A chapter that did not run: which cell raised what."""


@dataclass
class Figure:
    """One figure of a chapter's page."""

    kind: str                # "plot", "explorable" or "animation"
    name: str | None         # None: a live explorable, named by what it writes
    cell: int                # index of the code cell in the notebook
    first_line: str          # the cell's first source line, to point an author at it
    output: dict = field(default_factory=dict, repr=False)  # the nbformat output that shows it


# ------------------------------------------------------------------------------ finding chapters
def find_book(book: str | os.PathLike | None = None) -> pathlib.Path:
    """The book folder (the one holding ``chapters/``): ``book`` if given, else ``book/`` in the
    current directory or one above it, else beside the accelbook package (an editable install)."""
    if book is not None:
        path = pathlib.Path(book).resolve()
        if path.name == "chapters" and not (path / "chapters").is_dir():
            path = path.parent
        if not chapters(path):
            raise FileNotFoundError(f"--book {book}: no chapter notebooks (chapters/NN_*.ipynb) in {path}")
        return path
    here = pathlib.Path.cwd().resolve()
    candidates = [d / "book" for d in (here, *here.parents)] + [here]
    candidates.append(pathlib.Path(__file__).resolve().parents[2] / "book")  # src/accelbook/figures.py
    for path in candidates:
        if chapters(path):
            return path
    raise FileNotFoundError(
        f"cannot find the book's chapters (book/chapters/NN_*.ipynb) from {here} or from the "
        f"accelbook package in {pathlib.Path(__file__).resolve().parent}; run this from a checkout "
        "of the book or pass --book PATH (the folder that holds chapters/)")


def chapters(book: pathlib.Path) -> list[pathlib.Path]:
    """The chapter notebooks ``book/chapters/NN_*.ipynb``, in book order."""
    folder = pathlib.Path(book) / "chapters"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHAPTER.match(p.name))


def select(paths: list[pathlib.Path], chapter: str | None) -> list[pathlib.Path]:
    """``paths`` limited to ``--chapter`` (``"2"``, ``"02"`` or ``"02_roofline"``)."""
    if chapter is None:
        return list(paths)
    want = str(chapter).strip()
    if want.isdigit():
        want = f"{int(want):02d}"
    chosen = [p for p in paths if p.stem == want or CHAPTER.match(p.name).group(1) == want]
    if not chosen:
        raise ValueError(f"--chapter {chapter}: no such chapter; the chapters are "
                         + ", ".join(f"{CHAPTER.match(p.name).group(1)} ({p.stem})" for p in paths))
    return chosen


# ------------------------------------------------------------------- figures of an executed notebook
def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def _first_line(cell) -> str:
    lines = [line.strip() for line in _text(cell.get("source")).splitlines() if line.strip()]
    return lines[0] if lines else "(empty cell)"


def _is_image(data: dict) -> bool:
    return any(key.startswith("image/") for key in data)


def collect(nb, chapter: str = "notebook") -> list[Figure]:
    """Every figure that the executed notebook ``nb`` shows on its page, in page order.

    Works on a notebook executed live (this command: an explorable shows a widget and then its
    picture, named later by the file it writes) or static (the book build: an explorable is HTML
    that carries its name). Raises :class:`FigureError` listing every cell whose images and
    metadata names disagree, and every name that is malformed or used twice."""
    if not (hasattr(nb, "get") and hasattr(nb, "__getitem__")) or isinstance(nb, str):
        raise TypeError(f"nb={checks.show(nb)} must be a notebook (a dict or nbformat node with 'cells')")
    checks.text("chapter", chapter)
    figures, problems = [], []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = (cell.get("metadata") or {}).get("accelbook") or {}
        tags = (cell.get("metadata") or {}).get("tags") or []
        where = f"the cell that starts {_first_line(cell)!r}"
        if any(t in tags for t in REMOVED_TAGS):
            continue  # its outputs are not on the page
        pictures, players, found = [], [], []
        after_widget = False
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = out.get("data") or {}
            if WIDGET_MIME in data:  # a live explorable: its controls, then its picture
                after_widget = True
                continue
            if _is_image(data):
                if after_widget:
                    found.append(Figure("explorable", None, index, _first_line(cell), out))
                else:
                    pictures.append(out)
                after_widget = False
                continue
            html = _text(data.get("text/html"))
            for name in EXPLORE_ID.findall(html):
                found.append(Figure("explorable", name, index, _first_line(cell), out))
            if PLAYER_ID.search(html):
                players.append(out)
                found.append(Figure("animation", None, index, _first_line(cell), out))
            after_widget = False

        names = meta.get("figures", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"{where}: metadata accelbook.figures must be a list of names, got {names!r}")
            names = []
        if len(names) != len(pictures):
            if not names:
                example = ", ".join(f'"name-{i + 1}"' for i in range(len(pictures)))
                problems.append(f"{where} shows {len(pictures)} figure(s) and names none: add "
                                f'"accelbook": {{"figures": [{example}]}} to its metadata, one name '
                                "per figure in output order")
            else:
                problems.append(f"{where} shows {len(pictures)} figure(s) but its metadata "
                                f"accelbook.figures names {len(names)}: {names}")
        else:
            figures += [Figure("plot", n, index, _first_line(cell), o) for n, o in zip(names, pictures)]

        animation = meta.get("animation")
        if animation is not None and not isinstance(animation, str):
            problems.append(f"{where}: metadata accelbook.animation must be a name, got {animation!r}")
            animation = None
        if len(players) > 1:
            problems.append(f"{where} shows {len(players)} animation players; show one per cell")
        elif players and animation is None:
            problems.append(f'{where} shows an animation player and names none: add '
                            '"accelbook": {"animation": "a-name"} to its metadata')
        elif animation is not None and not players:
            problems.append(f"{where}: its metadata names the animation {animation!r} but the cell "
                            "shows no animation player")
        for fig in found:
            if fig.kind == "animation":
                fig.name = animation
        figures += found

    seen = {}
    for fig in figures:
        if fig.name is None:
            continue
        if not NAME.match(fig.name):
            problems.append(f"the cell that starts {fig.first_line!r}: figure name {fig.name!r} must be "
                            "lower-case letters, digits and hyphens, starting with a letter")
        elif fig.name in seen:
            problems.append(f"the figure name {fig.name!r} is used twice (cells that start "
                            f"{seen[fig.name]!r} and {fig.first_line!r})")
        seen.setdefault(fig.name, fig.first_line)
    if problems:
        raise FigureError(_problems(chapter, problems))
    return figures


def _problems(chapter: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{chapter}: {problems[0]}"
    return f"{chapter}: {len(problems)} problems:\n  - " + "\n  - ".join(problems)


# --------------------------------------------------------------------------------- the kernel side
def kernel_setup() -> None:
    """Run in the chapter's kernel before its first cell: the inline backend shows every figure as
    PNG and SVG, SVGs are reproducible, and an animation player's first frame is saved as
    ``<ACCELBOOK_FIGURES_DIR>/animations/<player id>.svg`` and ``.png`` (the player's own writer
    draws it; the ids tie the files to the cell that shows the player)."""
    import matplotlib
    import matplotlib.animation as animation
    from matplotlib.figure import Figure as MplFigure
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    from matplotlib_inline.config import InlineBackend

    InlineBackend.instance().figure_formats = {"png", "svg"}  # kept if a cell sets up the backend again
    set_matplotlib_formats("png", "svg")
    matplotlib.rcParams["svg.hashsalt"] = "accelbook"  # stable ids inside the SVGs
    folder = pathlib.Path(os.environ[explore.FIGURES_ENV]) / ANIMATIONS
    original = animation.Animation.to_jshtml
    if getattr(original, "_accelbook_figures", False):
        return

    def to_jshtml(self, *args, **kwargs):
        fig, first = self._fig, {}

        def savefig(fname, *a, **kw):
            if not first:
                for ext in ("svg", "png"):
                    buffer = io.BytesIO()
                    MplFigure.savefig(fig, buffer, *a, **{**kw, "format": ext})
                    first[ext] = buffer.getvalue()
            return MplFigure.savefig(fig, fname, *a, **kw)

        fig.savefig = savefig
        try:
            html = original(self, *args, **kwargs)
        finally:
            del fig.savefig
        match = PLAYER_ID.search(html)
        if first and match:
            folder.mkdir(parents=True, exist_ok=True)
            for ext, data in first.items():
                (folder / f"{match.group(1)}.{ext}").write_bytes(data)
        return html

    to_jshtml._accelbook_figures = True
    animation.Animation.to_jshtml = to_jshtml


SETUP_CELL = "from accelbook.figures import kernel_setup as _k\n_k()\ndel _k"


def _svgs(folder: pathlib.Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in folder.glob("*.svg")}


def execute(path: pathlib.Path, scratch: pathlib.Path, *, timeout: int = CELL_TIMEOUT_S):
    """Execute the chapter ``path`` live with its explorables writing into ``scratch``. Returns the
    executed notebook and, per cell index, the explorable names written while that cell ran."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CELL))
    env = dict(os.environ)  # JAX_PLATFORMS and the rest as the caller set them
    env[explore.MODE_ENV] = "live"
    env[explore.FIGURES_ENV] = str(scratch)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend shows the figures
    env.setdefault("SOURCE_DATE_EPOCH", "0")  # no build date inside the SVGs
    written, before = {}, {}

    def after_cell(cell, cell_index, **_):
        nonlocal before
        now = _svgs(scratch)
        new = sorted((t, n) for n, t in now.items() if before.get(n) != t)
        if new:
            written[cell_index - 1] = [n for _, n in new]
        before = now

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            # the kernel's own log (ipykernel 7 warns about its local TCP
                            # connection); what a cell prints or warns goes to its outputs
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            on_cell_executed=after_cell)
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        cell = next((c for c in nb.cells[1:] for o in c.get("outputs", [])
                     if o.get("output_type") == "error"), None)
        where = f"the cell that starts {_first_line(cell)!r}" if cell is not None else "a cell"
        raise ChapterError(f"{path.stem}: {where} raised {err.ename}: {ANSI.sub('', err.evalue)}") from None
    nb.cells.pop(0)
    return nb, written


def run_chapter(path: pathlib.Path, out: pathlib.Path, *, timeout: int = CELL_TIMEOUT_S) -> list[pathlib.Path]:
    """Execute one chapter and write its figures to ``out/<chapter>/`` (replaced only when every
    figure was written). Returns the files written."""
    chapter = path.stem
    target = out / chapter
    with tempfile.TemporaryDirectory(prefix=f"accelbook-figures-{chapter}-") as tmp:
        scratch, staged = pathlib.Path(tmp) / "kernel", pathlib.Path(tmp) / chapter
        scratch.mkdir()
        staged.mkdir()
        nb, written = execute(path, scratch, timeout=timeout)
        found = collect(nb, chapter)
        problems = []
        removed = {i for i, c in enumerate(nb.cells)
                   if any(t in (c.get("metadata", {}).get("tags") or []) for t in REMOVED_TAGS)}
        for index in sorted(({f.cell for f in found if f.kind == "explorable"} | set(written)) - removed):
            live = [f for f in found if f.kind == "explorable" and f.cell == index]
            names = written.get(index, [])
            if len(live) != len(names):
                first = live[0].first_line if live else _first_line(nb.cells[index])
                problems.append(f"the cell that starts {first!r} shows {len(live)} explorable(s) but "
                                f"wrote {len(names)} figure(s) to {explore.FIGURES_ENV} ({names})")
                continue
            for fig, name in zip(live, names):
                fig.name = name
        names = [f.name for f in found]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            problems.append(f"figure names used more than once: {twice}")
        if problems:
            raise FigureError(_problems(chapter, problems))
        files = []
        for fig in found:
            files += _write(fig, scratch, staged, chapter)
        if target.exists():
            shutil.rmtree(target)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(target))
    return [target / p.name for p in files]


def _write(fig: Figure, scratch: pathlib.Path, staged: pathlib.Path, chapter: str) -> list[pathlib.Path]:
    where = f"{chapter}: the cell that starts {fig.first_line!r}"
    paths = [staged / f"{fig.name}.svg", staged / f"{fig.name}.png"]
    if fig.kind == "plot":
        data = fig.output.get("data", {})
        if "image/svg+xml" not in data or "image/png" not in data:
            raise FigureError(f"{where}: figure {fig.name!r} was shown as {sorted(k for k in data if k.startswith('image/'))} "
                              "only; show Matplotlib figures (the inline backend gives PNG and SVG) "
                              "and do not change the inline backend's formats")
        paths[0].write_text(_text(data["image/svg+xml"]), encoding="utf-8")
        paths[1].write_bytes(base64.b64decode(_text(data["image/png"])))
        return paths
    if fig.kind == "explorable":
        sources = [scratch / f"{fig.name}.svg", scratch / f"{fig.name}.png"]
    else:
        player = PLAYER_ID.search(_text(fig.output.get("data", {}).get("text/html"))).group(1)
        sources = [scratch / ANIMATIONS / f"{player}.svg", scratch / ANIMATIONS / f"{player}.png"]
    for src, dst in zip(sources, paths):
        if not src.is_file():
            raise FigureError(f"{where}: the {fig.kind} {fig.name!r} wrote no {src.suffix} file")
        shutil.copyfile(src, dst)
    return paths


# ------------------------------------------------------------------------------------- the command
CEILINGS_ENV, PINNING_ENV = "ACCELBOOK_CEILINGS", "ACCELBOOK_CPU_PINNING"  # as measure.device_ceilings


def ceilings_once(out: pathlib.Path) -> set[int] | None:
    """Measure this machine's ceilings once for the whole run, as the book's build does: pin this
    process (and so every chapter's kernel) to one CPU core, measure in a subprocess, and point
    ``ACCELBOOK_CEILINGS`` at the file, so every chapter's figures use the same numbers as each
    other and as the built pages. Skipped when the caller already set ``ACCELBOOK_CEILINGS``; a
    failed measurement leaves each chapter to measure for itself. Returns the CPU affinity to
    restore when the run ends (None if it was not changed)."""
    if os.environ.get(CEILINGS_ENV):
        return None
    saved = None
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        saved = set(os.sched_getaffinity(0))
        os.sched_setaffinity(0, sorted(saved)[:1])
    os.environ[PINNING_ENV] = "one core"
    path = out.resolve() / ".ceilings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    code = "import sys; from accelbook.measure.device_ceilings import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "--write", str(path)], capture_output=True, text=True)
    if proc.returncode == 0 and path.exists():
        os.environ[CEILINGS_ENV] = str(path)
        print(f"ceilings measured once for this run: {path}", flush=True)
    else:
        print("the ceilings measurement failed; each chapter measures its own", file=sys.stderr, flush=True)
    return saved


def _run_all(todo: list[pathlib.Path], out: pathlib.Path, timeout: int) -> tuple[int, list[str]]:
    total, failed = 0, []
    for path in todo:
        t0 = time.perf_counter()
        try:
            files = run_chapter(path, out, timeout=timeout)
        except Exception as err:  # a chapter that fails does not stop the others
            failed.append(path.stem)
            message = str(err) if isinstance(err, (FigureError, ChapterError)) else \
                f"{path.stem}: {type(err).__name__}: {err}"
            print(f"FAILED after {time.perf_counter() - t0:.1f} s: {message.strip()}", file=sys.stderr, flush=True)
            continue
        total += len(files) // 2
        print(f"{path.stem}: {len(files) // 2} figures in {time.perf_counter() - t0:.1f} s", flush=True)
    return total, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m accelbook.figures",
        description="Execute every chapter on this machine and write each figure of the book as "
                    "SVG and PNG: <out>/<chapter>/<name>.svg and .png.")
    parser.add_argument("--chapter", metavar="NN", help="only this chapter (its number, e.g. 02)")
    parser.add_argument("--out", metavar="DIR", help="where to write (default: figures/ beside book/)")
    parser.add_argument("--book", metavar="PATH", help="the book folder, which holds chapters/ "
                        "(default: found from the current directory or the accelbook package)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, metavar="S",
                        help=f"seconds one cell may run (default {CELL_TIMEOUT_S})")
    args = parser.parse_args(argv)
    try:
        book = find_book(args.book)
        todo = select(chapters(book), args.chapter)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    out = pathlib.Path(args.out) if args.out else book.parent / "figures"
    start = time.perf_counter()
    env = {k: os.environ.get(k) for k in (CEILINGS_ENV, PINNING_ENV)}
    saved = ceilings_once(out)
    try:
        total, failed = _run_all(todo, out, args.timeout)
    finally:  # leave the calling process as it was
        if saved is not None:
            os.sched_setaffinity(0, saved)
        for k, v in env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    ok = len(todo) - len(failed)
    line = (f"{total} figures from {ok} of {len(todo)} chapter(s) in {time.perf_counter() - start:.1f} s, "
            f"as SVG and PNG under {out}")
    if failed:
        line += f"; failed: {', '.join(failed)}"
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
