"""Table helpers added for "Introduction" and the appendix "Spec tables" (accelbook.notebook)."""

import pytest

from accelbook import notebook, specs

DB = {
    "sources": {
        "sheet": {"title": "Made-up datasheet", "url": "https://example.com/sheet", "kind": "datasheet"},
        "doc": {"title": "Made-up docs", "url": "https://example.com/doc", "kind": "documentation"},
    },
    "chips": {
        "gpu-a": {
            "name": "Vendor GPU A", "vendor": "Vendor", "kind": "gpu", "year": 2020,
            "device_kinds": ["Vendor GPU-A", "GPU-A"], "note": "a note on the whole chip",
            "peak_flops": {
                "bf16": {"value": 100, "unit": "TFLOP/s", "source": "sheet",
                         "note": "sheet prints 200 with sparsity | dense is half"},
            },
            "specs": {
                "memory_bandwidth": {"value": 1000, "unit": "GB/s", "source": "sheet"},
                "memory_capacity": {"value": 16, "unit": "GiB", "source": "doc", "note": "binary"},
            },
        },
        "tpu-b": {
            "name": "Vendor TPU B", "vendor": "Vendor", "kind": "tpu", "year": 2021,
            "peak_flops": {"int8": {"value": 90, "unit": "TOP/s", "source": "doc"}},
            "specs": {"mxu_rows": {"value": 128, "unit": "count", "source": "doc"}},
        },
    },
}


@pytest.fixture(scope="module")
def chips():
    db = specs.parse(DB)
    return [db["gpu-a"], db["tpu-b"]]


def test_field_label_matches_spec_table_headings(chips):
    assert notebook.field_label("bf16") == "bf16 peak"
    assert notebook.field_label("memory_bandwidth") == "memory bandwidth"
    header = notebook.spec_table(chips, ["bf16", "memory_bandwidth"]).splitlines()[0]
    assert header == "| chip | bf16 peak | memory bandwidth |"
    with pytest.raises(KeyError, match="field='speed'"):
        notebook.field_label("speed")


def test_fields_present_keeps_order_and_drops_empty_columns(chips):
    fields = ["mxu_rows", "fp32", "bf16", "l2_cache", "memory_bandwidth", "int8"]
    assert notebook.fields_present(chips, fields) == ["mxu_rows", "bf16", "memory_bandwidth", "int8"]
    assert notebook.fields_present(chips[1:], fields) == ["mxu_rows", "int8"]
    assert notebook.fields_present([], fields) == []
    with pytest.raises(KeyError, match="field='speed'"):
        notebook.fields_present(chips, ["speed"])


def test_field_table_gives_unit_and_meaning():
    lines = notebook.field_table(["int8", "bf16", "scaleup_bandwidth"]).splitlines()
    assert lines[0] == "| column | unit | meaning |" and len(lines) == 5
    assert lines[2].startswith("| int8 peak | OP/s | dense")
    assert lines[3].startswith("| bf16 peak | FLOP/s | dense")
    assert lines[4] == "| scale-up bandwidth (all links, both directions) | B/s | " + specs.FIELDS["scaleup_bandwidth"][1] + " |"
    with pytest.raises(KeyError):
        notebook.field_table(["speed"])


def test_notes_table_lists_each_note_with_its_linked_value(chips):
    lines = notebook.notes_table(chips).splitlines()
    assert lines[0] == "| chip | value | note |"
    body = lines[2:]
    assert len(body) == 3  # the chip note, the bf16 note, the capacity note; tpu-b has none
    assert body[0] == "| Vendor GPU A | whole chip | a note on the whole chip |"
    assert body[1].startswith("| Vendor GPU A | bf16 peak: [100 TFLOP/s](https://example.com/sheet) |")
    assert "with sparsity \\| dense is half" in body[1]  # '|' inside a note is escaped
    assert "memory capacity: [16 GiB](https://example.com/doc)" in body[2]


def test_notes_table_of_chips_without_notes_is_just_the_header(chips):
    assert len(notebook.notes_table(chips[1:]).splitlines()) == 2


def test_device_kind_table_quotes_each_kind_as_code(chips):
    lines = notebook.device_kind_table(chips).splitlines()
    assert lines[2] == "| Vendor GPU A | gpu | `Vendor GPU-A`, `GPU-A` |"
    assert lines[3] == "| Vendor TPU B | tpu | — |"


def test_helpers_work_on_the_real_database():
    everything = specs.chips()
    assert notebook.device_kind_table(everything).count("\n") == len(everything) + 1
    notes = notebook.notes_table(everything)
    n_notes = sum(bool(c.note) + sum(bool(s.note) for s in [*c.peak.values(), *c.specs.values()])
                  for c in everything)
    assert notes.count("\n") == n_notes + 1


def test_spec_table_headings_say_which_links_and_which_direction():
    chip = specs.get_chip("h100-sxm")
    header = notebook.spec_table([chip], ["scaleup_bandwidth", "scaleup_peer_bandwidth", "bf16"]).splitlines()[0]
    assert "all links, both directions" in header and "one neighbour (one direction)" in header
    assert "bf16 peak" in header
