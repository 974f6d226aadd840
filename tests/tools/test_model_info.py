"""tools/model_info.py: counts, FLOPs and state-dict listings against the PaddleOCR reference."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from testutil import last_line_json


@pytest.fixture(scope="module")
def model_info(root_dir):
    spec = importlib.util.spec_from_file_location("model_info_tool", root_dir / "tools" / "model_info.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config(root_dir, name):
    return str(root_dir / "tests" / "fixtures" / "configs" / f"{name}.yml")


@pytest.mark.parametrize("name", ["det_mv3_db", "det_mv3_dbpp", "det_r50_vd_db"])
def test_state_dict_listing_equals_reference_tsv(model_info, root_dir, ref_dir, name, capsys):
    assert model_info.main(["-c", _config(root_dir, name), "--state-dict"]) == 0
    assert capsys.readouterr().out == (ref_dir / name / "state_dict.tsv").read_text()


@pytest.mark.parametrize("name,params,bn,flops", [
    ("det_mv3_db", 1_844_136, 12_880, 11_378_519_182),
    ("det_mv3_dbpp", 1_991_922, 12_880, 15_161_840_782),
])
def test_counts_match_reference(model_info, root_dir, name, params, bn, flops, capsys):
    assert model_info.main(["-c", _config(root_dir, name)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert (result["params"], result["bn_stats"], result["flops"]) == (params, bn, flops)
    assert result["input"] == [1, 3, 640, 640]
    assert f"{params:,}" in "\n".join(lines[:-1])


def test_cli_end_to_end(root_dir):
    proc = subprocess.run([sys.executable, str(root_dir / "tools" / "model_info.py"), "-c",
                           _config(root_dir, "det_mv3_db_small"), "--input", "320x480",
                           "-o", "Architecture.Neck.out_channels=96"],
                          capture_output=True, text=True, cwd=root_dir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = last_line_json(proc.stdout)
    assert set(result) >= {"params", "flops"} and result["input"] == [1, 3, 320, 480]
    assert 0 < result["params"] < 1_050_346 and result["flops"] > 0


def test_errors(model_info, root_dir, capsys):
    assert model_info.main(["-c", _config(root_dir, "det_mv3_db"), "-o", "Architecture.Backbone.scal=0.5"]) == 2
    err = capsys.readouterr().err
    assert "det_mv3_db.yml" in err and "Architecture.Backbone.scal" in err and "Did you mean 'scale'" in err
    with pytest.raises(SystemExit):
        model_info.main(["-c", _config(root_dir, "det_mv3_db"), "--input", "650x640"])
    assert "multiples of 32" in capsys.readouterr().err


def test_project_recipes(model_info, root_dir, capsys):
    """The recipes under configs/det build and report sizes (their Architecture sections only)."""
    recipes = sorted((root_dir / "configs" / "det").rglob("*.yml"))
    if not recipes:
        pytest.skip("no recipes under configs/det")
    for path in recipes:
        assert model_info.main(["-c", str(path), "--state-dict"]) == 0, path
        listing = capsys.readouterr().out.splitlines()
        assert listing and all(line.count("\t") == 2 for line in listing), path
        assert listing[0].startswith("backbone.")
