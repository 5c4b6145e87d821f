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
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def setup(app):
    os.environ["ACCELBOOK_EXPLORE"] = "static"
    app.connect("config-inited", configure, priority=400)
    app.connect("html-page-context", colab_opens_the_edition, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
