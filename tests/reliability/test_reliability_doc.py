"""``docs/reliability.md`` is generated from the case lists the tests run, and every listed test exists."""
from __future__ import annotations

import ast
import re

import pytest

from testutil import load_module


def _tool(rel):
    return load_module("reliability_doc_tool", rel.HERE / "gen_doc.py", fresh=True)


@pytest.mark.smoke
def test_reliability_doc_is_up_to_date(rel, rel_cases):
    tool = _tool(rel)
    doc = rel.ROOT / "docs" / "reliability.md"
    assert doc.is_file(), "docs/reliability.md is missing: run python tests/reliability/gen_doc.py"
    assert doc.read_text(encoding="utf-8") == tool.render(rel_cases), \
        "docs/reliability.md is stale: run python tests/reliability/gen_doc.py"


def _functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    marks = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            marks[node.name] = {ast.unparse(d) for d in node.decorator_list}
    return marks


def test_every_scenario_names_an_existing_test_with_a_matching_xfail(rel, rel_cases):
    here = rel.HERE
    for s in rel_cases.SCENARIOS:
        file, func = s.test.split("::")
        funcs = _functions(here / file)
        assert func in funcs, f"{s.id}: {s.test} does not exist"
        xfail = any(d.startswith("pytest.mark.xfail") for d in funcs[func])
        assert xfail == bool(s.bug), f"{s.id}: the case says bug={bool(s.bug)} but {s.test} xfail={xfail}"


def test_case_ids_are_unique_and_corpus_needles_are_set(rel_cases):
    ids = [c.id for c in rel_cases.CORPUS_CASES] + [c.id for c in rel_cases.CONFIG_CASES] + \
        [s.id for s in rel_cases.SCENARIOS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids)
    for c in rel_cases.CORPUS_CASES:
        assert c.outcome in ("error", "decoded", "accepted")
        assert bool(c.needle) == (c.outcome == "error"), c.id
