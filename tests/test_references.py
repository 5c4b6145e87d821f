"""The bibliography: every citation label on a page names one entry.

The book cites author–year ("[The JAX authors, 2025b]"), so two entries with the same author and
year need a letter after the year; otherwise a sentence reads "[The JAX authors, 2025] and
[The JAX authors, 2025]" and the reader cannot tell which document is meant.
"""

import collections
import pathlib
import re

BIB = pathlib.Path(__file__).resolve().parents[1] / "book" / "references.bib"


def labels(text: str) -> dict:
    """Map each (author, year) label of a .bib text to the keys of the entries that carry it."""
    found = collections.defaultdict(list)
    for m in re.finditer(r"@\w+\{([^,]+),(.*?)\n\}", text, re.S):
        author = re.search(r"\b(?:author|organization)\s*=\s*\{(.*?)\},?\s*\n", m.group(2), re.S)
        year = re.search(r"\byear\s*=\s*\{?([0-9]{4}[a-z]?)\}?", m.group(2))
        name = author.group(1).replace("{", "").replace("}", "").strip() if author else None
        found[(name, year.group(1) if year else None)].append(m.group(1))
    return found


def test_labels_are_read_from_entries():
    text = ("@misc{a,\n  author = {{NVIDIA}},\n  year = {2025},\n}\n"
            "@misc{b,\n  author = {NVIDIA},\n  year = {2025},\n}\n"
            "@misc{c,\n  author = {{NVIDIA}},\n  year = {2025a},\n}\n")
    assert labels(text)[("NVIDIA", "2025")] == ["a", "b"]  # braces do not change the printed name
    assert labels(text)[("NVIDIA", "2025a")] == ["c"]


def test_every_author_year_label_is_unique():
    found = labels(BIB.read_text())
    clashes = {k: v for k, v in found.items() if len(v) > 1}
    assert not clashes, f"same author and year, add a letter to the year (2025a, 2025b): {clashes}"
    # a lettered year needs a sibling: "2024b" with no "2024a" reads like a missing entry
    lone = [k for k in found if k[1] and k[1][-1].isalpha()
            and not any(o[0] == k[0] and o[1] != k[1] and o[1][:4] == k[1][:4] for o in found)]
    assert not lone, f"a letter after the year with no other entry of that author and year: {lone}"
