"""Every page of the built book, opened in a real browser (Debian's chromium through Playwright).

The site is served from a local HTTP server and every request that leaves it is blocked and
recorded, as for a reader with the network switched off. For every page: no request leaves the
book, no JavaScript error beyond the allow-list, math typeset (no raw TeX), every figure loaded
with a non-zero size, every explorable's controls change its figure, the page weighs under 2 MB
of its own (shared JavaScript and CSS apart), and a screenshot lands in book/_build/screenshots/
(light and dark theme) for review. Also: each chapter's Colab button opens that chapter's .ipynb
in the repository, and search finds a chapter by a word of its text.
"""

from __future__ import annotations

import functools
import http.server
import json
import pathlib
import re
import shutil
import threading
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHOTS = ROOT / "book" / "_build" / "screenshots"
PAGE_BUDGET = 2_000_000  # bytes of a page's own: its HTML and the images only it uses

# Console messages that are not the book's fault, each with the reason it is harmless.
ALLOWED_CONSOLE = {
    "Identifier 'THEBE_JS_URL' has already been declared":
        "sphinx-thebe 0.3.1 writes its config script twice; the second copy fails, the first works "
        "(and the book does not use live code through thebe)",
    "invalid theme mode":
        "pydata-sphinx-theme logs this once on a fresh browser profile, before a theme is stored",
    "favicon.ico":
        "the browser asks for /favicon.ico; the book has no favicon (a 404 inside the book)",
}


def _allowed(text: str) -> bool:
    return any(key in text for key in ALLOWED_CONSOLE)


@pytest.fixture(scope="module")
def site(built_book):
    proc, html_dir = built_book
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html_dir, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium is needed: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def _page_paths(html_dir: pathlib.Path) -> list[str]:
    return ["intro.html"] + [str(p.relative_to(html_dir)) for d in ("chapters", "appendix")
                             for p in sorted((html_dir / d).glob("*.html"))]


class Visit:
    """One page opened offline: what it requested, what it logged, the Playwright page."""

    def __init__(self, browser, base: str, path: str, theme: str = "light"):
        self.base, self.path = base, path
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(f"localStorage.setItem('theme', '{theme}');"
                                     f"localStorage.setItem('mode', '{theme}');")
        self.outside, self.errors, self.local = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"))
        self.page.goto(f"{base}/{path}", wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("data:"):
            self.local.append(url)
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def typeset(self):
        if not self.page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
            return  # Sphinx loads MathJax only on pages with math
        self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                    timeout=30_000)
        self.page.evaluate("() => MathJax.startup.promise")

    def close(self):
        self.context.close()


def _shot_name(path: str, theme: str) -> pathlib.Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / (path.replace("/", "__").replace(".html", "") + f"-{theme}.png")


RAW_TEX = re.compile(r"\\(frac|sum|max|min|cdot|times|le|ge|text|mathrm|begin)\b|\$\$")


def test_every_page_works_offline(site, browser):
    html_dir, base = site
    report, failures = {}, []
    for path in _page_paths(html_dir):
        v = Visit(browser, base, path)
        try:
            v.typeset()
            found = v.page.evaluate("""() => {
              const main = document.querySelector('main') || document.body;
              const shown = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
              const imgs = [...main.querySelectorAll('img')];
              return {
                text: main.innerText,
                math: document.querySelectorAll('.math').length,
                typeset: document.querySelectorAll('mjx-container').length,
                broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80)),
                zero: imgs.filter(i => shown(i) && i.getBoundingClientRect().width * i.getBoundingClientRect().height === 0)
                          .map(i => i.src.slice(0, 80)),
                figures: imgs.filter(shown).length,
                own: imgs.map(i => i.getAttribute('src')).filter(s => s && !s.startsWith('data:')),
              };
            }""")
            errors = [e for e in v.errors if not _allowed(e)]
            raw = sorted(set(m.group(0) for m in RAW_TEX.finditer(found["text"])))
            own_images = {urllib.parse.urljoin(f"{base}/{path}", s) for s in found["own"]}
            weight = (html_dir / path).stat().st_size + sum(
                (html_dir / urllib.parse.urlparse(u).path.lstrip("/")).stat().st_size
                for u in own_images if "/_images/" in u)
            report[path] = {"bytes": weight, "figures": found["figures"], "math": found["math"]}
            problems = {"requests outside the book": v.outside, "JavaScript errors": errors,
                        "raw TeX": raw, "images not loaded": found["broken"], "images of zero size": found["zero"]}
            if found["math"] and not found["typeset"]:
                problems["math not typeset"] = [f"{found['math']} math elements, 0 typeset"]
            if weight > PAGE_BUDGET:
                problems["page weight"] = [f"{weight / 1e6:.2f} MB > {PAGE_BUDGET / 1e6:.0f} MB"]
            failures += [f"{path}: {k}: {val[:5]}" for k, val in problems.items() if val]
            v.page.screenshot(path=str(_shot_name(path, "light")), full_page=True)
        finally:
            v.close()
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "pages.json").write_text(json.dumps(report, indent=2))
    assert len(report) >= 9
    assert failures == [], "\n".join(failures)
    chapters = [p for p in report if p.startswith("chapters/")]
    assert all(report[p]["figures"] > 0 and report[p]["math"] > 0 for p in chapters), report


def _controls_of(page, root_id: str) -> int:
    return page.evaluate(f"() => document.getElementById('{root_id}').querySelectorAll('[data-param]').length")


MOVE = """([rootId, i, choice]) => {
  const root = document.getElementById(rootId);
  const el = root.querySelectorAll('[data-param]')[i];
  const img = root.querySelector('img.accelbook-explore-figure');
  const before = [img.src, root.querySelector('.accelbook-explore-caption').innerHTML];
  let options;
  if (el.type === 'checkbox') options = [!el.checked];
  else if (el.tagName === 'SELECT') options = [...el.options].map(o => o.value).filter(v => v !== el.value);
  else { const n = +el.max + 1; options = [...Array(n).keys()].map(String).filter(v => v !== el.value); }
  const v = options[choice % options.length];
  const old = el.type === 'checkbox' ? el.checked : el.value;
  const t0 = performance.now();
  if (el.type === 'checkbox') el.checked = v; else el.value = v;
  el.dispatchEvent(new Event(el.type === 'range' ? 'input' : 'change', {bubbles: true}));
  return img.decode().then(() => {
    const out = {
      changed: img.src !== before[0] || root.querySelector('.accelbook-explore-caption').innerHTML !== before[1],
      ms: performance.now() - t0, options: options.length,
      width: img.getBoundingClientRect().width, height: img.getBoundingClientRect().height};
    // back to the starting state, so each control is tried from there
    if (el.type === 'checkbox') el.checked = old; else el.value = old;
    el.dispatchEvent(new Event(el.type === 'range' ? 'input' : 'change', {bubbles: true}));
    out.restored = img.src === before[0];
    return out;
  });
}"""


def test_every_explorable_responds_to_each_of_its_controls(site, browser):
    html_dir, base = site
    pages = [p for p in _page_paths(html_dir) if "accelbook-explore" in (html_dir / p).read_text()]
    for needed in ("chapters/01_introduction.html", "chapters/02_roofline.html", "chapters/03_matmul_everywhere.html"):
        assert needed in pages
    timings, failures = {}, []
    for path in pages:
        v = Visit(browser, base, path)
        try:
            ids = v.page.evaluate("() => [...document.querySelectorAll('.accelbook-explore')].map(e => e.id)")
            assert ids, path
            for root_id in ids:
                box = v.page.locator(f"#{root_id} img.accelbook-explore-figure").bounding_box()
                if not box or box["width"] * box["height"] == 0:
                    failures.append(f"{path} {root_id}: figure not visible")
                v.page.locator(f"#{root_id}").scroll_into_view_if_needed()
                for i in range(_controls_of(v.page, root_id)):
                    # try the other values until one changes the figure: a control that changes
                    # nothing from the starting state is a bug in the explorable
                    for attempt in range(4):
                        r = v.page.evaluate(MOVE, [root_id, i, attempt])
                        timings.setdefault(root_id, []).append(r["ms"])
                        if not r["restored"]:
                            failures.append(f"{path} {root_id}: control {i} does not return to the start")
                        if r["changed"]:
                            break
                    else:
                        failures.append(f"{path} {root_id}: control {i} does not change the figure")
                    if r["width"] * r["height"] == 0:
                        failures.append(f"{path} {root_id}: figure has zero size after control {i}")
                v.page.locator(f"#{root_id}").screenshot(path=str(_shot_name(f"{path}-{root_id}", "light")))
            assert [e for e in v.errors if not _allowed(e)] == [], (path, v.errors)
        finally:
            v.close()
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


def test_dark_theme_keeps_text_and_controls_legible(site, browser):
    html_dir, base = site
    for path in ("chapters/02_roofline.html", "chapters/01_introduction.html"):
        v = Visit(browser, base, path, theme="dark")
        try:
            assert v.page.evaluate("() => document.documentElement.dataset.theme") == "dark"
            colors = v.page.evaluate("""() => {
              const bg = getComputedStyle(document.body).backgroundColor;
              const pick = sel => [...document.querySelectorAll(sel)].slice(0, 20).map(e => getComputedStyle(e).color);
              return {bg, text: pick('main p'), labels: pick('.accelbook-explore label, .accelbook-explore output'),
                      captions: pick('.accelbook-explore-caption, .accelbook-explore-note')};
            }""")
            bg = _luminance(_rgb(colors["bg"]))
            assert bg < 0.1, f"{path}: the dark theme's background is light ({colors['bg']})"
            for kind in ("text", "labels", "captions"):
                assert colors[kind], f"{path}: no {kind} found"
                for c in colors[kind]:
                    ratio = (_luminance(_rgb(c)) + 0.05) / (bg + 0.05)
                    assert ratio >= 4.5, f"{path}: {kind} colour {c} on {colors['bg']}: contrast {ratio:.1f} < 4.5"
            v.page.screenshot(path=str(_shot_name(path, "dark")), full_page=True)
        finally:
            v.close()


def test_colab_button_opens_this_pages_notebook_edition(site, browser):
    """The Colab button of every notebook page opens its edition in notebooks/ (which Colab renders
    as the site does), on the branch the repository block names."""
    html_dir, base = site
    repo = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]
    url = repo["url"].rstrip("/").removeprefix("https://github.com/")
    pages = sorted((html_dir / "chapters").glob("*.html")) + [html_dir / "appendix" / "spec_tables.html"]
    for page in pages:
        v = Visit(browser, base, str(page.relative_to(html_dir)))
        try:
            hrefs = v.page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)"
                                    ".filter(h => h.includes('colab.research.google.com'))")
            expected = f"https://colab.research.google.com/github/{url}/blob/{repo['branch']}/notebooks/{page.stem}.ipynb"
            assert hrefs == [expected], (page.name, hrefs)
            assert (ROOT / "notebooks" / f"{page.stem}.ipynb").is_file()
        finally:
            v.close()


@pytest.mark.parametrize("word, chapter", [("systolic", "06_tpu_systolic"), ("roofline", "02_roofline")])
def test_search_finds_a_chapter_by_a_word_of_its_text(site, browser, word, chapter):
    html_dir, base = site
    v = Visit(browser, base, f"search.html?q={word}")
    try:
        v.page.wait_for_selector("#search-results li", timeout=30_000)
        links = v.page.evaluate("() => [...document.querySelectorAll('#search-results li a')].map(a => a.href)")
        assert any(chapter in h for h in links), links
        assert v.outside == []
    finally:
        v.close()
