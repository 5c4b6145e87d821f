"""`python -m accelbook.figures`: every figure of every chapter as SVG and PNG, named by the chapter.

Synthetic chapters (a few cells each, executed in a real kernel in a few seconds) check the names,
the files and the errors; hand-made executed notebooks check :func:`figures.collect` without a
kernel; the book's own build checks that the command finds exactly the figures each page shows.
"""

from __future__ import annotations

import base64
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import bs4
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from accelbook import figures

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = figures.chapters(ROOT / "book")

IMPORTS = "import matplotlib.pyplot as plt\nfrom matplotlib.figure import Figure\nfrom accelbook import explore"
TWO_PLOTS = ("fig, ax = plt.subplots(figsize=(2, 1.5))\nax.plot([0, 1], [1, 0])\nplt.show()\n"
             "fig, ax = plt.subplots(figsize=(2, 1.5))\nax.bar([0, 1], [1, 2])\nplt.show()")
EXPLORABLE = '''class LineView(explore.View):
    def __init__(self):
        self.figure = Figure(figsize=(2.0, 1.5), layout="constrained")
        ax = self.figure.add_subplot()
        ax.set(ylim=(0, 40))
        (self.line,) = ax.plot([0, 1], [0, 0], color="tab:red")
        self.dynamic = [self.line]

    def update(self, a):
        self.line.set_ydata([0, a])
        self.figure.suptitle(f"a = {a}")
        return f"a = {a}"

explore.show(LineView, explore.slider("a", [1, 2, 4], value=2), name="slope")'''
ANIMATION = '''import matplotlib.animation
from IPython.display import HTML
afig = Figure(figsize=(2, 1.5))
aax = afig.add_subplot()
anim = matplotlib.animation.FuncAnimation(afig, lambda t: aax.set_title(f"frame {t}"), frames=range(3))
HTML(anim.to_jshtml())'''


def _chapter(folder: pathlib.Path, name: str, cells) -> pathlib.Path:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    path = folder / "book" / "chapters" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _figures_command(*args, cwd, measure=False):
    """Run the command. Unless ``measure``, skip its once-per-run ceilings measurement (the small
    books here measure nothing) by naming a ceilings file, as a caller that measured already would."""
    env = dict(os.environ)
    if not measure:
        env["ACCELBOOK_CEILINGS"] = str(pathlib.Path(cwd) / "ceilings-not-measured.json")
    return subprocess.run([sys.executable, "-m", "accelbook.figures", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small book: 01 has two named plots, a hidden plot, an explorable and an animation; 02
    shows a figure without a name; 03 raises. The command runs from the book's root folder."""
    root = tmp_path_factory.mktemp("figbook")
    _chapter(root, "01_demo", [
        new_markdown_cell("# Demo"),
        new_code_cell(IMPORTS),
        new_code_cell(TWO_PLOTS, metadata={"accelbook": {"figures": ["line", "bars"]}}),
        new_code_cell("plt.plot([0, 1])\nplt.show()", metadata={"tags": ["remove-output"]}),
        new_code_cell(EXPLORABLE),
        new_code_cell(ANIMATION, metadata={"accelbook": {"animation": "grow"}}),
    ])
    _chapter(root, "02_unnamed", [
        new_code_cell(IMPORTS),
        new_code_cell("# the plot\nplt.plot([0, 1])\nplt.show()"),
    ])
    _chapter(root, "03_raises", [new_code_cell("1 / 0")])
    return root, _figures_command(cwd=root)


# ------------------------------------------------------------------------ the command, end to end
def test_every_figure_is_written_as_svg_and_png_under_its_chapter_and_name(synthetic):
    root, proc = synthetic
    out = root / "figures" / "01_demo"  # the default --out: figures/ beside book/
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{name}.{ext}" for name in ("line", "bars", "slope", "grow") for ext in ("svg", "png")), proc.stderr
    for svg in out.glob("*.svg"):
        assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg", svg.name
    for png in out.glob("*.png"):
        with Image.open(png) as img:
            assert img.format == "PNG" and min(img.size) > 20, png.name
            img.verify()
    assert "01_demo: 4 figures in" in proc.stdout


def test_the_animation_is_its_first_frame_and_the_explorable_its_starting_values(synthetic):
    root, _ = synthetic
    out = root / "figures" / "01_demo"
    # Matplotlib's SVG keeps each text as a comment beside its glyphs
    grow, slope = (out.joinpath(f"{n}.svg").read_text() for n in ("grow", "slope"))
    assert "<!-- frame 0 -->" in grow and "frame 1" not in grow and "frame 2" not in grow
    assert "<!-- a = 2 -->" in slope


def test_a_chapter_that_fails_is_reported_and_the_others_still_run(synthetic):
    root, proc = synthetic
    assert proc.returncode == 1
    err = proc.stderr
    assert "02_unnamed: the cell that starts '# the plot' shows 1 figure(s) and names none" in err
    assert '"accelbook": {"figures": ["name-1"]}' in err
    assert "03_raises: the cell that starts '1 / 0' raised ZeroDivisionError" in err
    assert not (root / "figures" / "02_unnamed").exists()
    assert proc.stdout.strip().splitlines()[-1].startswith("4 figures from 1 of 3 chapter(s) in ")
    assert proc.stdout.strip().endswith("failed: 02_unnamed, 03_raises")


def test_chapter_option_runs_one_chapter_and_rejects_an_unknown_one(synthetic, tmp_path, capsys):
    root, _ = synthetic
    book = root / "book"
    assert figures.select(figures.chapters(book), "2") == [book / "chapters" / "02_unnamed.ipynb"]
    assert figures.select(figures.chapters(book), "03_raises") == [book / "chapters" / "03_raises.ipynb"]
    with pytest.raises(SystemExit) as exit_:
        figures.main(["--book", str(book), "--chapter", "7", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--chapter 7: no such chapter; the chapters are 01 (01_demo), 02 (02_unnamed), 03 (03_raises)" in err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_book_is_an_error_that_names_the_book_option(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(figures, "__file__", str(tmp_path / "site-packages" / "accelbook" / "figures.py"))
    with pytest.raises(SystemExit):
        figures.main([])
    assert "pass --book PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        figures.main(["--book", str(tmp_path)])
    assert f"--book {tmp_path}: no chapter notebooks" in capsys.readouterr().err


def test_the_book_is_found_from_a_subfolder_or_from_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "src")
    assert figures.find_book() == ROOT / "book"
    monkeypatch.chdir(tmp_path)  # outside any checkout: the package's own checkout (pip install -e .)
    assert figures.find_book() == ROOT / "book"


# ------------------------------------------------------------------ collect(), on executed notebooks
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def _image(svg: bool = True):
    data = {"image/png": PNG, "text/plain": "<Figure size 200x150 with 1 Axes>"}
    if svg:
        data["image/svg+xml"] = "<svg/>"
    return new_output("display_data", data=data)


def _cell(source, outputs, **meta):
    cell = new_code_cell(source, metadata=meta)
    cell.outputs = outputs
    return cell


def _collect(*cells):
    return figures.collect(new_notebook(cells=list(cells)), "99_test")


def test_collect_names_plots_from_metadata_and_explorables_from_their_output():
    widget = new_output("display_data", data={figures.WIDGET_MIME: {"model_id": "x"}, "text/plain": "HBox()"})
    static = new_output("display_data", data={"text/html": '<div class="accelbook-explore" '
                                              'id="accelbook-explore-chip-map" data-frame="0"><img></div>'})
    got = _collect(_cell("plots", [_image(), new_output("stream", name="stdout", text="hi"), _image()], accelbook={"figures": ["a", "b"]}),
                   _cell("live", [widget, _image(svg=False), new_output("display_data", data={"text/markdown": "x"})]),
                   _cell("static", [static]),
                   _cell("hidden", [_image()], tags=["remove-output"]),
                   _cell("no figure", [new_output("stream", name="stdout", text="x")]))
    assert [(f.kind, f.name, f.cell) for f in got] == [("plot", "a", 0), ("plot", "b", 0),
                                                       ("explorable", None, 1), ("explorable", "chip-map", 2)]


def test_collect_names_an_animation_player_from_metadata():
    player = new_output("execute_result", data={"text/html": '<div class="animation">\n  <img id="_anim_img0a1b">'},
                        execution_count=1)
    got = _collect(_cell("HTML(anim.to_jshtml())", [player], accelbook={"animation": "pipeline"}))
    assert [(f.kind, f.name) for f in got] == [("animation", "pipeline")]
    with pytest.raises(figures.FigureError, match="shows an animation player and names none"):
        _collect(_cell("HTML(anim.to_jshtml())", [player]))
    with pytest.raises(figures.FigureError, match="names the animation 'pipeline' but the cell shows no"):
        _collect(_cell("x = 1", [], accelbook={"animation": "pipeline"}))


@pytest.mark.parametrize("cells, message", [
    ([_cell("\n  fig, ax = plt.subplots()\nplt.show()", [_image()])],
     "99_test: the cell that starts 'fig, ax = plt.subplots()' shows 1 figure(s) and names none"),
    ([_cell("draw()", [_image(), _image()], accelbook={"figures": ["one"]})],
     "99_test: the cell that starts 'draw()' shows 2 figure(s) but its metadata accelbook.figures names 1: ['one']"),
    ([_cell("x = 1", [], accelbook={"figures": ["ghost"]})], "shows 0 figure(s) but its metadata"),
    ([_cell("draw()", [_image()], accelbook={"figures": "one"})], "must be a list of names"),
    ([_cell("draw()", [_image()], accelbook={"figures": ["Bad_Name"]})], "figure name 'Bad_Name' must be"),
    ([_cell("a()", [_image()], accelbook={"figures": ["same"]}), _cell("b()", [_image()], accelbook={"figures": ["same"]})],
     "the figure name 'same' is used twice (cells that start 'a()' and 'b()')"),
])
def test_collect_rejects_figures_and_names_that_do_not_match(cells, message):
    with pytest.raises(figures.FigureError) as err:
        _collect(*cells)
    assert message in str(err.value)


def test_collect_lists_every_problem_of_a_chapter_at_once():
    with pytest.raises(figures.FigureError) as err:
        _collect(_cell("a()", [_image()]), _cell("b()", [_image()]))
    assert str(err.value).startswith("99_test: 2 problems:") and "'a()'" in str(err.value) and "'b()'" in str(err.value)


def test_the_chapters_never_import_the_figures_command():
    uses = re.compile(r"\baccelbook\.figures\b|from\s+accelbook\s+import\s[^\n]*\bfigures\b")
    for path in CHAPTERS:
        for cell in nbformat.read(path, as_version=4).cells:
            assert cell.cell_type != "code" or not uses.search(cell.source), f"{path.name}: {cell.source[:80]}"


# ------------------------------------------------------------------------- the book's real chapters
def page_figures(page: pathlib.Path) -> int:
    """Figures on a built chapter page: every image inside a cell's output (a plain figure is one
    <img>, an explorable one <img class="accelbook-explore-figure">, an animation player one <img>)."""
    soup = bs4.BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    return len(soup.select(".cell_output img"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_collect_finds_every_figure_that_the_built_page_shows(built_book, chapter):
    """Page side: the images in the cell outputs of the built HTML page. Command side:
    ``figures.collect`` (what the command names and writes) applied to the notebook that the same
    build executed, ``<html>/../jupyter_execute/chapters/<chapter>.ipynb``: plain-figure names from
    the cells' metadata, explorables from their output, the animation player from its metadata."""
    _, html_dir = built_book
    executed = html_dir.parent / "jupyter_execute" / "chapters" / f"{chapter.stem}.ipynb"
    page = html_dir / "chapters" / f"{chapter.stem}.html"
    assert executed.is_file() and page.is_file(), "the build wrote no executed notebook or no page"
    found = figures.collect(nbformat.read(executed, as_version=4), chapter.stem)
    assert len(found) == page_figures(page), [f"{f.kind} {f.name}" for f in found]


def test_the_command_writes_as_many_figures_as_chapter_01s_page_shows(built_book, tmp_path):
    """Page side: the images in the cell outputs of the built page of chapter 01. Command side:
    the files that `python -m accelbook.figures --chapter 01` writes, run end to end from the
    repository (a fresh live execution of the chapter)."""
    _, html_dir = built_book
    proc = _figures_command("--chapter", "01", "--out", str(tmp_path), cwd=ROOT, measure=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the ceilings are measured once for the run, as the book's build does
    assert "ceilings measured once for this run" in proc.stdout and (tmp_path / ".ceilings.json").is_file()
    written = sorted((tmp_path / CHAPTERS[0].stem).iterdir())
    svgs, pngs = [p.stem for p in written if p.suffix == ".svg"], [p.stem for p in written if p.suffix == ".png"]
    assert svgs == pngs and len(written) == 2 * len(svgs)
    assert len(svgs) == page_figures(html_dir / "chapters" / f"{CHAPTERS[0].stem}.html")
