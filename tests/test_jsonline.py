"""``dbnetpp.jsonline``: the tools' last-line JSON convention, strict and lenient, and ``metrics.jsonl`` events."""
from __future__ import annotations

import json

import pytest

from dbnetpp.jsonline import last_json_line, last_line_json, read_events


def test_last_json_line_skips_other_lines():
    assert last_json_line('a\n{"x": 1}\nnot json {\n{"y": 2}\n   \n') == {"y": 2}
    assert last_json_line("no json here\n{broken") is None


def test_last_json_line_with_a_key_skips_objects_without_it():
    assert last_json_line('{"hmean": 0.5}\n{"rank": 1}\n', key="hmean") == {"hmean": 0.5}
    assert last_json_line('{"rank": 1}\n', key="hmean") is None


def test_last_line_json_reads_the_last_non_empty_line():
    assert last_line_json('progress 1/2\n{"x": 1}\n{"steps": 3, "hmean": null}\n') == {"steps": 3, "hmean": None}
    assert last_line_json('log\n  {"y": 2}  \n\n   \n') == {"y": 2}  # trailing blank lines and spaces
    assert last_line_json('{"z": [1, 2]}') == {"z": [1, 2]}  # no final newline


@pytest.mark.parametrize("text, message", [
    ("", "no output"),
    ("  \n\n", "no output"),
    ('{"x": 1}\ndone', "the last line is not JSON"),
    ('{"x": 1}\n{"broken": ', "the last line is not JSON"),
    ('{"x": 1}\n[1, 2]\n', "the last line is JSON list, not an object"),
    ('{"x": 1}\n3\n', "the last line is JSON int, not an object"),
])
def test_last_line_json_is_strict_and_names_what_it_got(text, message):
    """An earlier JSON object does not count: the last line must be one (what the tools promise)."""
    with pytest.raises(ValueError, match=message) as info:
        last_line_json(text)
    last = text.strip().splitlines()[-1] if text.strip() else text
    assert repr(last) in str(info.value)


def test_last_line_json_clips_a_long_line():
    with pytest.raises(ValueError) as info:
        last_line_json("x" * 10_000)
    assert len(str(info.value)) < 500 and "(10000 characters)" in str(info.value)


def test_read_events_skips_partial_and_other_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_events(path, "eval") == []  # not written yet
    path.write_text("\n".join([json.dumps({"event": "eval", "hmean": 0.1}), json.dumps({"event": "step"}), "[1]",
                               json.dumps({"event": "eval", "hmean": 0.2}), '{"event": "ev']) + "\n")
    assert [e["hmean"] for e in read_events(path, "eval")] == [0.1, 0.2]
