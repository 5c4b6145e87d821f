"""No stray output, ever: what a reader sees on a built page is prose, figures and tables the book
meant to show, never a Python repr.

Two checks over the clean build of tests/conftest.py:
- the executed notebooks (myst-nb's `jupyter_execute` copies): a cell whose input the page hides
  (tags remove-input, remove-cell, hide-input) must not end in an `execute_result`: its value
  would be printed on the page with no code above it to explain it; and no cell anywhere may end
  in a value that has only a plain-text repr (`50257`, `{'NVIDIA T4': 3.2e+11}`): a value meant
  for the reader is printed in words or shown as a table;
- the rendered pages, code blocks and math left out: no object reprs (`object at 0x`,
  `IPython.core.display`), no `nan`/`inf`, and no float with more than six significant digits
  (an unformatted number such as 42.666666666666664).

The scanners are plain functions, tested here on small made-up inputs so the checks can fail.
"""

import html
import json
import pathlib
import re

import pytest

HIDDEN_TAGS = {"remove-input", "remove-cell", "hide-input"}

# Text a reader must never see. Words are matched whole, so "infer", "nano" or "Infinity" pass.
REPRS = [re.compile(p) for p in (r"object at 0x[0-9a-fA-F]+", r"IPython\.core\.display",
                                 r"(?<![\w.-])-?nan(?![\w.])", r"(?<![\w.-])-?inf(?![\w.])")]
# A decimal number (not part of a dotted version such as 3.10.0 or an address such as 1.2.3.4).
NUMBER = re.compile(r"(?<![\w./:-])(\d+)\.(\d+)(?:[eE][+-]?\d+)?(?![\w.]*\d)")


def significant_digits(integer: str, fraction: str) -> int:
    """Significant digits of the decimal integer.fraction as written (trailing zeros count)."""
    digits = (integer + fraction).lstrip("0")
    return len(digits)


def stray_results(notebook: dict) -> list[str]:
    """Describe every execute_result of an executed notebook that puts a bare value on the page:
    any in a hidden-input cell, and any anywhere whose only representation is plain text."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        for output in cell.get("outputs", []):
            if output.get("output_type") != "execute_result":
                continue
            data = output.get("data", {})
            shown = "".join(data.get("text/plain", ""))[:80]
            if tags & HIDDEN_TAGS:
                found.append(f"cell {index} ({', '.join(sorted(tags & HIDDEN_TAGS))}) shows {shown!r}")
            elif set(data) <= {"text/plain"}:
                found.append(f"cell {index} shows a bare repr {shown!r}")
    return found


def visible_text(page_html: str) -> str:
    """The text a reader reads on a built page: code inputs, math, scripts and styles removed."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page_html)
    # Code cell inputs (the reader chose to see code) and inline code are not prose.
    text = re.sub(r'(?is)<div class="cell_input[^"]*".*?</pre>\s*</div>\s*</div>', " ", text)
    text = re.sub(r"(?is)<code\b.*?</code>", " ", text)
    # Math is typeset by MathJax from its TeX source.
    text = re.sub(r'(?is)<(span|div) class="math[^"]*">.*?</\1>', " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return html.unescape(text)


def stray_text(text: str) -> list[str]:
    """Reprs and unformatted floats in a page's visible text, each with a little context."""
    found = []
    for pattern in REPRS:
        for m in pattern.finditer(text):
            found.append(text[max(0, m.start() - 40):m.end() + 40].replace("\n", " "))
    for m in NUMBER.finditer(text):
        if significant_digits(m.group(1), m.group(2)) > 6:
            found.append(text[max(0, m.start() - 40):m.end() + 40].replace("\n", " "))
    return found


# --- the scanners, on made-up inputs ------------------------------------------------------------

def _cell(tags, outputs):
    return {"cell_type": "code", "metadata": {"tags": tags}, "outputs": outputs, "source": ""}


def test_stray_results_finds_values_printed_under_hidden_inputs_and_bare_reprs():
    result = {"output_type": "execute_result", "data": {"text/plain": "42.666666666666664"}}
    table = {"output_type": "execute_result", "data": {"text/plain": "<Markdown>", "text/markdown": "|a|"}}
    glued = {"output_type": "display_data", "data": {"text/plain": "3.5"}}
    notebook = {"cells": [_cell(["remove-input"], [result]), _cell([], [table]),
                          _cell(["hide-input"], [glued]), _cell(["remove-cell"], [table]),
                          _cell([], [result])]}
    found = stray_results(notebook)
    assert [f.split(" ")[1] for f in found] == ["0", "3", "4"], found
    assert "42.66" in found[0] and "bare repr" in found[2]


@pytest.mark.parametrize("text,bad", [
    ("Occupancy is <IPython.core.display.Markdown object> on CC 9.0", True),
    ("<accelbook.specs.Chip object at 0x7f3a2c1d9e10>", True),
    ("the program moved nan× more bytes", True),
    ("a bound of -inf seconds", True),
    ("a rate of 42.666666666666664 FLOP/s", True),
    ("2.3345947265625", True),
    ("1.2345678e-05 s", True),
    ("the error is 1.7e-03, of the order of 3.9e-03", False),
    ("jax 0.4.33 and matplotlib 3.10.0 on Python 3.11", False),
    ("an infinite loop, inference, NaN inputs are rejected, nanoseconds", False),
    ("the H100 reaches 989.4 TFLOP/s, 3.35 TB/s, ridge 295.2", False),
    ("exactly 123456.7 bytes", True),
])
def test_stray_text_flags_reprs_and_long_floats_only(text, bad):
    assert bool(stray_text(text)) is bad, stray_text(text)


def test_visible_text_leaves_out_code_and_math():
    page = ('<p>Prose 1.5 GB.</p><div class="cell_input docutils container"><div class="highlight">'
            '<pre>x = 42.666666666666664</pre>\n</div>\n</div><span class="math notranslate nohighlight">'
            '\\(0.333333333\\)</span><p>done</p><code>nan</code>')
    text = visible_text(page)
    assert "Prose 1.5 GB." in text and "done" in text
    assert "42.666" not in text and "0.3333" not in text and "nan" not in text


# --- the built book -----------------------------------------------------------------------------

def _executed(html_dir: pathlib.Path):
    return sorted((html_dir.parent / "jupyter_execute").rglob("*.ipynb"))


def test_no_cell_prints_a_stray_value(built_book):
    proc, html_dir = built_book
    notebooks = _executed(html_dir)
    assert len(notebooks) >= 6, f"executed notebooks not found under {html_dir.parent}"
    problems = {nb.name: stray_results(json.loads(nb.read_text())) for nb in notebooks}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1)


def test_no_page_shows_a_repr_or_an_unformatted_number(built_book):
    proc, html_dir = built_book
    pages = sorted(html_dir.rglob("*.html"))
    pages = [p for p in pages if p.parent.name in ("chapters", "appendix") or p.name == "intro.html"]
    assert len(pages) >= 8
    problems = {p.name: stray_text(visible_text(p.read_text())) for p in pages}
    problems = {k: v[:10] for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
