"""`make pdf`: the book as one PDF, printed by Debian's chromium from a clean build of the book.

The PDF is made once from the session's clean build (the ``built_book`` fixture) into a temporary
folder, by the same function that `make pdf` calls (book/_ext/pdf.py). Each check compares the PDF
with what the built HTML pages hold, read independently with BeautifulSoup: the chapter titles,
the figure images, the explorables, and the amount of text.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import unicodedata

import bs4
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
RAW = ("{glue", "{cite}", "{term}", "{doc}", ":::", "```", "\\frac", "$$", "\\(")


def _load_script():
    spec = importlib.util.spec_from_file_location("accelbook_pdf", BOOK / "_ext" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toc_paths() -> list[str]:
    """The pages of book/_toc.yml, read here on their own: root, then every part's chapters."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    return [f"{toc['root']}.html"] + [f"{c['file']}.html" for part in toc["parts"] for c in part["chapters"]]


SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)


def _soup(html_dir: pathlib.Path, path: str) -> bs4.BeautifulSoup:
    """The built page without its scripts (the explorables' frames are most of a page's bytes)."""
    return bs4.BeautifulSoup(SCRIPT.sub("", (html_dir / path).read_text(encoding="utf-8")), "html.parser")


def _title(soup: bs4.BeautifulSoup) -> str:
    h1 = soup.select_one("article h1")
    for link in h1.select("a.headerlink"):
        link.decompose()
    return _flat(h1.get_text())


def _flat(text: str) -> str:
    """Whitespace runs as one space; ligatures that the PDF text keeps (ﬂ, ﬁ) as their letters."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def _printed_text(soup: bs4.BeautifulSoup) -> str:
    """The article's text as printed: code that the page hides behind a toggle is not printed."""
    article = soup.select_one("article")
    for el in article.select("script, style, .tag_hide-input > .cell_input, .accelbook-explore-controls"):
        el.decompose()
    return _flat(article.get_text(" "))


def _dropdown_runs(soup: bs4.BeautifulSoup) -> list[str]:
    """For each dropdown's body: a run of five plain words (math and code left out; not the first
    word, which may follow a list number or math)."""
    runs = []
    for body in soup.select("details.sd-dropdown .sd-summary-content"):
        for el in body.select(".math, code, script, mjx-container"):
            el.replace_with("\x00")
        chunks = [c.split() for c in _flat(body.get_text(" ")).split("\x00")]
        words = next((c for c in chunks if len(c) >= 6), None)
        if words:
            runs.append(" ".join(words[1:6]))
    return runs


def _facts(html_dir: pathlib.Path, path: str) -> dict:
    """What the built page holds, read once with BeautifulSoup."""
    soup = _soup(html_dir, path)
    facts = {"title": _title(soup), "figures": len(soup.select(".cell_output img")),
             "blocks": len(soup.select("article img")) + len(soup.select("article table")),
             "explorables": [el["id"] for el in soup.select(".accelbook-explore")],
             "animations": len(soup.select(".animation"))}
    facts["chars"] = len(_printed_text(soup))
    facts["dropdowns"] = _dropdown_runs(soup)
    return facts


def _images(obj, seen=None) -> int:
    """Image XObjects drawn by a page or a form, counted through nested forms (nothing decoded)."""
    seen = set() if seen is None else seen
    resources = obj.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    count = 0
    for ref in (xobjects.get_object().values() if xobjects is not None else ()):
        key = getattr(ref, "idnum", None)
        if key is not None and key in seen:
            continue
        seen.add(key)
        x = ref.get_object()
        if x.get("/Subtype") == "/Image":
            count += 1
        elif x.get("/Subtype") == "/Form":
            count += _images(x, seen)
    return count


@pytest.fixture(scope="module")
def book_pdf(built_book, tmp_path_factory):
    from pypdf import PdfReader

    proc, html_dir = built_book
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = tmp_path_factory.mktemp("pdf") / "accelbook.pdf"
    summary = _load_script().build_pdf(html_dir, out, log=lambda *_: None)
    reader = PdfReader(out)
    texts = [_flat(page.extract_text() or "") for page in reader.pages]
    facts = {path: _facts(html_dir, path) for path in _toc_paths()}
    return facts, summary, reader, texts


def test_the_pdf_has_every_page_of_the_toc_in_order_with_its_title(book_pdf):
    """Each page's title (its first heading on the built page) is the first heading on the page the
    contents and the outline point to, and the titles come in the order of book/_toc.yml."""
    facts, _, reader, texts = book_pdf
    titles = [facts[p]["title"] for p in _toc_paths()]
    outline = [(_flat(item.title), reader.get_destination_page_number(item)) for item in reader.outline]
    assert [t for t, _ in outline] == titles, "one outline entry per page of the table of contents"
    starts = [page for _, page in outline]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for title, page in outline:
        # the heading leads the page (text extraction may put a few labels, such as [1], before it)
        assert title in texts[page][:len(title) + 80], (title, page, texts[page][:200])
    # the contents page (after the cover) lists every title with the page number it starts on
    contents = " ".join(texts[1:starts[0]])
    for title, page in outline:
        assert re.search(re.escape(title) + r"\W*" + str(page + 1) + r"\b", contents), (title, page + 1)


def test_page_count_is_plausible_for_the_text_and_figures_of_each_page(book_pdf):
    """For each page of the toc, its printed length lies between two estimates from the built
    HTML: at most 9,000 characters fit on an A4 page (dense 8 pt code: ~110 characters by 80
    lines), and a page holds at least 700 characters unless a figure or a table fills it
    (each figure, table or explorable may take up to one page of its own)."""
    facts, _, reader, _ = book_pdf
    outline = [reader.get_destination_page_number(item) for item in reader.outline]
    ends = outline[1:] + [len(reader.pages)]
    report = []
    for path, start, end in zip(_toc_paths(), outline, ends):
        blocks, chars = facts[path]["blocks"], facts[path]["chars"]
        pages = end - start
        report.append((path, chars, blocks, pages))
        assert chars / 9000 <= pages <= 1 + chars / 700 + blocks, report[-1]
    n = len(report)
    assert 3 * n <= len(reader.pages) <= 60 * n, report


def test_every_figure_of_the_built_pages_is_embedded(book_pdf):
    """At least as many images are embedded as the built pages show in their cell outputs (a plain
    figure, an explorable's starting figure, an animation player's first frame), chapter by
    chapter."""
    facts, _, reader, _ = book_pdf
    outline = [reader.get_destination_page_number(item) for item in reader.outline]
    ends = outline[1:] + [len(reader.pages)]
    for path, start, end in zip(_toc_paths(), outline, ends):
        shown = facts[path]["figures"]
        embedded = sum(_images(reader.pages[i]) for i in range(start, end))
        assert embedded >= shown, (path, embedded, shown)


def test_no_raw_markup_or_tex_source_is_printed(book_pdf):
    _, _, _, texts = book_pdf
    found = [(i + 1, m, t[max(0, t.find(m) - 60):t.find(m) + 60]) for i, t in enumerate(texts)
             for m in RAW if m in t]
    assert found == []


def test_each_explorable_points_to_its_page_on_the_website(book_pdf):
    """Every explorable of the built pages is printed with one line that names its address on the
    website (html.baseurl of book/_config.yml, the page, the explorable's anchor)."""
    facts, _, reader, texts = book_pdf
    site = yaml.safe_load((BOOK / "_config.yml").read_text())["html"]["baseurl"].rstrip("/") + "/"
    joined = "".join(t.replace(" ", "") for t in texts)  # long addresses wrap across lines
    first = min(reader.get_destination_page_number(item) for item in reader.outline)
    lines = sum(t.count("Interactive on the website") for t in texts[first:])  # the cover names it too
    expected = 0
    for path in _toc_paths():
        ids = facts[path]["explorables"]
        expected += len(ids) + facts[path]["animations"]
        for anchor in ids:
            assert f"Interactiveonthewebsite:{site}{path}#{anchor}" in joined, (path, anchor)
    assert expected > 0 and lines == expected


def test_the_pdf_is_made_offline_or_not_at_all(built_book, tmp_path):
    """Without the site's own MathJax (no vendor/ folder) the pages would load it from a CDN: the
    script refuses with a message that says how to fix it, and writes nothing."""
    _, html_dir = built_book
    pdf = _load_script()
    fake = tmp_path / "html"
    for path in _toc_paths():
        (fake / path).parent.mkdir(parents=True, exist_ok=True)
        (fake / path).write_text((html_dir / path).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(pdf.PdfError, match="make vendor"):
        pdf.build_pdf(fake, tmp_path / "out.pdf", log=lambda *_: None)
    assert not (tmp_path / "out.pdf").exists()
    with pytest.raises(pdf.PdfError, match="make book"):
        pdf.build_pdf(tmp_path / "nothing", tmp_path / "out.pdf", log=lambda *_: None)


def test_figures_print_at_their_drawn_size_and_explorables_as_svg(tmp_path):
    """A small built book of one page (no MathJax, no kernel): a 2 in × 1 in figure drawn at 220
    dpi (440 × 220 px) prints 2 in wide, so at 220 dpi; a 9 in figure at 100 dpi is capped at the
    A4 text width (210 mm less 2 × 18 mm margins = 6.85 in), so prints at 900 / 6.85 = 131 dpi;
    the explorable's raster frame is replaced by its SVG starting figure (named by the explorable)
    and the page carries its website line."""
    from PIL import Image
    from pypdf import PdfReader

    pdf = _load_script()
    book, html_dir, svgs = tmp_path / "book", tmp_path / "html", tmp_path / "svgs"
    for d in (book, html_dir / "_images", html_dir / "vendor" / "mathjax", svgs):
        d.mkdir(parents=True)
    (book / "_config.yml").write_text("title: Tiny\nauthor: T\nhtml:\n  baseurl: https://example.org/tiny\n")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    Image.new("RGB", (440, 220), "navy").save(html_dir / "_images" / "small.png", dpi=(220, 220))
    Image.new("RGB", (900, 300), "teal").save(html_dir / "_images" / "wide.png", dpi=(100, 100))
    (svgs / "dial.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="144pt" height="72pt" '
                                   'viewBox="0 0 144 72"><rect width="144" height="72" fill="red"/></svg>')
    frame = html_dir / "_images" / "small.png"
    (html_dir / "intro.html").write_text(
        "<html><body><main><article><section id='start'><h1>Tiny book</h1><p>Some text.</p>"
        "<div class='cell_output'><img src='_images/small.png'></div>"
        "<div class='cell_output'><img src='_images/wide.png'></div>"
        "<div class='cell_output'><div class='accelbook-explore' id='accelbook-explore-dial'>"
        "<div class='accelbook-explore-controls'><select><option>a</option></select></div>"
        f"<img class='accelbook-explore-figure' width='300' height='150' src='_images/{frame.name}'>"
        "</div></div></section></article></main></body></html>")
    summary = pdf.build_pdf(html_dir, tmp_path / "tiny.pdf", book_dir=book, explorable_svgs=svgs,
                            log=lambda *_: None)
    got = {natural: dpi for _, _, natural, dpi in summary["figures"]}
    assert got[440] == 220
    assert got[900] == pytest.approx(900 / ((210 - 36) / 25.4), abs=1)
    assert "vector" in got.values() and len(got) == 3
    text = _flat(" ".join(p.extract_text() for p in PdfReader(tmp_path / "tiny.pdf").pages))
    assert "Interactive on the website: https://example.org/tiny/intro.html#accelbook-explore-dial" in text
    assert summary["entries"][0]["explorables"] == ["accelbook-explore-dial"]


def test_dropdowns_print_open(book_pdf):
    """A dropdown (a box of questions, a note) is printed open: a run of five plain words from each
    dropdown's body on the built pages appears in the PDF's text."""
    facts, _, _, texts = book_pdf
    joined = " ".join(texts)
    runs = [(path, run) for path in _toc_paths() for run in facts[path]["dropdowns"]]
    assert runs and [r for r in runs if r[1] not in joined] == []
