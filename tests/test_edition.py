"""The notebook edition (book/_ext/edition.py, notebooks/): what Colab and Jupyter readers open.

- The conversion, on small MyST texts with a made-up book: each role and directive the chapters use
  becomes plain Markdown; code blocks stay verbatim; an unknown role or directive, a dangling target
  or an unclosed fence is an error, never raw text on the reader's screen.
- The committed edition is what the chapters generate now (in step), no prose cell holds MyST, and
  every exercise is a numbered heading followed by its collapsed solution.
- accelbook.notebook.fill formats a slot as myst-nb formats ``{glue:text}`` (Python's ``format``);
  render() in a real kernel fills a paragraph shown before its value was glued once the value
  arrives.
- Against the clean build of the book: every link the edition makes into the site lands on a page
  and an anchor that exist, and each citation reads as the site prints it.

Executing every edition in Colab's package versions is tests/test_versions.py (the colab lane).
"""

from __future__ import annotations

import ast
import html
import json
import pathlib
import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from accelbook import notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import edition  # noqa: E402

BOOK = edition.Book.load()
EDITIONS = {doc: ROOT / edition.target(doc) for doc in edition.notebook_pages(BOOK)}
RENDER = "from accelbook.notebook import render"
MYST_LEFT = [
    (re.compile(r"\{[a-z][a-z:-]*\}`"), "a role"),
    (re.compile(r"^\s*(`{3,}|:{3,})\s*\{", re.M), "a directive"),
    (re.compile(r"^\s*:{3,}", re.M), "a colon fence"),
    (re.compile(r"^\([^)\s]+\)=\s*$", re.M), "a target"),
    (re.compile(r"^:(class|label|name):", re.M), "a directive option"),
]


# -- the conversion, on made-up text ---------------------------------------------------------------

def fake_book() -> edition.Book:
    book = edition.Book(site="https://example.org/book/", repo={})
    book.titles = {"intro": "Welcome", "chapters/01_a": "Chapter A", "appendix/glossary": "Glossary"}
    book.numbers = {"chapters/01_a": 1}
    book.labels = {"a-ex-one": ("chapters/01_a", "a-ex-one", "Exercise 1.1"),
                   "book-map": ("intro", "book-map", "The map")}
    book.terms = {"roofline": "term-roofline", "flop": "term-FLOP"}
    book.cites = {"jia2018": "Jia *et al.*, 2018", "nv25a": "NVIDIA, 2025a"}
    return book


def convert(text: str, doc: str = "chapters/01_a") -> list:
    return [(t.kind, t.text) for t in edition.Converter(fake_book(), doc).tokens(text)]


def test_roles_become_links_and_slots():
    [(kind, text)] = convert("A {term}`roofline`, a {term}`floating-point op <FLOP>`, "
                             "{cite}`jia2018,nv25a`, {doc}`../intro`, {ref}`planned <book-map>`, "
                             "{ref}`a-ex-one`, {glue:md}`name` and {glue:text}`x:.1f`.")
    site = "https://example.org/book/"
    assert kind == "md"
    assert text == (f"A [roofline]({site}appendix/glossary.html#term-roofline), a [floating-point op]"
                    f"({site}appendix/glossary.html#term-FLOP), [[Jia *et al.*, 2018]"
                    f"({site}appendix/bibliography.html#cite-jia2018), [NVIDIA, 2025a]"
                    f"({site}appendix/bibliography.html#cite-nv25a)], [Welcome]({site}intro.html), "
                    f"[planned]({site}intro.html#book-map), [Exercise 1.1]({site}chapters/01_a.html#a-ex-one), "
                    "⟪name⟫ and ⟪x:.1f⟫.")


def test_exercise_is_a_numbered_heading_and_its_solution_is_bracketed():
    text = ("## Exercises\n\n```{exercise} One\n:label: a-ex-one\n\nDo {glue:text}`n:d` things.\n```\n\n"
            "```{solution-start} a-ex-one\n:class: dropdown\n```\n\nBecause.\n\n```{solution-end}\n```\n")
    assert convert(text) == [("heading", "## Exercises"), ("heading", "### Exercise 1.1 (One)"),
                             ("md", "Do ⟪n:d⟫ things."), ("sol_start", "Solution to Exercise 1.1 (One)"),
                             ("md", "Because."), ("sol_end", "")]


def test_admonitions_are_titled_quotes_and_dropdowns_collapse_nested():
    text = (":::{admonition} Check\n:class: tip\n\nA {term}`roofline`?\n\n"
            "```{dropdown} Answer\nYes.\n```\n:::\n")
    [(kind, md)] = convert(text)
    assert md.splitlines() == [
        "> **Check**", ">", "> A [roofline](https://example.org/book/appendix/glossary.html#term-roofline)?",
        ">", "> <details>", "> <summary><b>Answer</b></summary>", ">", "> Yes.", ">", "> </details>"]
    [(kind, md)] = convert(":::{admonition} Answers\n:class: dropdown\n\nNo.\n:::\n")
    assert md == "<details>\n<summary><b>Answers</b></summary>\n\nNo.\n\n</details>"


def test_a_role_wrapped_across_lines_is_converted():
    [(kind, text)] = convert("several chips ({ref}`planned\nchapter <book-map>`), or {term}`a\nroofline <roofline>`.")
    assert text == ("several chips ([planned\nchapter](https://example.org/book/intro.html#book-map)), or "
                    "[a\nroofline](https://example.org/book/appendix/glossary.html#term-roofline).")


def test_code_blocks_stay_verbatim_and_targets_go():
    text = "(a-target)=\n## Title\n\n```python\nx = '{term}`roofline`'\n```\n"
    assert convert(text) == [("heading", "## Title"), ("md", "```python\nx = '{term}`roofline`'\n```")]


@pytest.mark.parametrize("text, message", [
    ("{numref}`fig-x`", "names no label"),
    ("{eq}`e1`", "role {eq}"),
    ("{term}`warp drive`", "not in the glossary"),
    ("{cite}`nobody1999`", "not in references.bib"),
    ("{doc}`missing`", "not a page"),
    ("```{figure} x.png\n```", "directive {figure}"),
    ("```{note}\nopen", "never closed"),
    ("```{solution-start} a-ex-one\n```", "before its exercise"),
])
def test_what_has_no_markdown_form_is_an_error(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        convert(text)


def test_a_solution_collects_prose_and_code_into_one_collapsed_render_cell():
    ed = edition.Edition(fake_book(), "chapters/01_a")
    for tok in [edition.Token("sol_start", "Solution to Exercise 1.1"), edition.Token("md", "First."),
                edition.Token("sol_end")]:
        ed.add(tok)
    assert ed.cells[-1]["source"] == "<details>\n<summary><b>Solution to Exercise 1.1</b></summary>\n\nFirst.\n\n</details>"
    ed.add(edition.Token("sol_start", "Solution to Exercise 1.2"))
    ed.add(edition.Token("md", "Then ⟪x:.2f⟫."))
    ed.solution.append(("code", 'print("hi")'))
    ed.add(edition.Token("sol_end"))
    cell = ed.cells[-1]
    assert cell["cell_type"] == "code" and cell["metadata"]["cellView"] == "form"
    call = _render_calls(cell["source"])[0]
    assert call["summary"] == "Solution to Exercise 1.2"
    assert call["parts"] == [("md", "Then ⟪x:.2f⟫."), ("code", 'print("hi")')]


# -- the committed edition -------------------------------------------------------------------------

def _render_calls(source: str) -> list[dict]:
    """Each ``render(...)`` call of a cell: its Markdown and Code parts, and its summary."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "render":
            parts = []
            for arg in node.args:
                if isinstance(arg, ast.Constant):
                    parts.append(("md", arg.value.strip("\n")))
                else:
                    assert isinstance(arg, ast.Call) and arg.func.id == "Code", ast.dump(arg)
                    shown = all(k.value.value for k in arg.keywords if k.arg == "shown")
                    parts.append(("code" if shown else "hidden-code", arg.args[0].value.strip("\n")))
            summary = next((k.value.value for k in node.keywords if k.arg == "summary"), None)
            calls.append({"parts": parts, "summary": summary})
    return calls


def _prose(nb: dict) -> list[str]:
    """Every prose text of an edition: Markdown cells and the Markdown parts of render cells."""
    out = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            out.append(src)
        elif "render(" in src:
            out += [t for call in _render_calls(src) for kind, t in call["parts"] if kind == "md"]
            out += [call["summary"] for call in _render_calls(src) if call["summary"]]
    return out


def test_edition_is_in_step_with_the_chapters():
    files = edition.build(BOOK)
    assert sorted(files) == sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb")), \
        "notebooks/ holds other files than the edition of the book's notebook pages"
    stale = [p for p, text in files.items() if (ROOT / p).read_text() != text]
    assert not stale, f"out of step with the chapters (run `make edition`): {stale}"


@pytest.mark.parametrize("doc", sorted(EDITIONS), ids=lambda d: pathlib.Path(d).name)
def test_no_myst_is_left_in_any_prose_cell(doc):
    nb = json.loads(EDITIONS[doc].read_text())
    for text in _prose(nb):
        for pattern, what in MYST_LEFT:
            m = pattern.search(text)
            assert not m, f"{doc}: {what} left in the prose: {text[max(0, m.start() - 80):m.end() + 80]!r}"
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            assert "⟪" not in src, f"{doc}: a slot in a Markdown cell, which nothing fills"
        elif src.startswith(RENDER):  # committed with the text it shows before the notebook runs
            [out] = cell["outputs"]
            text = out["data"]["text/markdown"]
            assert text.strip() and "⟪" not in text, f"{doc}: {src[:120]!r} shows {text[:200]!r} before running"
            for pattern, what in MYST_LEFT:
                assert not pattern.search(text), f"{doc}: {what} in the text shown before running"
        else:
            assert not cell.get("outputs"), f"{doc}: a code cell committed with outputs"


@pytest.mark.parametrize("doc", sorted(d for d in EDITIONS if d in BOOK.numbers), ids=lambda d: pathlib.Path(d).name)
def test_every_exercise_is_a_numbered_heading_with_its_solution_collapsed_under_it(doc):
    source = json.loads(BOOK.pages[doc].read_text())
    n_source = sum(len(re.findall(r"^[`:]{3,}\{exercise\}", "".join(c["source"]), re.M))
                   for c in source["cells"] if c["cell_type"] == "markdown")
    assert n_source >= 4, f"{doc}: {n_source} exercises in the chapter"
    cells = json.loads(EDITIONS[doc].read_text())["cells"]
    heads = [(i, m) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             for m in [re.match(r"#{2,6} Exercise (\d+)\.(\d+) \((.+)\)$", "".join(c["source"]).split("\n")[0])] if m]
    chapter = BOOK.numbers[doc]
    assert [(int(m.group(1)), int(m.group(2))) for _, m in heads] == [(chapter, k) for k in range(1, n_source + 1)]
    for k, (i, m) in enumerate(heads):
        end = heads[k + 1][0] if k + 1 < len(heads) else len(cells)
        title = f"Solution to Exercise {m.group(1)}.{m.group(2)} ({m.group(3)})"
        found = []
        for c in cells[i:end]:
            src = "".join(c["source"])
            if c["cell_type"] == "markdown" and f"<summary><b>{edition._html_inline(title)}</b></summary>" in src:
                found.append(src.index("<details>") < src.index("<summary>") < src.index("</details>"))
            elif c["cell_type"] == "code" and "render(" in src:
                found += [True for call in _render_calls(src) if call["summary"] == title]
        assert found == [True], f"{doc}: {title}: collapsed solutions found {found}"


def test_edition_cells_keep_every_code_cell_of_the_chapter_in_order():
    for doc, path in EDITIONS.items():
        source = ["".join(c["source"]) for c in json.loads(BOOK.pages[doc].read_text())["cells"]
                  if c["cell_type"] == "code"]
        cells = json.loads(path.read_text())["cells"]
        kept = []
        for c in cells:
            src = "".join(c["source"])
            if c["cell_type"] != "code":
                continue
            if src.startswith(RENDER):
                kept += [t for call in _render_calls(src) for kind, t in call["parts"] if kind != "md"]
            else:
                kept.append(src)
        assert [s.strip("\n") for s in kept] == [s.strip("\n") for s in source], doc


# -- the runtime: fill and render ------------------------------------------------------------------

@pytest.mark.parametrize("value, spec", [(3.14159, ".2f"), (1234567.0, ",.0f"), (42, "d"), (0.125, ".1%"),
                                         (2.5e-7, ".3g"), (7, ".1f")])
def test_fill_formats_a_slot_as_python_format_does(value, spec):
    text, missing = notebook.fill(f"x = ⟪v:{spec}⟫ s", {"v": value})
    assert text == f"x = {format(value, spec)} s" and missing == []


def test_fill_inserts_strings_as_markdown_and_marks_what_is_missing():
    text, missing = notebook.fill("⟪a⟫, ⟪b⟫, ⟪n⟫ and ⟪c:.1f⟫; ⟪b⟫", {"a": "**1 GB/s**", "n": 0.1})
    assert text == "**1 GB/s**, …, 0.1 and …; …" and missing == ["b", "c", "b"]
    with pytest.raises(ValueError, match="template"):
        notebook.fill("⟪a:d⟫", {"a": "text"})


def test_render_in_a_kernel_fills_a_paragraph_once_its_value_is_glued(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "from accelbook.notebook import glue, render, Code",
        'render("Peak ⟪p:.1f⟫ and ⟪later⟫.")',
        'glue("p", 12.345)\nglue("later", "**soon**")',
        'render("Why.", Code("y = 6 * 7\\nprint(y)"), "So ⟪p:.0f⟫.", summary="Solution to Exercise 9.1")',
        "print(y)",
        'from accelbook.notebook import show\nrender(Code("show(\'| a |\\\\n|---|\\\\n| 1 |\')"), summary="S")',
    )]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    md = lambda cell: [o["data"]["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {})]
    assert md(nb.cells[1]) == ["Peak 12.3 and **soon**."]  # updated in place by the later glue
    [solution] = md(nb.cells[3])
    assert solution == ("<details>\n<summary><b>Solution to Exercise 9.1</b></summary>\n\nWhy.\n\n"
                        "```python\ny = 6 * 7\nprint(y)\n```\n\n*Output:*\n\n```text\n42\n```\n\nSo 12.\n\n</details>")
    assert nb.cells[4].outputs[0]["text"] == "42\n"  # the solution's code ran in the notebook's namespace
    [table] = md(nb.cells[5])  # a displayed table stays inside the collapsed block
    assert table.endswith("*Output:*\n\n| a |\n|---|\n| 1 |\n\n</details>") and len(nb.cells[5].outputs) == 1


# -- against the built site ------------------------------------------------------------------------

LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def _ids(page: pathlib.Path, cache: dict) -> set:
    if page not in cache:
        cache[page] = set(re.findall(r'\bid="([^"]+)"', page.read_text()))
    return cache[page]


def test_every_link_into_the_site_lands_on_a_page_and_anchor_of_the_build(built_book):
    proc, html_dir = built_book
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids, checked = {}, 0
    for doc, path in EDITIONS.items():
        for text in _prose(json.loads(path.read_text())):
            for url in LINK.findall(text):
                if not url.startswith(BOOK.site):
                    continue
                page, _, anchor = url[len(BOOK.site):].partition("#")
                page = page or "index.html"
                assert (html_dir / page).is_file(), f"{doc}: {url}: no such page in the build"
                if anchor:
                    assert anchor in _ids(html_dir / page, ids), f"{doc}: {url}: no such anchor"
                checked += 1
    assert checked > 300, checked


def test_each_citation_reads_as_the_site_prints_it(built_book):
    _proc, html_dir = built_book
    printed = {}
    for page in html_dir.rglob("*.html"):
        for key, text in re.findall(r'href="[^"]*bibliography\.html#cite-([^"]+)"[^>]*>(.*?)</a>', page.read_text()):
            printed.setdefault(key, set()).add(html.unescape(re.sub(r"</?em>", "*", text)))
    assert len(printed) >= 40, sorted(printed)
    for key, texts in printed.items():
        assert texts == {BOOK.cites[key]}, (key, texts, BOOK.cites[key])


def test_make_book_writes_the_edition_first():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^book:[^\n]*\bedition\b", makefile, re.M), "`make book` must regenerate the edition"
    assert re.search(r"^edition:[^\n]*\n\t[^\n]*book/_ext/edition\.py", makefile, re.M)
