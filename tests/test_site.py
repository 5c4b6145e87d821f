"""Every page of the built book, opened in a real browser (Debian's chromium through Playwright).

The site is served from a local HTTP server and every request that leaves it is blocked and
recorded, as for a reader with the network switched off. For every page: no request leaves the
book, no JavaScript error beyond the allow-list, math typeset (no raw TeX), every figure loaded
with a non-zero size, every explorable's controls change its figure, the page weighs under 2 MB
of its own (shared JavaScript and CSS apart); with ACCELBOOK_SCREENSHOTS=1 a screenshot of each
lands in book/_build/screenshots/ for review. Also: each chapter's Colab button opens that
chapter's .ipynb in the repository, and search finds a chapter by a word of its text.

Each page is opened once per theme by the ``tour`` fixture (tests/conftest.py, tests/browsing.py),
which the accessibility tests share; the tests here read what it recorded.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
import yaml

import browsing
from browsing import ROOT, SHOTS, allowed

PAGE_BUDGET = 2_000_000  # bytes of a page's own: its HTML and the images only it uses
RAW_TEX = re.compile(r"\\(frac|sum|max|min|cdot|times|le|ge|text|mathrm|begin)\b|\$\$")


def test_every_page_works_offline(site, tour):
    html_dir, base = site
    report, failures = {}, []
    for path, rec in tour["light"].items():
        found = rec["facts"]
        errors = [e for e in rec["errors"] if not allowed(e)]
        raw = sorted(set(m.group(0) for m in RAW_TEX.finditer(found["text"])))
        own_images = {urllib.parse.urljoin(f"{base}/{path}", s) for s in found["own"]}
        weight = (html_dir / path).stat().st_size + sum(
            (html_dir / urllib.parse.urlparse(u).path.lstrip("/")).stat().st_size
            for u in own_images if "/_images/" in u)
        report[path] = {"bytes": weight, "figures": found["figures"], "math": found["math"]}
        problems = {"requests outside the book": rec["outside"], "JavaScript errors": errors,
                    "raw TeX": raw, "images not loaded": found["broken"], "images of zero size": found["zero"]}
        if found["math"] and not found["typeset"]:
            problems["math not typeset"] = [f"{found['math']} math elements, 0 typeset"]
        if weight > PAGE_BUDGET:
            problems["page weight"] = [f"{weight / 1e6:.2f} MB > {PAGE_BUDGET / 1e6:.0f} MB"]
        failures += [f"{path}: {k}: {val[:5]}" for k, val in problems.items() if val]
    for path, rec in tour["dark"].items():
        failures += [f"{path} (dark): {k}: {val[:5]}" for k, val in
                     {"requests outside the book": rec["outside"],
                      "JavaScript errors": [e for e in rec["errors"] if not allowed(e)]}.items() if val]
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "pages.json").write_text(json.dumps(report, indent=2))
    assert len(report) >= 9
    assert failures == [], "\n".join(failures)
    chapters = [p for p in report if p.startswith("chapters/")]
    assert len(chapters) >= 11, chapters
    assert all(report[p]["figures"] > 0 and report[p]["math"] > 0 for p in chapters), report


def test_every_explorable_responds_to_each_of_its_controls(site, tour):
    html_dir, _ = site
    pages = [p for p, rec in tour["light"].items() if rec["explorables"]]
    assert pages == [p for p in tour["light"] if "accelbook-explore" in (html_dir / p).read_text()]
    for needed in ("chapters/01_introduction.html", "chapters/02_roofline.html", "chapters/03_matmul_everywhere.html"):
        assert needed in pages
    timings, failures = {}, []
    for path in pages:
        rec = tour["light"][path]
        for root_id, found in rec["explorables"].items():
            if not found["visible"]:
                failures.append(f"{path} {root_id}: figure not visible")
            controls = sorted({m["control"] for m in found["moves"]})
            assert controls, f"{path} {root_id}: no controls"
            for i in controls:
                moves = [m for m in found["moves"] if m["control"] == i]
                timings.setdefault(root_id, []).extend(m["ms"] for m in moves)
                if not all(m["restored"] for m in moves):
                    failures.append(f"{path} {root_id}: control {i} does not return to the start")
                if not moves[-1]["changed"]:
                    failures.append(f"{path} {root_id}: control {i} does not change the figure")
                if any(m["width"] * m["height"] == 0 for m in moves):
                    failures.append(f"{path} {root_id}: figure has zero size after control {i}")
        errors = [e for e in rec["errors_after_moves"] if not allowed(e)]
        if errors:
            failures.append(f"{path}: errors after moving the controls: {errors[:5]}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "explorables.json").write_text(json.dumps(
        {k: {"updates": len(t), "median_ms": sorted(t)[len(t) // 2], "max_ms": max(t)} for k, t in timings.items()},
        indent=2))
    assert failures == [], "\n".join(failures)


def _luminance(rgb):
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(css: str):
    return [int(float(x)) for x in re.findall(r"[\d.]+", css)[:3]]


def test_dark_theme_keeps_text_and_controls_legible(tour):
    """Text, explorable labels and captions against the dark theme's background, on every page;
    the two pages named in browsing.DARK_SHOTS must show all three kinds."""
    for path, rec in tour["dark"].items():
        colors = rec["colours"]
        bg = _luminance(_rgb(colors["bg"]))
        assert bg < 0.1, f"{path}: the dark theme's background is light ({colors['bg']})"
        for kind in ("text", "labels", "captions"):
            if path in browsing.DARK_SHOTS:
                assert colors[kind], f"{path}: no {kind} found"
            for c in colors[kind]:
                ratio = (_luminance(_rgb(c)) + 0.05) / (bg + 0.05)
                assert ratio >= 4.5, f"{path}: {kind} colour {c} on {colors['bg']}: contrast {ratio:.1f} < 4.5"


def test_colab_button_opens_this_pages_notebook_edition(site, tour):
    """The Colab button of every notebook page opens its edition in notebooks/ (which Colab renders
    as the site does), on the branch the repository block names."""
    html_dir, _ = site
    repo = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]
    url = repo["url"].rstrip("/").removeprefix("https://github.com/")
    pages = sorted((html_dir / "chapters").glob("*.html")) + [html_dir / "appendix" / "spec_tables.html"]
    for page in pages:
        path = str(page.relative_to(html_dir))
        assert path in tour["light"], f"{path} is not in the table of contents"
        hrefs = tour["light"][path]["facts"]["colab"]
        expected = f"https://colab.research.google.com/github/{url}/blob/{repo['branch']}/notebooks/{page.stem}.ipynb"
        assert hrefs == [expected], (page.name, hrefs)
        assert (ROOT / "notebooks" / f"{page.stem}.ipynb").is_file()


@pytest.fixture(scope="module")
def browser():
    with browsing.launch() as b:
        yield b


@pytest.mark.parametrize("word, chapter", [("systolic", "06_tpu_systolic"), ("roofline", "02_roofline")])
def test_search_finds_a_chapter_by_a_word_of_its_text(site, browser, word, chapter):
    _, base = site
    tab = browsing.Tab(browser, base)
    try:
        tab.open(f"search.html?q={word}")
        tab.page.wait_for_selector("#search-results li")
        links = tab.page.evaluate("() => [...document.querySelectorAll('#search-results li a')].map(a => a.href)")
        assert any(chapter in h for h in links), links
        assert tab.outside == []
    finally:
        tab.close()
