"""Accessibility of the built book.

- Every figure of every page in the table of contents has alternative text that says what it shows
  (read from the built HTML): not empty, not a file name, at least :data:`MIN_WORDS` words, and not
  the fall-back that ``plots.style.describe`` gives a figure with no words on it.
- axe-core (vendored from the npm registry, book/_ext/vendor.json) runs on every built page in the
  light and the dark theme, with the WCAG 2.x A and AA rules and axe's best practices; any
  violation of impact "serious" or "critical" fails, listed with its page, theme, rule and nodes.
  The counts per page and impact land in book/_build/screenshots/axe.json.
- Every control of every explorable has an accessible name and works from the keyboard alone:
  Tab reaches it, the arrow keys or the space bar change it, and the figure and its alternative
  text follow.

Each page is opened once per theme, in one browser, by the ``tour`` fixture (tests/conftest.py,
tests/browsing.py) that the site's tests share; the tests here read what it recorded.
"""

from __future__ import annotations

import html.parser
import json
import pathlib
import re
import sys

import pytest

from browsing import AXE_TAGS, SHOTS, toc_pages

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

MIN_WORDS = 6  # fewer words cannot say what is plotted against what
FAILING = ("serious", "critical")
IMPACTS = ("minor", "moderate", "serious", "critical")
FILE_NAME = re.compile(r"(^|[/\\])[\w.-]+\.(png|jpe?g|gif|svg|webp)$|^\.\./|/_images/", re.I)


# -------------------------------------------------------------------------------------------------
# The pages
# -------------------------------------------------------------------------------------------------
class _Images(html.parser.HTMLParser):
    """The <img> tags inside the page's <article> (the chapter's text, figures and explorables)."""

    def __init__(self):
        super().__init__()
        self.depth, self.images = 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self.depth += 1
        elif tag == "img" and self.depth:
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "article" and self.depth:
            self.depth -= 1


def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` does not say what a figure shows, or None when it may."""
    from accelbook.plots.style import UNDESCRIBED

    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt"
    if FILE_NAME.search(text):
        return f"alt is a file name: {text[:60]!r}"
    if UNDESCRIBED in text:
        return f"the figure has no words to describe it from: {text!r}"
    if len(text.split()) < MIN_WORDS:
        return f"alt too short to say what the figure shows ({len(text.split())} words): {text!r}"
    return None


# -------------------------------------------------------------------------------------------------
# Without a browser: the rule, the descriptions and the build's hook
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alt, bad", [
    (None, True), ("", True), ("../_images/6a4a.png", True), ("roofline.png", True),
    ("Roofline of an H100", True), ("Figure without titles, axis labels or legend.", True),
    ("Figure: attainable FLOP/s against arithmetic intensity, log scales", False),
])
def test_the_alt_text_rule(alt, bad):
    assert (alt_problem(alt) is not None) is bad


def test_describe_says_what_is_plotted_against_what_and_what_the_colours_mean():
    from matplotlib.figure import Figure

    from accelbook.plots import style

    fig = Figure()
    ax, bx = fig.subplots(1, 2)
    fig.suptitle("Two made-up panels")
    ax.plot([1, 10], [1, 100], color=style.PALETTE["vermillion"], ls="--", label="chip A")
    ax.plot([1, 10], [2, 20], color=style.PALETTE["blue"], label="chip $B$")
    ax.set(xscale="log", yscale="log", xlabel="intensity (FLOP/byte)", ylabel="throughput (FLOP/s)", title="Model")
    ax.legend()
    bx.barh(["x", "y", "z"], [1, 2, 3])
    bx.set(xlabel="time (s)", title="Bars")
    text = style.describe(fig)
    assert text.startswith("Figure: Two made-up panels.")
    assert "Panel 1 of 2: Model. Plots throughput (FLOP/s), log scale against intensity (FLOP/byte), log scale." in text
    assert "Key: chip A (vermillion, dashed) and chip B (blue)." in text
    assert "Panel 2 of 2: Bars." in text and "One row per category: x, y and z." in text and "Axis: time (s)." in text
    assert style.describe(Figure()) == style.UNDESCRIBED
    diagram = Figure()
    d = diagram.add_subplot()
    d.axis("off")
    d.text(0.1, 0.5, "HBM")
    d.text(0.6, 0.5, "SM")
    assert style.describe(diagram) == "Figure: Labels on it: HBM and SM."
    with pytest.raises(TypeError, match="fig"):
        style.describe("not a figure")


def test_describe_reads_categories_set_as_tick_labels_but_not_formatted_numbers():
    from matplotlib.figure import Figure

    from accelbook.plots import style

    fig = Figure()
    ax = fig.add_subplot()
    ax.barh([2, 1, 0], [3.0, 2.0, 1.0])
    ax.set_yticks([2, 1, 0], ["H100", "A100", "L4"])  # labels on fixed ticks (a FuncFormatter since Matplotlib 3.5)
    ax.set_xlabel("tokens/s")
    assert "One row per category: H100, A100 and L4." in style.describe(fig)
    numbers = Figure()
    bx = numbers.add_subplot()
    bx.plot([1, 2], [1e9, 2e9])
    bx.set_yticks([1e9, 2e9])
    bx.yaxis.set_major_formatter(style.si_formatter("B/s"))  # a FuncFormatter of numbers: not categories
    bx.set(xlabel="n", ylabel="bandwidth")
    assert "category" not in style.describe(numbers)


def test_a_kernels_figures_carry_their_description_as_plain_text():
    """In IPython, use_style makes describe() a figure's text/plain form (what the build turns into alt)."""
    IPython = pytest.importorskip("IPython")
    from IPython.testing.globalipapp import get_ipython
    from matplotlib.figure import Figure

    from accelbook.plots import style

    shell = get_ipython()
    assert IPython.get_ipython() is shell
    style.use_style()
    fig = Figure()
    fig.add_subplot().set(xlabel="size (B)", ylabel="time (s)")
    data, _ = shell.display_formatter.format(fig)
    assert data["text/plain"] == "Figure: Plots time (s) against size (B)."


def test_the_build_turns_a_figures_plain_text_into_its_alt():
    from docutils import nodes
    from docutils.utils import new_document

    import accelbook_site

    def bundle(text, alt=None):
        image = nodes.image(uri="x.png", **({"alt": alt} if alt else {}))
        b = nodes.container(nb_element="mime_bundle")
        b += nodes.container("", image, mime_type="image/png")
        b += nodes.container("", nodes.literal_block(text, text), mime_type="text/plain")
        return b, image

    doc = new_document("page")
    described, a = bundle("Figure: Plots time (s) against size (B).")
    plain, b = bundle("<Figure size 700x460 with 1 Axes>")
    chosen, c = bundle("Figure: something", alt="the cell's own alt text")
    doc += [described, plain, chosen]
    accelbook_site.FigureAltText(doc).run()
    assert a["alt"] == "Figure: Plots time (s) against size (B)."
    assert "alt" not in b  # a repr is no description: the page keeps Sphinx's default and the test above fails it
    assert c["alt"] == "the cell's own alt text"


def test_every_figure_has_alternative_text_that_says_what_it_shows(built_book):
    proc, html_dir = built_book
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    failures, seen = [], 0
    for path in toc_pages():
        parser = _Images()
        parser.feed((html_dir / path).read_text())
        for img in parser.images:
            seen += 1
            why = alt_problem(img.get("alt"))
            if why:
                failures.append(f"{path}: <img src={img.get('src', '')[:50]!r}>: {why}")
    assert seen >= 10, f"only {seen} images found in the pages' articles"
    assert failures == [], "\n".join(failures)


# -------------------------------------------------------------------------------------------------
# In the browser: axe-core on every page in both themes, and the explorables from the keyboard
# -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audit(tour):
    """axe's violations from the tour, {theme: {page: [violation]}}, and the explorables' keyboard
    problems, {page#id: [problem]}; the counts per page land in book/_build/screenshots/axe.json."""
    out = {"axe": {theme: {page: rec["axe"] for page, rec in pages.items()} for theme, pages in tour.items()},
           "keyboard": {f"{page}#{root_id}": problems for page, rec in tour["light"].items()
                        for root_id, problems in rec["keyboard"].items()}}
    SHOTS.mkdir(parents=True, exist_ok=True)
    counts = {theme: {page: {imp: sum(1 for x in found if x["impact"] == imp) for imp in IMPACTS}
                      | {"rules": sorted({f"{x['id']} ({x['impact']})" for x in found})}
                      for page, found in pages.items()} for theme, pages in out["axe"].items()}
    (SHOTS / "axe.json").write_text(json.dumps({"tags": AXE_TAGS, "counts": counts, "violations": out["axe"]},
                                               indent=2))
    return out


def test_axe_finds_no_serious_or_critical_violation_on_any_page(audit):
    failures = [f"{page} ({theme}): {x['id']} [{x['impact']}] {x['help']}: {x['targets'][:6]}"
                for theme, pages in audit["axe"].items() for page, found in pages.items()
                for x in found if x["impact"] in FAILING]
    assert len(audit["axe"]["light"]) >= 10
    assert failures == [], "\n".join(failures)


def test_every_explorable_control_is_named_and_works_from_the_keyboard(audit):
    assert len(audit["keyboard"]) >= 3, audit["keyboard"]
    failures = [f"{where}: {p}" for where, problems in audit["keyboard"].items() for p in problems]
    assert failures == [], "\n".join(failures)
