"""The notebook edition: every notebook page of the book, rewritten for Colab and plain Jupyter.

The chapters are written in MyST, which only the book's build understands. This script turns each
notebook page listed in ``_toc.yml`` into a notebook that Colab, JupyterLab and Jupyter render as
the website does, and writes it to ``notebooks/`` at the top of the repository:

- A paragraph that quotes glued values becomes a hidden code cell calling
  :func:`accelbook.notebook.render`: the text is shown as Markdown, with each value taken from the
  reader's own run and formatted as the website formats it (``{glue:text}`x:.1f``` becomes the slot
  ``⟪x:.1f⟫``). A sentence the code builds for the device is the one for the reader's device.
- ``{term}`` links to the glossary of the published site, ``{cite}`` reads author–year
  ("[Jia *et al.*, 2018]") linked to the bibliography, ``{doc}`` and ``{ref}`` link to the page and
  section on the site.
- An exercise is a heading ("Exercise 2.1 (Ridge points by hand)", numbered as on the site); its
  solution is collapsed under it (HTML ``<details>``), with any code it runs shown with its output.
  Admonitions are titled block quotes; dropdowns are ``<details>``.
- Code cells are unchanged. The cells the website hides keep their code hidden (Colab's form view,
  JupyterLab's ``source_hidden``); they still run.

Nothing MyST-specific is left in a prose cell: an unknown role or directive is an error here, not a
raw string on the reader's screen. The edition is committed (Colab opens it from GitHub), and
tests/test_edition.py keeps it in step with the chapters.

    python book/_ext/edition.py            # write notebooks/ (what `make book` runs)
    python book/_ext/edition.py --check    # exit 1 if notebooks/ is out of step
    python book/_ext/edition.py --ref SHA --out DIR   # the edition a published site links to

A published site and its Colab notebooks must use the same library: ``--ref`` stamps the install
cell of every notebook with the commit the site was built from (``accelbook @ git+…@SHA`` instead
of the moving main branch) and writes that edition to ``DIR``; the publishing workflow
(``.github/workflows/publish.yml``) pushes it to the repository's ``colab`` branch, and the site's
Colab buttons open it there (``ACCELBOOK_COLAB_REF``, read by accelbook_site.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BOOK = HERE.parent
ROOT = BOOK.parent
OUT = ROOT / "notebooks"
INSTALL = "accelbook @ git+https://github.com/accelbook/accelbook"
"""The requirement every install cell names: the library from the main branch."""

# -- the book: its pages, numbers, labels, glossary and bibliography -------------------------------


def _make_id(text: str) -> str:
    """Sphinx's id for a glossary term (sphinx.util.nodes._make_id): case kept, other runs of
    characters that are not ASCII letters or digits become one '-'."""
    text = unicodedata.normalize("NFKD", " ".join(text.split())).encode("ascii", "ignore").decode()
    return re.sub(r"^[^a-zA-Z]+|[^a-zA-Z0-9]+$", "", re.sub(r"[^a-zA-Z0-9]+", "-", text))


def _first_heading(text: str) -> str:
    m = re.search(r"^# (.+)$", text, re.M)
    if not m:
        raise ValueError("page has no '# ' title")
    return m.group(1).strip()


def _page_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return path.read_text()


@dataclass
class Book:
    """What the conversion needs to know about the whole book."""

    site: str                                    # the published site, ending in '/'
    repo: dict                                   # _config.yml's repository block
    pages: dict = field(default_factory=dict)    # docname -> source path
    titles: dict = field(default_factory=dict)   # docname -> title
    numbers: dict = field(default_factory=dict)  # docname -> chapter number (numbered parts only)
    labels: dict = field(default_factory=dict)   # label -> (docname, link text)
    terms: dict = field(default_factory=dict)    # lowercased term -> anchor id
    cites: dict = field(default_factory=dict)    # bib key -> author-year text

    @classmethod
    def load(cls, book: Path = BOOK) -> "Book":
        config = yaml.safe_load((book / "_config.yml").read_text())
        site = config["html"]["baseurl"].rstrip("/") + "/"
        self = cls(site=site, repo=config["repository"])
        toc = yaml.safe_load((book / "_toc.yml").read_text())
        docs = [(toc["root"], False)]
        for part in toc.get("parts", []):
            docs += [(c["file"], bool(part.get("numbered"))) for c in part["chapters"]]
        number = 0
        for doc, numbered in docs:
            path = next(p for p in (book / f"{doc}.ipynb", book / f"{doc}.md") if p.exists())
            self.pages[doc] = path
            text = _page_text(path)
            self.titles[doc] = _first_heading(text)
            if numbered:
                number += 1
                self.numbers[doc] = number
            # MyST targets name the heading that follows them
            for m in re.finditer(r"^\(([^)\s]+)\)=\s*\n+#+ (.+)$", text, re.M):
                self.labels[m.group(1)] = (doc, m.group(1), m.group(2).strip())
            for k, label in enumerate(re.findall(r"^[`:]{3,}\{exercise\}[^\n]*\n(?::[^\n]*\n)*?:label: (\S+)",
                                                 text, re.M), start=1):
                self.labels[label] = (doc, label, f"Exercise {self.numbers.get(doc, '?')}.{k}")
        glossary = (book / "appendix" / "glossary.md").read_text()
        body = re.search(r"```\{glossary\}\n(.*?)\n```", glossary, re.S).group(1)
        for line in body.splitlines():
            if line.strip() and not line[0].isspace():
                self.terms[line.strip().lower()] = "term-" + _make_id(line.strip())
        self.cites = _cite_labels(book / "references.bib")
        return self

    def url(self, doc: str, anchor: str | None = None) -> str:
        return f"{self.site}{doc}.html" + (f"#{anchor}" if anchor else "")


def _cite_labels(bib: Path) -> dict:
    """key -> the label the site prints for it (sphinxcontrib-bibtex's author_year style)."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author", [])
        names = [" ".join(filter(None, ["\u00a0".join(p.prelast_names), " ".join(p.last_names)]))
                 .replace("{", "").replace("}", "") for p in people]  # "van\u00a0de Geijn", as pybtex ties it
        if not names:
            names = [entry.fields["organization"].replace("{", "").replace("}", "")]
        who = names[0] if len(names) == 1 else (f"{names[0]} and {names[1]}" if len(names) == 2
                                                else f"{names[0]} *et al.*")
        out[key] = f"{who}, {entry.fields['year']}"
    return out


# -- MyST text to Markdown -------------------------------------------------------------------------

ROLE = re.compile(r"\{([a-z][a-z:-]*)\}`([^`]+)`")
FENCE = re.compile(r"^ {0,3}(`{3,}|:{3,})\s*(?:\{([a-z][a-z-]*)\})?\s*(.*?)\s*$")
TARGET = re.compile(r"^\(([^)\s]+)\)=\s*$")
HEADING = re.compile(r"^(#{1,6}) ")
SLOT_IN = re.compile(r"⟪")


def _explicit(text: str) -> tuple[str | None, str]:
    """``'text <target>'`` -> ('text', 'target'); ``'target'`` -> (None, 'target')."""
    m = re.fullmatch(r"(.*?)\s*<([^<>]+)>", text, re.S)
    return (m.group(1), m.group(2)) if m else (None, text)


@dataclass
class Token:
    kind: str          # 'md', 'heading', 'sol_start', 'sol_end'
    text: str = ""


class Converter:
    """Converts the MyST of one page (its markdown cells in order) to Markdown tokens."""

    def __init__(self, book: Book, doc: str):
        self.book, self.doc = book, doc
        self.chapter = book.numbers.get(doc)
        self.exercises = 0
        self.level = 1            # level of the last heading seen
        self.titles: dict = {}    # exercise label -> its heading text

    # inline ---------------------------------------------------------------------------------
    def role(self, m: re.Match) -> str:
        name, arg = m.group(1), m.group(2)
        if name in ("glue", "glue:md", "glue:text"):
            return f"⟪{arg.strip()}⟫"
        if name == "term":
            text, term = _explicit(arg)
            anchor = self.book.terms.get(term.strip().lower())
            if anchor is None:
                raise ValueError(f"{self.doc}: {{term}} {term!r} is not in the glossary")
            return f"[{text or term}]({self.book.url('appendix/glossary', anchor)})"
        if name in ("cite", "cite:p", "cite:t"):
            links = []
            for key in (k.strip() for k in arg.split(",")):
                if key not in self.book.cites:
                    raise ValueError(f"{self.doc}: {{cite}} {key!r} is not in references.bib")
                links.append(f"[{self.book.cites[key]}]({self.book.url('appendix/bibliography', 'cite-' + key)})")
            return "[" + ", ".join(links) + "]"
        if name == "doc":
            text, target = _explicit(arg)
            base = Path(self.doc).parent
            doc = str((base / target).as_posix()) if not target.startswith("/") else target[1:]
            doc = re.sub(r"[^/]+/\.\./", "", doc)
            if doc not in self.book.titles:
                raise ValueError(f"{self.doc}: {{doc}} {target!r} is not a page of the book")
            return f"[{text or self.book.titles[doc]}]({self.book.url(doc)})"
        if name in ("ref", "numref"):
            text, label = _explicit(arg)
            if label not in self.book.labels:
                raise ValueError(f"{self.doc}: {{ref}} {label!r} names no label of the book")
            doc, anchor, title = self.book.labels[label]
            return f"[{text or title}]({self.book.url(doc, anchor)})"
        raise ValueError(f"{self.doc}: role {{{name}}} has no Markdown form in the edition")

    def inline(self, line: str) -> str:
        return ROLE.sub(self.role, line)

    # blocks ---------------------------------------------------------------------------------
    def tokens(self, text: str) -> list[Token]:
        """The tokens of a block of MyST: Markdown, headings and solution boundaries."""
        lines, out, buf, i = text.split("\n"), [], [], 0

        def flush():  # roles may wrap across lines: convert each run of prose lines as one text
            pieces, prose = [], []
            for line, verbatim in buf + [("", True)]:
                if not verbatim:
                    prose.append(line)
                    continue
                if prose:
                    pieces.append(self.inline("\n".join(prose)))
                    prose = []
                pieces.append(line)
            body = "\n".join(pieces[:-1]).strip("\n")
            if body.strip():
                out.append(Token("md", body))
            buf.clear()

        while i < len(lines):
            line = lines[i]
            fence = FENCE.match(line)
            if fence:
                mark, name, arg = fence.groups()
                j = i + 1
                close = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}\s*$")
                while j < len(lines) and not close.match(lines[j]):
                    j += 1
                if j == len(lines):
                    raise ValueError(f"{self.doc}: fence {line!r} is never closed")
                body = lines[i + 1:j]
                i = j + 1
                if name is None:  # a code block: verbatim
                    buf += [(l, True) for l in (line, *body, lines[j])]
                    continue
                options = {}
                while body and re.match(r"^:[a-z-]+:", body[0]):
                    key, _, value = body.pop(0)[1:].partition(":")
                    options[key] = value.strip()
                flush()
                out += self.directive(name, arg, options, "\n".join(body))
                continue
            if TARGET.match(line):
                i += 1
                continue
            heading = HEADING.match(line)
            if heading:
                flush()
                self.level = len(heading.group(1))
                out.append(Token("heading", self.inline(line)))
            else:
                buf.append((line, False))
            i += 1
        flush()
        return out

    def markdown(self, text: str, where: str) -> str:
        """A directive's body as one Markdown text (no headings or solutions inside)."""
        toks = self.tokens(text)
        if any(t.kind != "md" for t in toks):
            raise ValueError(f"{self.doc}: {where} holds a heading or a solution")
        return "\n\n".join(t.text for t in toks)

    def directive(self, name: str, arg: str, options: dict, body: str) -> list[Token]:
        if name == "exercise":
            self.exercises += 1
            number = f"{self.chapter}.{self.exercises}" if self.chapter else str(self.exercises)
            title = f"Exercise {number}" + (f" ({self.inline(arg)})" if arg else "")
            label = options.get("label")
            if label and self.book.labels.get(label, (None, None, None))[2] != f"Exercise {number}":
                raise ValueError(f"{self.doc}: exercise {label!r} is numbered {number} here but not in the book's labels")
            self.titles[label] = title
            level = min(self.level + 1, 6)
            return [Token("heading", "#" * level + " " + title), *self.tokens(body)]
        if name in ("solution-start", "solution"):
            title = self.titles.get(arg.strip())
            if title is None:
                raise ValueError(f"{self.doc}: solution for {arg!r} comes before its exercise")
            head = Token("sol_start", f"Solution to {title}")
            if name == "solution-start":
                return [head]
            return [head, Token("md", self.markdown(body, "a solution")), Token("sol_end")]
        if name == "solution-end":
            return [Token("sol_end")]
        if name in ("admonition", "dropdown", "note", "tip", "warning", "important"):
            title = self.inline(arg) if arg else name.capitalize()
            inner = self.markdown(body, f"the {name} {arg!r}")
            if name == "dropdown" or "dropdown" in options.get("class", "").split():
                return [Token("md", details(title, inner))]
            if re.search(r"^\s*\|", inner, re.M):  # a table: many Markdown renderers drop it inside a quote
                return [Token("md", f"---\n\n**{title}**\n\n{inner}\n\n---")]
            quoted = "\n".join(("> " + l).rstrip() for l in f"**{title}**\n\n{inner}".split("\n"))
            return [Token("md", quoted)]
        raise ValueError(f"{self.doc}: directive {{{name}}} has no Markdown form in the edition")


def _html_inline(text: str) -> str:
    """Inline Markdown in a <summary> (which Markdown does not reach): emphasis and code."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


def details(summary: str, body: str) -> str:
    """A collapsed block: ``<details>`` with Markdown inside (blank lines around it)."""
    return f"<details>\n<summary><b>{_html_inline(summary)}</b></summary>\n\n{body}\n\n</details>"


# -- the notebook ----------------------------------------------------------------------------------

HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}


def _py_string(text: str) -> str:
    """A Python literal of ``text``, raw triple-quoted when that is exact."""
    if '"""' not in text and not text.endswith(("\\", '"')) and "\r" not in text:
        return 'r"""\n' + text + '\n"""'
    return repr(text)


def _blocks(text: str) -> list[str]:
    """Markdown split at blank lines; a code fence, a ``$$`` math block and a ``<details>``
    block stay whole."""
    out, cur, fence, math, details = [], [], None, False, 0
    for line in text.split("\n"):
        s = line.strip()
        if fence is not None:
            cur.append(line)
            if re.fullmatch(rf"{re.escape(fence[0])}{{{len(fence)},}}", s):
                fence = None
            continue
        m = re.match(r"(`{3,}|~{3,})", s)
        if m:
            fence = m.group(1)
            cur.append(line)
            continue
        if s.count("$$") % 2:
            math = not math
        details += s.count("<details") - s.count("</details>")
        if not s and not math and details == 0:
            if cur:
                out.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    if cur:
        out.append("\n".join(cur))
    return out


def _runs(text: str) -> list[tuple[bool, str]]:
    """Consecutive paragraphs grouped by whether they quote a glued value."""
    runs: list[tuple[bool, list[str]]] = []
    for block in _blocks(text):
        has = bool(SLOT_IN.search(block))
        if runs and runs[-1][0] == has:
            runs[-1][1].append(block)
        else:
            runs.append((has, [block]))
    return [(has, "\n\n".join(blocks)) for has, blocks in runs]


def _cell_id(kind: str, source: str, seen: set) -> str:
    base = hashlib.sha1(f"{kind}\n{source}".encode()).hexdigest()[:8]
    cid, n = base, 1
    while cid in seen:
        n += 1
        cid = f"{base}-{n}"
    seen.add(cid)
    return cid


class Edition:
    """Builds the cells of one page's edition."""

    def __init__(self, book: Book, doc: str):
        self.book, self.doc = book, doc
        self.cells: list[dict] = []
        self.solution: list | None = None   # parts of the open solution
        self.summary = ""

    def markdown_cell(self, text: str, new: bool = False) -> None:
        """Markdown, appended to the cell before when that is Markdown too; a heading (``new``)
        starts a cell of its own, so that Colab and JupyterLab make it a section."""
        last = self.cells[-1] if self.cells else None
        if not new and last is not None and last["cell_type"] == "markdown" and not last.get("_solo"):
            last["source"] += "\n\n" + text
        else:
            self.cells.append({"cell_type": "markdown", "metadata": {}, "source": text})

    def code_cell(self, source: str, metadata: dict, hidden: bool) -> None:
        meta = {k: v for k, v in metadata.items() if k not in ("tags", "cellView", "jupyter")}
        if metadata.get("tags"):
            meta["tags"] = list(metadata["tags"])
        if hidden:
            meta["cellView"] = "form"                  # Colab: code folded, output shown
            meta["jupyter"] = {"source_hidden": True}  # JupyterLab and Notebook 7
        self.cells.append({"cell_type": "code", "metadata": meta, "source": source,
                           "execution_count": None, "outputs": []})

    def render_cell(self, parts: list, summary: str | None = None) -> None:
        """A hidden cell that shows ``parts`` with this run's values; committed with the text it
        shows before the notebook runs (slots read "…"), so the prose reads before "Run all"."""
        from accelbook.notebook import Code, preview

        args, objs = [], []
        for kind, text in parts:
            if kind == "md":
                args.append(_py_string(text))
                objs.append(text)
            else:
                shown = kind == "code"
                args.append(f"Code({_py_string(text)}" + ("" if shown else ", shown=False") + ")")
                objs.append(Code(text, shown=shown))
        call = ",\n       ".join(args) + (f",\n       summary={summary!r}" if summary else "")
        imports = "from accelbook.notebook import render" + (", Code" if len(objs) > len([o for o in objs if isinstance(o, str)]) else "")
        self.code_cell(f"{imports}\nrender({call})", {}, hidden=True)
        text = preview(*objs, summary=summary)
        self.cells[-1]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                      "data": {"text/markdown": text, "text/plain": "<IPython.core.display.Markdown object>"}}]

    def prose(self, text: str) -> None:
        """Markdown cells for paragraphs without glued values; a render cell for each run of
        paragraphs that quote them."""
        for has_slot, run in _runs(text):
            if has_slot:
                self.render_cell([("md", run)])
            else:
                self.markdown_cell(run)

    def add(self, token: Token) -> None:
        if token.kind == "sol_start":
            if self.solution is not None:
                raise ValueError(f"{self.doc}: a solution starts inside another")
            self.solution, self.summary = [], token.text
        elif token.kind == "sol_end":
            if self.solution is None:
                raise ValueError(f"{self.doc}: solution-end without a solution-start")
            parts, self.solution = self.solution, None
            if any(k != "md" or SLOT_IN.search(t) for k, t in parts):
                self.render_cell(parts, summary=self.summary)
            else:
                self.markdown_cell(details(self.summary, "\n\n".join(t for _, t in parts)))
        elif self.solution is not None:
            if token.kind == "heading":
                raise ValueError(f"{self.doc}: a heading inside a solution")
            self.solution.append(("md", token.text))
        elif token.kind == "heading":
            self.markdown_cell(token.text, new=True)
        else:
            self.prose(token.text)


def stamp(source: str, ref: str, doc: str = "") -> str:
    """``source`` of an install cell with its requirement pinned to ``ref`` (a commit or tag):
    ``accelbook @ git+https://github.com/accelbook/accelbook@<ref>``. ``ValueError`` if ``ref`` is
    not a plain git ref or the cell does not name the requirement exactly once."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}", ref or "") or ".." in ref:
        raise ValueError(f"ref={ref!r} is not a commit, tag or branch name")
    quoted = f'"{INSTALL}"'
    if source.count(quoted) != 1:
        raise ValueError(f"{doc}: the install cell must name {quoted} exactly once to be stamped")
    return source.replace(quoted, f'"{INSTALL}@{ref}"')


def edition(book: Book, doc: str, ref: str | None = None) -> dict:
    """The edition of one notebook page, as an nbformat 4 dictionary; with ``ref``, its install
    cell installs the library at that commit (:func:`stamp`)."""
    source = json.loads(book.pages[doc].read_text())
    conv, ed = Converter(book, doc), Edition(book, doc)
    number = book.numbers.get(doc)
    where = f"chapter {number} of" if number else "a page of"
    run = ("Run every cell (in Colab: Runtime → Run all): the numbers in the text, shown as … until "
           "then, become the ones your own device gives." if number else
           "Run every cell (in Colab: Runtime → Run all) to fill in its values, shown as … until then.")
    ed.markdown_cell(f"*This notebook is {where} [GPUs, TPUs, and accelerators]({book.site}), "
                     f"[read on the website]({book.url(doc)}). {run}*")
    ed.cells[-1]["_solo"] = True
    stamped = False
    for cell in source["cells"]:
        text = "".join(cell["source"])
        if ref is not None and not stamped and cell["cell_type"] == "code" and INSTALL in text:
            text, stamped = stamp(text, ref, doc), True
        if cell["cell_type"] == "markdown":
            for token in conv.tokens(text):
                ed.add(token)
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if ed.solution is not None:  # runs inside the collapsed block; shown unless the site hides it
            ed.solution.append(("code" if not tags & {"remove-input", "remove-cell"} else "hidden-code", text))
            continue
        ed.code_cell(text, cell.get("metadata", {}), hidden=bool(tags & HIDDEN_TAGS))
    if ed.solution is not None:
        raise ValueError(f"{doc}: a solution is never closed")
    if ref is not None and not stamped:
        raise ValueError(f"{doc}: no install cell to stamp (none names {INSTALL!r})")
    seen: set = set()
    cells = []
    for c in ed.cells:
        c.pop("_solo", None)
        src = c["source"]
        c["id"] = _cell_id(c["cell_type"], src, seen)
        c["source"] = src.splitlines(keepends=True)
        cells.append({k: c[k] for k in ("cell_type", "execution_count", "id", "metadata", "outputs", "source") if k in c})
    meta = {
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def notebook_pages(book: Book) -> list[str]:
    return [doc for doc, path in book.pages.items() if path.suffix == ".ipynb"]


def target(doc: str) -> str:
    """Where the edition of ``doc`` lives, relative to the repository root."""
    return f"notebooks/{Path(doc).name}.ipynb"


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def build(book: Book | None = None, ref: str | None = None) -> dict:
    """{relative path: file text} of the whole edition (stamped with ``ref`` if given)."""
    book = book or Book.load()
    return {target(doc): dumps(edition(book, doc, ref)) for doc in notebook_pages(book)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if notebooks/ is out of step")
    parser.add_argument("--ref", help="stamp every install cell with this commit or tag (needs --out)")
    parser.add_argument("--out", type=Path, help="with --ref: the folder to write the stamped edition to")
    args = parser.parse_args(argv)
    if (args.ref is None) != (args.out is None) or (args.ref and args.check):
        parser.error("--ref and --out go together, and without --check")
    if args.ref is not None:
        files = build(ref=args.ref)
        out = args.out.resolve()
        if out == OUT.resolve():
            parser.error("--out must not be notebooks/: the committed edition installs from main")
        for p, text in files.items():
            path = out / Path(p).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        print(f"notebook edition stamped with {args.ref}: {len(files)} notebooks in {out}")
        return 0
    files = build()
    stale = [p for p, text in files.items() if not (ROOT / p).exists() or (ROOT / p).read_text() != text]
    extra = sorted(str(p.relative_to(ROOT)) for p in OUT.glob("*.ipynb") if str(p.relative_to(ROOT)) not in files)
    if args.check:
        for p in stale + extra:
            print(f"out of step: {p}")
        return 1 if stale or extra else 0
    OUT.mkdir(exist_ok=True)
    for p in extra:
        (ROOT / p).unlink()
    for p in stale:
        (ROOT / p).write_text(files[p])
    print(f"notebook edition: {len(files)} notebooks in {OUT.relative_to(ROOT)}/ "
          f"({len(stale)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
