"""The publishing workflow (.github/workflows/publish.yml) and what it relies on: it is valid YAML,
runs the README's build command on pushes to main, deploys the HTML to GitHub Pages with no
credential but the workflow's own token, and publishes a notebook edition stamped with the commit
it built, which the site's Colab buttons open."""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import sys
import types

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
sys.path.insert(0, str(ROOT / "book" / "_ext"))
edition = importlib.import_module("edition")


@pytest.fixture(scope="module")
def flow():
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(flow):
    return [s for job in flow["jobs"].values() for s in job.get("steps", [])]


def test_it_runs_on_pushes_to_main_and_builds_with_the_readmes_command(flow):
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"]
    runs = [s.get("run", "") for s in _steps(flow)]
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and any(r.strip() == "make book" for r in runs)
    # `make book` is the -W -n build: any warning fails the run
    book_rule = re.search(r"^book:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert "jupyter-book build -W -n" in book_rule


def test_it_deploys_the_built_html_to_pages(flow):
    uses = {s.get("uses", "").split("@")[0]: s for s in _steps(flow)}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "book/_build/html"
    assert "actions/deploy-pages" in uses
    assert flow["permissions"]["pages"] == "write" and flow["permissions"]["id-token"] == "write"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    artifacts = {s["with"]["name"]: s["with"]["path"] for s in _steps(flow)
                 if s.get("uses", "").startswith("actions/upload-artifact")}
    assert artifacts["executed-notebooks"].startswith("book/_build/jupyter_execute/")
    assert artifacts["executed-notebooks"].endswith(".ipynb")
    # the PDF is `make pdf`'s output, attached after that target ran
    runs = [s.get("run", "").strip() for s in _steps(flow)]
    assert "make pdf" in runs and re.search(r"^pdf:", (ROOT / "Makefile").read_text(), re.M)
    out = re.search(r'^OUT = BOOK / "_build" / "pdf" / "(.+?)"', (ROOT / "book" / "_ext" / "pdf.py").read_text(), re.M)
    assert artifacts["book-pdf"] == f"book/_build/pdf/{out.group(1)}"


def test_no_secret_but_the_workflows_own_token(flow):
    text = WORKFLOW.read_text()
    assert set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", text)) <= {"GITHUB_TOKEN"}
    assert "pull_request_target" not in text  # never run others' code with the token


def test_the_site_links_the_edition_stamped_with_the_commit_it_built(flow):
    build = flow["jobs"]["build"]
    assert build["env"]["ACCELBOOK_COLAB_REF"] == "colab"
    runs = "\n".join(s.get("run", "") for s in build["steps"])
    assert 'edition.py --ref "$GITHUB_SHA" --out _colab/notebooks' in runs
    assert re.search(r"git push .* colab$", runs, re.M)


def test_stamping_pins_every_install_cell_and_changes_nothing_else(tmp_path):
    assert edition.main(["--ref", "0123abc", "--out", str(tmp_path)]) == 0
    committed = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in committed]
    for path in committed:
        ours, stamped = json.loads(path.read_text()), json.loads((tmp_path / path.name).read_text())
        changed = [(a, b) for a, b in zip(ours["cells"], stamped["cells"]) if a != b]
        assert len(ours["cells"]) == len(stamped["cells"]) and len(changed) == 1, path.name
        before, after = ("".join(c["source"]) for c in changed[0])
        assert f'"{edition.INSTALL}"' in before
        assert after == before.replace(f'"{edition.INSTALL}"', f'"{edition.INSTALL}@0123abc"')


@pytest.mark.parametrize("ref", ["", "a b", "../main", "-rf", "x" * 101, None])
def test_stamping_rejects_a_ref_that_is_not_a_git_name(ref):
    with pytest.raises(ValueError, match="ref="):
        edition.stamp(f'x = "{edition.INSTALL}"', ref)


def test_stamping_needs_exactly_one_requirement_and_a_folder_other_than_notebooks(tmp_path):
    with pytest.raises(ValueError, match="exactly once"):
        edition.stamp("import accelbook", "abc", "doc")
    with pytest.raises(SystemExit):
        edition.main(["--ref", "abc"])  # --out missing
    with pytest.raises(SystemExit):
        edition.main(["--ref", "abc", "--out", str(ROOT / "notebooks")])


def test_the_colab_button_follows_accelbook_colab_ref(monkeypatch):
    site = importlib.import_module("accelbook_site")
    app = types.SimpleNamespace(config=types.SimpleNamespace(html_theme_options={"repository_branch": "main"}))

    def button_url():
        context = {"header_buttons": [{"buttons": [
            {"text": "Colab", "url": "https://colab.research.google.com/github/accelbook/accelbook/blob/main/"
                                    "book/chapters/02_roofline.ipynb"}]}]}
        site.colab_opens_the_edition(app, "chapters/02_roofline", "page.html", context, None)
        return context["header_buttons"][0]["buttons"][0]["url"]

    monkeypatch.delenv("ACCELBOOK_COLAB_REF", raising=False)
    assert button_url().endswith("/blob/main/notebooks/02_roofline.ipynb")
    monkeypatch.setenv("ACCELBOOK_COLAB_REF", "colab")
    assert button_url() == ("https://colab.research.google.com/github/accelbook/accelbook/blob/colab/"
                            "notebooks/02_roofline.ipynb")
