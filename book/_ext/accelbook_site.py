"""Sphinx extension of the book: explorables in their static form, and JavaScript served locally.

- Sets ``ACCELBOOK_EXPLORE=static`` for the build, before any notebook runs. The kernels that
  execute the chapters inherit it, so :mod:`accelbook.explore` draws every explorable ahead of time
  and the page can be driven without a kernel.
- Points each page's Colab button at the page's notebook edition (``notebooks/``, written by
  edition.py), which Colab renders as the site does, instead of at the MyST source. A published
  build sets ``ACCELBOOK_COLAB_REF`` (the workflow sets ``colab``, the branch that holds the
  edition stamped with the site's own commit), so the notebooks a reader opens install the library
  the site was built with; without it the buttons open the edition on the repository's branch.
- Serves MathJax, RequireJS and the ipywidgets HTML manager from the site's own ``vendor/`` folder
  (fetched by vendor.py, see vendor.json) so that a page makes no request outside the book. When they
  could not be fetched, the build goes on with the CDN defaults and says so.
- Gives every figure alternative text (:class:`FigureAltText`): a figure's output carries, beside its
  PNG, a plain-text description made by ``accelbook.plots.style.describe`` from the figure itself
  (titles, axes and units, legend entries and their colours); it becomes the image's ``alt``. An
  animation player (``FuncAnimation.to_jshtml``) gets its cell's ``"accelbook": {"alt": ...}``
  metadata as the alternative text of its picture and a name for its frame slider.
- Fixes what the accessibility check (tests/test_a11y.py, axe-core) finds in the HTML of the
  packages the book is built with, where our own code can: the "Show code cell source" toggles of
  myst-nb name themselves by their visible text (:func:`visit_hide_cell`), and the theme's search
  button and colour-mode switch are given names that match what they show (:func:`theme_templates`).
"""

from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vendor  # noqa: E402  (book/_ext/vendor.py)

logger = logging.getLogger(__name__)

MATHJAX = "vendor/mathjax/tex-mml-chtml.js"
REQUIREJS = "vendor/requirejs/require.js"
WIDGETS = "vendor/html-manager/embed-amd.js"


def _local(path: str) -> str:
    # Sphinx puts a relative script path under _static/; step out of it to the site root.
    return "../" + path


def configure(app, config) -> None:
    why = vendor.fetch()
    if why is not None:
        logger.info(f"[accelbook] {why}: pages load MathJax and the widget manager from CDNs")
        return
    config.html_extra_path = list(config.html_extra_path) + [str(vendor.TARGET)]
    config.mathjax_path = _local(MATHJAX)
    config.nb_ipywidgets_js = {
        _local(REQUIREJS): {},
        _local(WIDGETS): {"data-jupyter-widgets-cdn": "https://cdn.jsdelivr.net/npm/"},
    }
    logger.info("[accelbook] MathJax and the widget manager are served from the book (vendor/)")


def colab_opens_the_edition(app, pagename, templatename, context, doctree) -> None:
    """Runs after sphinx-book-theme built the launch buttons (priority 501): the Colab link of a
    notebook page opens its edition."""
    import edition  # noqa: PLC0415  (book/_ext/edition.py)

    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if button.get("text") == "Colab" and "/blob/" in button.get("url", ""):
                head = button["url"].split("/blob/")[0]
                branch = (os.environ.get("ACCELBOOK_COLAB_REF")
                          or app.config.html_theme_options.get("repository_branch", "main"))
                button["url"] = f"{head}/blob/{branch}/{edition.target(pagename)}"


FIGURE_REPR = "<Figure size"  # Matplotlib's own plain text for a figure: not a description
ANIMATION_IMG = re.compile(r'<img id="_anim_img([0-9a-f]+)"')


def _plain_text(container) -> str:
    return "".join(n.astext() for n in container.findall(nodes.literal_block)).strip()


class FigureAltText(SphinxPostTransform):
    """The alternative text of the figures of notebook pages, from what each cell emits.

    Runs before myst-nb picks one representation of each output (its ``SelectMimeType``, priority
    4), while the output still holds both its PNG and its plain text. An image whose ``alt`` the
    cell set (myst-nb's ``mystnb: image: alt:`` metadata) keeps it."""

    default_priority = 3

    def run(self, **kwargs) -> None:
        for bundle in self.document.findall(nodes.container):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            by_type = {c.get("mime_type"): c for c in bundle.children if isinstance(c, nodes.container)}
            text = _plain_text(by_type["text/plain"]) if "text/plain" in by_type else ""
            if not text or text.startswith("<"):  # a repr such as <Figure size 700x460 with 1 Axes>
                continue
            for mime, container in by_type.items():
                if mime and mime.startswith("image/"):
                    for image in container.findall(nodes.image):
                        if not image.get("alt"):
                            image["alt"] = text
        for raw in list(self.document.findall(nodes.raw)):
            if "html" not in raw.get("format", "") or not ANIMATION_IMG.search(raw.astext()):
                continue
            cell = raw.parent
            while cell is not None and cell.get("nb_element") != "cell_code":
                cell = cell.parent
            meta = (cell.get("cell_metadata") or {}).get("accelbook", {}) if cell is not None else {}
            alt = meta.get("alt") if isinstance(meta, dict) else None
            if not alt:
                logger.warning("an animation player has no alternative text: give its cell the metadata "
                               '"accelbook": {"alt": "what the animation shows"}', location=raw)
                continue
            html_text = ANIMATION_IMG.sub(lambda m: f'<img id="_anim_img{m.group(1)}" alt="{html.escape(alt)}"',
                                          raw.astext())
            html_text = re.sub(r'<input id="_anim_slider([0-9a-f]+)" type="range"',
                               r'<input id="_anim_slider\1" type="range" aria-label="Animation frame"', html_text)
            raw.replace_self(nodes.raw("", html_text, format=raw["format"]))


def visit_hide_cell(self, node) -> None:
    """myst-nb's toggle of a hidden cell input, named by the words it shows ("Show code cell
    source"): myst-nb 1.4 labels it "Toggle hidden content", which does not contain the visible
    words (WCAG 2.5.3, axe's label-content-name-mismatch)."""
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{html.escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{html.escape(node["prompt_hide"])}</p>\n')
    self.body.append("</summary>\n")


# pydata-sphinx-theme's components, each with the change that gives it a name that matches what
# it shows (WCAG 2.5.3). A component whose text differs from what is expected is left as it is.
THEME_FIXES = {
    # The button shows "Search Ctrl+K" but is named "Search": its visible words become its name.
    "components/search-button-field.html": [(' aria-label="{{ _(\'Search\') }}"', "")],
    # The colour-mode switch shows an icon but is named "Color mode" by aria-label, which axe reads
    # as a name that leaves out what it shows: the name becomes words inside the button, shown to
    # screen readers only, and the icons are hidden from them.
    "components/theme-switcher.html": [(' aria-label="{{ _(\'Color mode\') }}"', ""),
                                       ('data-mode="', 'aria-hidden="true" data-mode="'),
                                       ("</button>", '<span class="visually-hidden">{{ _(\'Color mode\') }}</span>\n</button>')],
    # The site's title link in the sidebar sits outside every landmark (axe: region): it becomes a
    # navigation landmark of its own, named for what it links to.
    "components/navbar-logo.html": [('<a class="navbar-brand logo" href="{{ href }}">',
                                     '<nav class="accelbook-home" aria-label="{{ _(\'Home\') }}">'
                                     '<a class="navbar-brand logo" href="{{ href }}">'),
                                    ("</p>\n  {% endif %}\n</a>", "</p>\n  {% endif %}\n</a></nav>")],
}


def theme_templates(app, config) -> None:
    """Copies of the theme's components with :data:`THEME_FIXES` applied, in a templates folder
    of the build that comes before the theme's own."""
    try:
        import pydata_sphinx_theme
    except ImportError:
        return
    theme = Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme"
    out = Path(app.doctreedir).parent / "accelbook_templates"
    for name, changes in THEME_FIXES.items():
        source = theme / name
        text = source.read_text() if source.is_file() else ""
        targets = (out / name, out / Path(name).name)  # included by either name
        if not all(old in text for old, _ in changes):
            logger.info(f"[accelbook] {name} of pydata-sphinx-theme has changed; left as it is")
            for target in targets:
                target.unlink(missing_ok=True)
            continue
        fixed = text
        for old, new in changes:
            fixed = fixed.replace(old, new)
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_text() != fixed:
                target.write_text(fixed)
    if str(out) not in config.templates_path:
        config.templates_path = [str(out)] + list(config.templates_path)


def citations_are_list_items(app, pagename, templatename, context, doctree) -> None:
    """The bibliography's entries as items of the list that holds them: docutils writes a
    ``role="list"`` box of ``role="doc-biblioentry"`` entries, a role that ARIA 1.3 deprecates and
    that axe does not count as a list item (aria-required-children, critical)."""
    body = context.get("body")
    if isinstance(body, str) and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app):
    os.environ["ACCELBOOK_EXPLORE"] = "static"
    app.setup_extension("myst_nb")
    from myst_nb.sphinx_ import HideCodeCellNode  # noqa: PLC0415

    app.add_node(HideCodeCellNode, override=True, html=(visit_hide_cell, lambda self, node: self.body.append("</details>\n")))
    app.add_post_transform(FigureAltText)
    app.connect("config-inited", theme_templates, priority=450)
    app.connect("config-inited", configure, priority=400)
    app.connect("html-page-context", colab_opens_the_edition, priority=600)
    app.connect("html-page-context", citations_are_list_items)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
