"""Presentation helpers: tables built from records, device summaries, glue."""

import numpy as np
import pytest

from accelbook import device, measure, notebook, specs


def test_markdown_table_shape_and_escaping():
    md = notebook.markdown_table(["a", "b"], [(1, "x|y"), (2, 3)])
    lines = md.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "|---|---|"
    assert lines[2] == "| 1 | x\\|y |" and len(lines) == 4


def test_markdown_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="has 1 cells; headers have 2"):
        notebook.markdown_table(["a", "b"], [(1,)])
    with pytest.raises(ValueError, match="headers"):
        notebook.markdown_table([], [])


def test_spec_table_links_each_value_to_its_source_and_marks_gaps():
    t4, h100 = specs.get_chip("t4"), specs.get_chip("h100-sxm")
    md = notebook.spec_table([t4, h100], ["bf16", "memory_bandwidth"])
    rows = md.splitlines()
    assert rows[0] == "| chip | bf16 peak | memory bandwidth |"
    assert rows[2].startswith(f"| {t4.name} | — | [")  # the T4 has no bf16
    assert h100.peak["bf16"].source.url in rows[3]
    assert "3.35 TB/s" in rows[3]
    with pytest.raises(KeyError, match="field='speed'"):
        notebook.spec_table([t4], ["speed"])


def test_source_table_lists_each_cited_document_once():
    chips = specs.chips()
    md = notebook.source_table(chips)
    urls = {s.source.url for c in chips for s in list(c.peak.values()) + list(c.specs.values())}
    assert len(md.splitlines()) == 2 + len(urls)


def test_device_summary_says_where_ceilings_come_from():
    gpu = device.describe("gpu", "NVIDIA L4")
    md = notebook.device_summary(gpu, measure.ceilings("bf16", gpu))
    assert "NVIDIA L4" in md and "spec sheet" in md and "ridge point" in md
    cpu = device.describe("cpu", "cpu")
    assert "measured" in notebook.device_summary(cpu)


def test_glue_returns_nothing_and_checks_the_name_and_the_value():
    # A cell ending in glue(...) must print nothing on the page.
    assert notebook.glue("test_value", 3.5) is None
    with pytest.raises(ValueError, match="name=''"):
        notebook.glue("", 1)
    for bad in (float("nan"), float("inf"), np.float32("-inf")):
        with pytest.raises(ValueError, match="finite"):
            notebook.glue("x", bad)


def test_glue_hands_myst_nb_python_numbers_and_markdown(monkeypatch):
    import myst_nb
    import numpy as np

    got = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: got.update({name: value}))
    notebook.glue("x", np.float64(3.5))
    assert type(got["x"]) is float and got["x"] == 3.5
    notebook.glue("s", "3.35 TB/s")
    assert got["s"].data == "3.35 TB/s"  # an IPython Markdown object: no quotes on the page


def test_tables_and_glue_name_their_bad_arguments():
    import pytest

    from accelbook import notebook, specs

    with pytest.raises(ValueError, match="^chip_list='h100-sxm' must be a sequence"):
        notebook.spec_table("h100-sxm", ["bf16"])
    with pytest.raises(TypeError, match=r"^chip_list\[0\]=None"):
        notebook.source_table([None])
    with pytest.raises(ValueError, match="^source_links=1 must be True or False"):
        notebook.spec_table([specs.get_chip("t4")], ["fp16"], source_links=1)
    with pytest.raises(ValueError, match="^value=None"):
        notebook.glue("x", None)
    with pytest.raises(ValueError, match="^display="):
        notebook.glue("x", 1.0, display="no")
    # a '|' or a line break in a header or a cell would break the table's rows
    table = notebook.markdown_table(["a|b"], [["x\ny"]])
    assert table.splitlines() == ["| a\\|b |", "|---|", "| x y |"]
