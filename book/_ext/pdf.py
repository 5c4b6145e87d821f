"""`make pdf`: the whole book as one PDF, printed offline from the built HTML book.

Every page of the table of contents (book/_toc.yml: the introduction, the chapters, the appendix)
is opened from book/_build/html by Debian's chromium through Playwright, served from a local HTTP
server with every request that leaves it blocked. MathJax typesets the math first (the book serves
MathJax itself, book/_ext/vendor.py). Each page is then printed with print media: the site's
navigation, sidebars, buttons and code-cell toggles are hidden, and each explorable keeps its
starting figure and gains one line that points to its live version on the website. The pages are
joined with pypdf behind a cover and a table of contents, page numbers are stamped in the footer,
and the PDF outline has one bookmark per page of the table of contents.

Usage: ``python book/_ext/pdf.py [--html book/_build/html] [--out book/_build/pdf/accelbook.pdf]``.
Figures are printed from the site's own PNGs: their resolution is reported (effective dpi at the
printed width) in the summary that the command prints.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import functools
import html
import http.server
import io
import pathlib
import shutil
import sys
import threading

import yaml

BOOK = pathlib.Path(__file__).resolve().parents[1]
HTML = BOOK / "_build" / "html"
OUT = BOOK / "_build" / "pdf" / "accelbook.pdf"
TIMEOUT_MS = 180_000  # a hang guard for one step of printing a page, not a speed check

MM = 96 / 25.4  # CSS px per millimetre (Chromium prints 96 CSS px to the inch)
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0  # A4
MARGIN_MM = {"top": 16.0, "bottom": 20.0, "left": 18.0, "right": 18.0}
TEXT_WIDTH_IN = (PAGE_W_MM - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4

# What a printed page must not show: the site's chrome, toggles and the explorables' live controls.
PRINT_CSS = """
@media print {
  .bd-header, .bd-header-article, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer,
  .bd-footer-content, .prev-next-footer, .prev-next-area, #jb-print-docs-body, #pst-back-to-top,
  .header-article-main, .headerlink, button.toggle-button, .toggle-button, .copybtn,
  .cell.tag_hide-input > .cell_input, .cell.tag_hide-input > details > summary,
  details.above-input > summary, .accelbook-explore-controls, .accelbook-explore-note, .animation .anim-controls,
  .sd-summary-state-marker, .search-button-field, .skip-link, .sd-btn, .dropdown-buttons, #searchbox,
  .bd-search, .pst-async-banner-revealer { display: none !important; }
  html, body { background: #fff !important; margin: 0 !important; padding: 0 !important; }
  .bd-main .bd-content .bd-article h1:first-of-type { display: block !important; }
  .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container,
  .bd-page-width, article.bd-article {
    max-width: none !important; width: auto !important; margin: 0 !important;
    padding: 0 !important; display: block !important; overflow: visible !important; }
  body { font-size: 10.5pt !important; }
  h1 { font-size: 21pt !important; margin-top: 0 !important; }
  h2 { font-size: 15pt !important; break-after: avoid; }
  h3 { font-size: 12.5pt !important; break-after: avoid; }
  img, figure, .cell_output, .accelbook-explore, mjx-container[display="true"] { break-inside: avoid; }
  img { max-width: 100% !important; height: auto !important; }
  pre, .highlight pre { white-space: pre-wrap !important; word-break: break-word; font-size: 8pt !important; }
  table { font-size: 8pt !important; }
  table td, table th { padding: 0.15rem 0.3rem !important; }
  .table-wrapper, .pst-scrollable-table-container { overflow: visible !important; }
  a { color: inherit !important; text-decoration: none !important; }
  .accelbook-explore { border: none !important; padding: 0 !important; }
  .animation { display: block !important; text-align: left !important; }
  .accelbook-print-link { font-size: 9pt; font-style: italic; margin: 0.2rem 0 0.8rem 0; }
  .accelbook-print-link a { text-decoration: underline !important; }
}
"""

# The page's changes before it is printed: explorable link lines, local links sent to the site,
# lazy images loaded. Returns the explorables it marked.
PREPARE_JS = """([site, path, dpis, svgs]) => {
  document.documentElement.dataset.theme = 'light';
  document.documentElement.dataset.mode = 'light';
  const here = site + path;
  const marked = [];
  // An explorable keeps its starting figure; an animation player its first frame. Each gains a
  // line with its address on the website (the explorable's own anchor, or the player's section).
  for (const root of document.querySelectorAll('.accelbook-explore, .animation')) {
    const section = root.closest('section[id]');
    const anchor = root.id || (section ? section.id : '');
    const url = here + (anchor ? '#' + anchor : '');
    const p = document.createElement('p');
    p.className = 'accelbook-print-link';
    p.append('Interactive on the website: ');
    const a = document.createElement('a');
    a.href = url; a.textContent = url;
    p.append(a);
    root.append(p);
    marked.push(root.id || 'animation:' + anchor);
  }
  for (const a of document.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (!href || href.startsWith('#') || /^[a-z]+:/i.test(href)) continue;
    a.href = new URL(href, here).href;  // a link inside the book goes to the same page on the website
  }
  // Dropdowns (questions, notes) print open; code hidden behind a toggle stays hidden.
  for (const d of document.querySelectorAll('details.sd-dropdown')) d.open = true;
  // A figure prints at its drawn size (its PNG's own dpi), at most the text width; an explorable
  // whose starting figure was also written as SVG prints that instead of its raster frame.
  for (const img of document.querySelectorAll('.cell_output img')) {
    const dpi = dpis[(img.getAttribute('src') || '').split('/').pop()];
    if (dpi) img.style.width = (img.naturalWidth * 96 / dpi) + 'px';
  }
  for (const root of document.querySelectorAll('.accelbook-explore')) {
    const svg = svgs[root.id.replace(/^accelbook-explore-/, '')];
    const img = root.querySelector('img.accelbook-explore-figure');
    if (svg && img) { img.removeAttribute('width'); img.removeAttribute('height'); img.src = svg; }
  }
  for (const img of document.querySelectorAll('img')) img.loading = 'eager';
  return Promise.all([...document.querySelectorAll('main img')].map(i => i.decode().catch(() => null)))
    .then(() => marked);
}"""

# Figures of the page's main text: (rendered width in CSS px, natural width in px) of each image.
FIGURES_JS = """() => [...document.querySelectorAll('main article img')]
  .filter(i => i.offsetWidth > 0)
  .map(i => [i.getBoundingClientRect().width, i.naturalWidth, i.src.startsWith('data:image/svg') ? 'svg' : 'raster'])"""

RAW_MARKUP = ("{glue", "{cite}", "{term}", "{doc}", "{numref}", ":::", "```", "\\frac", "$$", "\\(")


class PdfError(RuntimeError):
    """The PDF cannot be made honestly (no built book, MathJax not served locally, raw markup)."""


def site_url(book_dir: pathlib.Path = BOOK) -> str:
    """The published site's address (html.baseurl of book/_config.yml), ending in '/'."""
    config = yaml.safe_load((pathlib.Path(book_dir) / "_config.yml").read_text())
    url = str(config["html"]["baseurl"])
    return url if url.endswith("/") else url + "/"


def toc_entries(book_dir: pathlib.Path = BOOK) -> list[dict]:
    """The pages of book/_toc.yml in reading order: {"path": "chapters/01_x.html", "part": caption
    or None, "number": chapter number or None}. The root page comes first."""
    toc = yaml.safe_load((pathlib.Path(book_dir) / "_toc.yml").read_text())
    entries = [{"path": f"{toc['root']}.html", "part": None, "number": None}]
    number = 0
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            numbered = bool(part.get("numbered"))
            number += numbered
            entries.append({"path": f"{chapter['file']}.html", "part": part.get("caption"),
                            "number": number if numbered else None})
    return entries


PRINT_BUILD = BOOK / "_build" / "print"
KERNEL_CONFIG = """c = get_config()
# The print build's figures: PNG at twice the figure's dpi (matplotlib_inline's 'retina' format)
c.InlineBackend.figure_formats = {"retina"}
"""


def print_build(out: pathlib.Path = PRINT_BUILD, *, book_dir: pathlib.Path = BOOK) -> pathlib.Path:
    """Build the book once more for print into ``out`` (its own execution cache, so it re-runs a
    chapter only when the chapter changes) and return its HTML folder. Two differences from the
    site's build: every plain figure is drawn at twice its dpi (the kernels read an IPython profile
    that asks matplotlib_inline for 'retina' PNGs), and every explorable also writes its starting
    figure as SVG into ``out``/explorables (``ACCELBOOK_FIGURES_DIR``, see accelbook.explore),
    which the PDF prints in place of the page's raster frame. Raises PdfError if the build fails."""
    import os
    import subprocess

    out = pathlib.Path(out).resolve()
    profile = out / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    (out / "explorables").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, IPYTHONDIR=str(out / "ipython"), ACCELBOOK_FIGURES_DIR=str(out / "explorables"))
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", "-n", "--keep-going", "--path-output", str(out), str(book_dir)],
                          env=env)
    html_dir = out / "_build" / "html"
    if proc.returncode != 0 or not html_dir.is_dir():
        raise PdfError(f"the print build of the book failed (exit {proc.returncode}); see its output above")
    return html_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(html_dir: pathlib.Path):
    """A built site on a local port (a thread of this process): yields its base URL, ending in "/"."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium():
    """Debian's chromium through Playwright's sync API (one running instance per thread)."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise PdfError("Debian's chromium is needed to print the book: `make browser` installs it "
                       "(apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser
        finally:
            browser.close()


def _margins() -> dict:
    return {k: f"{v}mm" for k, v in MARGIN_MM.items()}


def _print_page(browser, base: str, site: str, path: str, dpis: dict | None = None,
                svgs: dict | None = None) -> dict:
    """Open one built page offline, typeset it and print it: {"pdf": bytes, "title": str,
    "explorables": [ids], "figures": [(printed CSS px, natural px, class)]}."""
    # The viewport is the printed text width, so that what is measured here is what is printed.
    context = browser.new_context(viewport={"width": round(TEXT_WIDTH_IN * 96), "height": 1400})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script("localStorage.setItem('theme', 'light'); localStorage.setItem('mode', 'light');")
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(base) or url.startswith("data:"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    try:
        page = context.new_page()
        page.goto(base + path, wait_until="load", timeout=TIMEOUT_MS)
        # settled: every image decoded and the fonts ready (Playwright's "networkidle" waits for
        # 500 ms without a request, which a busy machine may not give a heavy page in time)
        page.wait_for_function("() => document.fonts.status === 'loaded' && [...document.images].every(i => i.complete)",
                               timeout=TIMEOUT_MS)
        if any("mathjax" in u.lower() for u in outside):
            raise PdfError(f"{path}: the page loads MathJax from outside the book ({outside[0]}); "
                           "run `make vendor` (the npm registry) and rebuild the book, so that the "
                           "site serves MathJax itself and the math can be typeset offline")
        if page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=TIMEOUT_MS)
            page.evaluate("() => MathJax.startup.promise")
        page.add_style_tag(content=PRINT_CSS)
        explorables = page.evaluate(PREPARE_JS, [site, path, dpis or {}, svgs or {}])
        page.emulate_media(media="print")
        text = page.evaluate("() => (document.querySelector('main article') || document.body).innerText")
        raw = [m for m in RAW_MARKUP if m in text]
        if raw:
            raise PdfError(f"{path}: raw markup or TeX source would be printed: {raw}")
        title = page.evaluate("() => { const h = document.querySelector('main article h1');"
                              " return h ? h.innerText.replace(/#\\s*$/, '').trim() : document.title; }")
        figures = page.evaluate(FIGURES_JS)
        pdf = page.pdf(format="A4", print_background=True, margin=_margins(), prefer_css_page_size=False)
        return {"pdf": pdf, "title": title, "explorables": explorables, "figures": figures}
    finally:
        context.close()


def _print_html(browser, body: str, margin: dict | None = None) -> bytes:
    """Print a small HTML document of this script's own (cover, contents, page numbers)."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", lambda r: r.abort() if not r.request.url.startswith("data:") else r.continue_())
    try:
        page = context.new_page()
        page.set_content(body, wait_until="load")
        return page.pdf(format="A4", print_background=True, margin=margin or _margins())
    finally:
        context.close()


BASE_STYLE = """<style>
body { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; color: #222; }
.cover { text-align: center; padding-top: 70mm; }
.cover h1 { font-size: 30pt; margin: 0 0 6mm 0; }
.cover .sub { font-size: 15pt; font-style: italic; margin-bottom: 30mm; }
.cover .meta { font-size: 10.5pt; color: #444; line-height: 1.6; }
.toc h1 { font-size: 21pt; margin: 0 0 8mm 0; }
.toc .part { font-weight: bold; font-size: 11pt; margin: 6mm 0 2mm 0; text-transform: uppercase;
             letter-spacing: 0.05em; color: #555; }
.toc .row { display: flex; align-items: flex-end; font-size: 11.5pt; margin: 2.2mm 0; }
.toc .row .t { flex: none; max-width: 85%; }
.toc .row .dots { flex: 1; border-bottom: 1px dotted #888; margin: 0 2mm 1.2mm 2mm; }
.toc .row .p { flex: none; }
</style>"""


def _cover(title: str, subtitle: str, site: str, stamp: str) -> str:
    return (f"<html><head>{BASE_STYLE}</head><body><div class='cover'>"
            f"<h1>{html.escape(title)}</h1><div class='sub'>{html.escape(subtitle)}</div>"
            f"<div class='meta'>The printed edition of the website<br><b>{html.escape(site)}</b><br>"
            f"where every figure marked &ldquo;Interactive on the website&rdquo; can be explored,<br>"
            f"and every chapter runs as a notebook.<br><br>Printed {html.escape(stamp)}</div>"
            "</div></body></html>")


def _contents(rows: list[dict]) -> str:
    out, part = [f"<html><head>{BASE_STYLE}</head><body><div class='toc'><h1>Contents</h1>"], None
    for row in rows:
        if row["part"] and row["part"] != part:
            part = row["part"]
            out.append(f"<div class='part'>{html.escape(part)}</div>")
        out.append(f"<div class='row'><span class='t'>{html.escape(row['title'])}</span>"
                   f"<span class='dots'></span><span class='p'>{row['start']}</span></div>")
    out.append("</div></body></html>")
    return "".join(out)


def _numbers(footers: list[str]) -> str:
    """One A4 page per entry with the footer text at the bottom, to be laid over the book's pages."""
    style = ("<style>@page { size: A4; margin: 0 } body { margin: 0; font-family: 'DejaVu Sans', sans-serif; }"
             f".pg {{ position: relative; width: {PAGE_W_MM}mm; height: {PAGE_H_MM}mm; overflow: hidden;"
             " break-after: page; }"
             f".pg span {{ position: absolute; bottom: 9mm; left: {MARGIN_MM['left']}mm;"
             f" right: {MARGIN_MM['right']}mm; text-align: center; font-size: 8.5pt; color: #555; }}</style>")
    pages = "".join(f"<div class='pg'><span>{html.escape(f)}</span></div>" if f else "<div class='pg'></div>"
                    for f in footers)
    return f"<html><head>{style}</head><body>{pages}</body></html>"


def _png_dpis(html_dir: pathlib.Path) -> dict[str, float]:
    """The dpi each figure PNG of the build was drawn at (its pHYs chunk), by file name."""
    from PIL import Image

    dpis = {}
    for png in (html_dir / "_images").glob("*.png"):
        with Image.open(png) as im:
            dpi = im.info.get("dpi")
        if dpi and dpi[0] > 1:
            dpis[png.name] = float(dpi[0])
    return dpis


def _svgs(folder: pathlib.Path | None) -> dict[str, str]:
    """The explorables' starting figures written as SVG (name -> data: URL), if a folder is given."""
    if folder is None:
        return {}
    return {p.stem: "data:image/svg+xml;base64," + base64.b64encode(p.read_bytes()).decode()
            for p in sorted(pathlib.Path(folder).glob("*.svg"))}


def build_pdf(html_dir: pathlib.Path = HTML, out: pathlib.Path = OUT, *, book_dir: pathlib.Path = BOOK,
              explorable_svgs: pathlib.Path | None = None, log=print) -> dict:
    """Print the built HTML book ``html_dir`` into one PDF at ``out``.

    Returns a summary: "pages" (int, the PDF's page count), "bytes" (int, its size), "entries" (one
    dict per page of the table of contents: path, title, part, start page (1-based, as printed),
    pages, explorables), "figures" (list of (path, printed width in inches, natural width in px,
    effective dpi)). Raises PdfError when the book is not built, when a page would load MathJax from
    outside the book, or when raw markup would be printed.

    Each figure PNG prints at the size it was drawn (pixels / its own dpi), at most the text width
    (174 mm on A4), so its effective resolution is at least its drawn dpi. ``explorable_svgs``: a
    folder of ``<name>.svg`` starting figures (see :func:`print_build`) printed in place of the
    explorables' raster frames.
    """
    from pypdf import PdfReader, PdfWriter

    html_dir, out, book_dir = pathlib.Path(html_dir), pathlib.Path(out), pathlib.Path(book_dir)
    entries = toc_entries(book_dir)
    missing = [e["path"] for e in entries if not (html_dir / e["path"]).is_file()]
    if missing:
        raise PdfError(f"html_dir={str(html_dir)!r} lacks built pages {missing}: run `make book` first")
    if not (html_dir / "vendor" / "mathjax").is_dir():
        raise PdfError(f"html_dir={str(html_dir)!r} has no vendor/mathjax: the pages would load MathJax "
                       "from a CDN. Run `make vendor` and `make book`, then `make pdf`.")
    config = yaml.safe_load((book_dir / "_config.yml").read_text())
    site = site_url(book_dir)
    dpis, svgs = _png_dpis(html_dir), _svgs(explorable_svgs)
    printed, figures = [], []
    with serve(html_dir) as base, chromium() as browser:
        for e in entries:
            log(f"printing {e['path']}")
            r = _print_page(browser, base, site, e["path"], dpis, svgs)
            reader = PdfReader(io.BytesIO(r["pdf"]))
            printed.append((e, r, reader))
            for css_px, natural, kind in r["figures"]:
                inches = css_px / 96
                if inches > 0:
                    figures.append((e["path"], round(inches, 2), natural,
                                    "vector" if kind == "svg" else round(natural / inches)))

        # The front matter: a cover, then the contents (its length known before the numbers are).
        rows = [dict(e, title=r["title"]) for e, r, _ in printed]
        stamp = datetime.date.today().isoformat()
        cover = _print_html(browser, _cover(config.get("title", "accelbook"),
                                            "The mental model that survives benchmarks", site, stamp))
        n_cover = len(PdfReader(io.BytesIO(cover)).pages)
        draft = PdfReader(io.BytesIO(_print_html(browser, _contents([dict(r, start=999) for r in rows]))))
        start = n_cover + len(draft.pages) + 1
        for row, (_, _, reader) in zip(rows, printed):
            row["start"], row["pages"] = start, len(reader.pages)
            start += len(reader.pages)
        contents = _print_html(browser, _contents(rows))
        contents_reader = PdfReader(io.BytesIO(contents))
        if len(contents_reader.pages) != len(draft.pages):
            raise PdfError("the table of contents changed length between its draft and its final print")

        writer = PdfWriter()
        for page in PdfReader(io.BytesIO(cover)).pages:
            writer.add_page(page)
        for page in contents_reader.pages:
            writer.add_page(page)
        footers = [""] * len(writer.pages)
        short = config.get("title", "")
        for row, (_, _, reader) in zip(rows, printed):
            for page in reader.pages:
                writer.add_page(page)
                footers.append(f"{short}  ·  {row['title']}  ·  {len(footers) + 1}")
        footers[n_cover:n_cover + len(contents_reader.pages)] = [
            f"{short}  ·  Contents  ·  {n_cover + i + 1}" for i in range(len(contents_reader.pages))]
        numbers = PdfReader(io.BytesIO(_print_html(browser, _numbers(footers),
                                                   margin={k: "0" for k in MARGIN_MM})))
    if len(numbers.pages) != len(writer.pages):
        raise PdfError(f"{len(numbers.pages)} footer pages for {len(writer.pages)} book pages")
    for page, number in zip(writer.pages, numbers.pages):
        page.merge_page(number)
    for row in rows:
        writer.add_outline_item(title=row["title"], page_number=row["start"] - 1)
    writer.page_mode = "/UseOutlines"
    writer.add_metadata({"/Title": config.get("title", ""), "/Author": config.get("author", ""),
                         "/Subject": f"The printed edition of {site}"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        writer.write(f)
    return {"pages": len(writer.pages), "bytes": out.stat().st_size, "figures": figures,
            "entries": [{k: row[k] for k in ("path", "title", "part", "start", "pages")}
                        | {"explorables": r["explorables"]} for row, (_, r, _) in zip(rows, printed)]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=pathlib.Path, default=HTML, help="the built HTML book")
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="the PDF to write")
    ap.add_argument("--print-build", action="store_true",
                    help=f"first build the book for print into {PRINT_BUILD.relative_to(BOOK.parent)} "
                         "(figures at twice their dpi, explorables as SVG) and print that build")
    args = ap.parse_args(argv)
    try:
        svgs = None
        if args.print_build:
            args.html, svgs = print_build(), PRINT_BUILD / "explorables"
        s = build_pdf(args.html, args.out, explorable_svgs=svgs)
    except PdfError as e:
        print(f"make pdf: {e}", file=sys.stderr)
        return 1
    for e in s["entries"]:
        print(f"  p. {e['start']:>3}  {e['pages']:>2} pages  {e['title']}")
    dpis = sorted(d for *_, d in s["figures"] if d != "vector")
    vector = sum(d == "vector" for *_, d in s["figures"])
    if dpis:
        print(f"figures: {len(dpis)} raster, effective resolution {dpis[0]}–{dpis[-1]} dpi "
              f"(median {dpis[len(dpis) // 2]} dpi) at their printed widths; {vector} vector (SVG)")
    print(f"{args.out}: {s['pages']} pages, {s['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
