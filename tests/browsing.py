"""The built book in a real browser (Debian's chromium through Playwright), for the site's and the
accessibility tests: one local server and one tour, in a browser of its own, that opens every page
once per theme and records everything those tests check. The server and the browser start as
`make pdf` starts them (book/_ext/pdf.py).

Every page is served from a local HTTP server; every request that leaves it is blocked and
recorded, as for a reader with the network switched off. A page counts as opened when its load
event has fired, every image is complete and the fonts are ready (and, where it has math, MathJax
has typeset it). Playwright's "networkidle" is not used: it waits for 500 ms without a request,
which a page that is still busy never gives on a loaded machine. A request made later (a font that
MathJax asks for while typesetting, say) is still recorded, because a page's requests are read when
the tour leaves it.

Each theme has one browser context (so one stored theme, one set of routes); a page's own record
(its requests, errors and findings) starts empty when it is opened. The tour (:func:`take_tour`)
runs on each page, in this order, as the tests of tests/test_site.py and tests/test_a11y.py need:

- light theme: what is on the page (text, math, images, weight); the Colab links; axe-core; each
  explorable's controls moved by script, then from the keyboard alone;
- dark theme: the colours of text, explorable labels and captions; axe-core.

Screenshots for a person to look at are taken only on request (:data:`SCREENSHOTS`).

Generous timeouts (:data:`TIMEOUT_MS`) only guard against a hang; no test asserts a speed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pathlib
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHOTS = ROOT / "book" / "_build" / "screenshots"
TIMEOUT_MS = 180_000  # a hang guard for one step in the browser, never a speed check
THEMES = ("light", "dark")
DARK_SHOTS = ("chapters/01_introduction.html", "chapters/02_roofline.html")
SCREENSHOTS = os.environ.get("ACCELBOOK_SCREENSHOTS", "") not in ("", "0")
"""With ACCELBOOK_SCREENSHOTS=1 the tour also saves a full-page screenshot of every page (light theme;
dark for :data:`DARK_SHOTS`) and one of every explorable, for a person to look at."""
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

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


def allowed(text: str) -> bool:
    return any(key in text for key in ALLOWED_CONSOLE)


# -------------------------------------------------------------------------------------------------
# The pages
# -------------------------------------------------------------------------------------------------
def toc_pages() -> list[str]:
    """Every page of book/_toc.yml, as its path in the built site."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [f"{f}.html" for f in files]


def all_pages(html_dir: pathlib.Path) -> list[str]:
    """The table of contents' pages, then the site's own pages that exist (search, index)."""
    pages = toc_pages()
    missing = [p for p in pages if not (html_dir / p).is_file()]
    assert not missing, f"pages of the table of contents not built: {missing}"
    return pages + [p for p in ("search.html", "genindex.html") if (html_dir / p).is_file()]


def shot_name(path: str, theme: str) -> pathlib.Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / (path.replace("/", "__").replace(".html", "") + f"-{theme}.png")


# -------------------------------------------------------------------------------------------------
# Server, browser, and one tab per theme
# -------------------------------------------------------------------------------------------------
def _printer():
    """book/_ext/pdf.py, which serves a built site and starts chromium for the PDF the same way."""
    spec = importlib.util.spec_from_file_location("accelbook_pdf_for_tests", ROOT / "book" / "_ext" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve(html_dir: pathlib.Path):
    """The built site on a local port: yields its base URL (no trailing slash)."""
    with _printer().serve(html_dir) as base:
        yield base.rstrip("/")


def launch():
    """Debian's chromium through Playwright (a context manager yielding the browser)."""
    return _printer().chromium()


SETTLED = """() => document.readyState === 'complete' && document.fonts.status === 'loaded'
  && [...document.images].every(i => i.complete)"""


class Tab:
    """One browser context and page in one theme. :meth:`open` goes to a page and starts its record:
    ``outside`` (requests blocked), ``local`` (requests served), ``errors`` (console errors, page
    errors, responses of 400 or more)."""

    def __init__(self, browser, base: str, theme: str = "light"):
        assert theme in THEMES, theme
        self.base, self.theme, self.path = base, theme, None
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(f"localStorage.setItem('theme', '{theme}');"
                                     f"localStorage.setItem('mode', '{theme}');")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"))
        self.outside, self.errors, self.local = [], [], []

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("data:"):
            self.local.append(url)
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, path: str) -> "Tab":
        self.path = path
        self.outside, self.errors, self.local = [], [], []
        try:
            self.page.goto(f"{self.base}/{path}", wait_until="load")
            self.page.wait_for_function(SETTLED)
            self.typeset()
        except Exception as err:  # name the page: one slow page must say which it was
            raise AssertionError(f"{path} ({self.theme} theme) did not finish loading: {err}") from err
        return self

    def typeset(self):
        if not self.page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
            return  # Sphinx loads MathJax only on pages with math
        self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        self.page.evaluate("() => MathJax.startup.promise")

    def close(self):
        self.context.close()


# -------------------------------------------------------------------------------------------------
# What the tour records on each page
# -------------------------------------------------------------------------------------------------
FACTS = """() => {
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
    colab: [...document.querySelectorAll('a')].map(a => a.href).filter(h => h.includes('colab.research.google.com')),
  };
}"""

COLOURS = """() => {
  const pick = sel => [...document.querySelectorAll(sel)].slice(0, 20).map(e => getComputedStyle(e).color);
  return {bg: getComputedStyle(document.body).backgroundColor, text: pick('main p'),
          labels: pick('.accelbook-explore label, .accelbook-explore output'),
          captions: pick('.accelbook-explore-caption, .accelbook-explore-note')};
}"""

AXE_RUN = """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
  .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                     targets: v.nodes.map(n => n.target.join(' '))})))"""

EXPLORABLES = "() => [...document.querySelectorAll('.accelbook-explore')].map(e => e.id)"

# Set control i of an explorable to another of its values by script (the choice-th one), wait for
# the figure, then put it back: did the figure or caption change, and did it come back?
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

CONTROLS = """(rootId) => {
  const root = document.getElementById(rootId);
  return [...root.querySelectorAll('[data-param]')].map(el => {
    const named = [...(el.labels || [])].map(l => l.textContent.trim()).join(' ')
      || el.getAttribute('aria-label')
      || (el.getAttribute('aria-labelledby') || '').split(' ').map(i => document.getElementById(i))
           .filter(Boolean).map(e => e.textContent.trim()).join(' ');
    return {kind: el.type || el.tagName.toLowerCase(), name: (named || '').trim(), tabindex: el.tabIndex};
  });
}"""

STATE = """(rootId) => {
  const root = document.getElementById(rootId);
  const img = root.querySelector('img.accelbook-explore-figure');
  return {frame: root.getAttribute('data-frame'), src: img.src.length + ':' + img.src.slice(-64), alt: img.alt,
          caption: root.querySelector('.accelbook-explore-caption').innerHTML,
          values: [...root.querySelectorAll('[data-param]')].map(e => e.type === 'checkbox' ? String(e.checked) : e.value),
          focused: [...root.querySelectorAll('[data-param]')].indexOf(document.activeElement)};
}"""

# Sequential focus navigation starts from the explorable's box (focusable by script only, tabindex -1):
# the next Tab goes to its first control.
START_AT = """(rootId) => { const root = document.getElementById(rootId);
  root.setAttribute('tabindex', '-1'); root.focus(); }"""

KEY_AT_END = """([rootId, i]) => { const el = document.getElementById(rootId).querySelectorAll('[data-param]')[i];
  if (el.type === 'range') return +el.value >= +el.max;
  if (el.tagName === 'SELECT') return el.selectedIndex === el.options.length - 1;
  return false; }"""


def move_controls(page, root_id: str) -> dict:
    """Each control of one explorable set by script to its other values until the figure changes,
    and back. {"visible": bool, "moves": [{control, changed, restored, ms, width, height}]}."""
    box = page.locator(f"#{root_id} img.accelbook-explore-figure").bounding_box()
    out = {"visible": bool(box and box["width"] * box["height"]), "moves": []}
    page.locator(f"#{root_id}").scroll_into_view_if_needed()
    n = page.evaluate(f"() => document.getElementById('{root_id}').querySelectorAll('[data-param]').length")
    for i in range(n):
        # try the other values until one changes the figure: a control that changes nothing from
        # the starting state is a bug in the explorable
        for attempt in range(4):
            r = page.evaluate(MOVE, [root_id, i, attempt])
            out["moves"].append(dict(r, control=i))
            if r["changed"]:
                break
    return out


def keyboard(page, root_id: str) -> list[str]:
    """Tab to each control of one explorable and change it with keys; the problems found."""
    problems = []
    controls = page.evaluate(CONTROLS, root_id)
    for i, c in enumerate(controls):
        if not c["name"]:
            problems.append(f"control {i} ({c['kind']}) has no accessible name")
    page.locator(f"#{root_id}").scroll_into_view_if_needed()
    page.evaluate(START_AT, root_id)
    for i, c in enumerate(controls):
        page.keyboard.press("Tab")
        before = page.evaluate(STATE, root_id)
        if before["focused"] != i:
            problems.append(f"Tab does not reach control {i} ({c['kind']} {c['name']!r}): focus on {before['focused']}")
            page.evaluate("([r, i]) => document.getElementById(r).querySelectorAll('[data-param]')[i].focus()",
                          [root_id, i])
        if c["kind"] == "checkbox":
            keys = ["Space"]
        else:  # arrows step through the values, and back from the last one
            keys = ["ArrowLeft", "ArrowUp"] if page.evaluate(KEY_AT_END, [root_id, i]) else ["ArrowRight", "ArrowDown"]
            keys = keys[:1] if c["kind"] == "range" else keys[1:]
        changed = False
        for _ in range(4):  # a value can leave the figure as it was: the next one must not
            for key in keys:
                page.keyboard.press(key)
            page.evaluate("(r) => document.getElementById(r).querySelector('img.accelbook-explore-figure').decode()",
                          root_id)
            after = page.evaluate(STATE, root_id)
            if after["values"][i] == before["values"][i]:
                problems.append(f"{'+'.join(keys)} does not change control {i} ({c['kind']} {c['name']!r})")
                break
            if after["alt"] == before["alt"]:
                problems.append(f"control {i} ({c['name']!r}) changed but the figure's alt text did not")
            if after["src"] != before["src"] or after["caption"] != before["caption"]:
                changed = True
                break
            if c["kind"] == "checkbox":
                break
        if not changed and not any(f"control {i} " in p for p in problems):
            problems.append(f"changing control {i} ({c['kind']} {c['name']!r}) from the keyboard never changes the figure")
    return problems


def _visit(tab: Tab, path: str, axe: pathlib.Path) -> dict:
    """One page in one theme: everything the tests read, in the order that leaves the page's state
    as it was until the keyboard check, which comes last."""
    start = time.perf_counter()
    page = tab.open(path).page
    rec = {"seconds": {"open": time.perf_counter() - start}}
    start = time.perf_counter()
    if tab.theme == "light":
        rec["facts"] = page.evaluate(FACTS)
        if SCREENSHOTS:
            page.screenshot(path=str(shot_name(path, "light")), full_page=True)
    else:
        rec["colours"] = page.evaluate(COLOURS)
        if SCREENSHOTS and path in DARK_SHOTS:
            page.screenshot(path=str(shot_name(path, "dark")), full_page=True)
    rec["seconds"]["read"] = time.perf_counter() - start
    page.add_script_tag(path=str(axe))
    t = time.perf_counter()
    rec["axe"] = page.evaluate(AXE_RUN, AXE_TAGS)
    rec["seconds"]["axe"] = time.perf_counter() - t
    if tab.theme == "light":
        t = time.perf_counter()
        ids = page.evaluate(EXPLORABLES)
        rec["explorables"] = {}
        for root_id in ids:
            rec["explorables"][root_id] = move_controls(page, root_id)
            if SCREENSHOTS:
                page.locator(f"#{root_id}").screenshot(path=str(shot_name(f"{path}-{root_id}", "light")))
        rec["errors_after_moves"] = list(tab.errors)
        rec["keyboard"] = {root_id: keyboard(page, root_id) for root_id in ids}
        rec["seconds"]["explorables"] = time.perf_counter() - t
    rec.update(outside=list(tab.outside), errors=list(tab.errors))
    return rec


def take_tour(browser, base: str, html_dir: pathlib.Path) -> dict:
    """{theme: {page: record}} for every page of :func:`all_pages` in both themes (see the module's
    docstring for what a record holds)."""
    axe = html_dir / "vendor" / "axe-core" / "axe.min.js"
    assert axe.is_file(), "axe-core is missing from the built site: book/_ext/vendor.py fetches it (make vendor)"
    tour = {}
    for theme in THEMES:
        tab = Tab(browser, base, theme)
        try:
            tour[theme] = {}
            for path in all_pages(html_dir):
                tour[theme][path] = _visit(tab, path, axe)
                got = tab.page.evaluate("() => document.documentElement.dataset.theme")
                assert got == theme, f"{path}: opened in the {theme} theme, shows the {got} theme"
        finally:
            tab.close()
    return tour
