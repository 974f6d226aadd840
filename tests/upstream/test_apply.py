"""Applying the overlay: idempotent, reversible, loud about a checkout it was not written for."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def apply(route, *args):
    return subprocess.run([sys.executable, "-m", "ppocr_patches.apply", *map(str, args)], env=route.env(),
                          cwd=str(route.root), capture_output=True, text=True, timeout=300)


@pytest.fixture
def fresh_copy(given_checkout, tmp_path) -> Path:
    dst = tmp_path / "PaddleOCR"
    shutil.copytree(given_checkout, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", "output",
                                                                        ".ppocr_patches.json"))
    return dst


def test_apply_twice_then_revert_restores_the_tree(route, fresh_copy):
    before = tree_digest(fresh_copy)
    first = apply(route, "--no-smoke", fresh_copy)
    assert first.returncode == 0, first.stderr
    stamp_file = fresh_copy / ".ppocr_patches.json"
    stamp = json.loads(stamp_file.read_text())
    again = apply(route, "--no-smoke", fresh_copy)
    assert again.returncode == 0, again.stderr
    stamp2 = json.loads(stamp_file.read_text())
    stamp.pop("applied_at"), stamp2.pop("applied_at")
    assert stamp == stamp2
    after = tree_digest(fresh_copy)
    assert set(after) - set(before) == {".ppocr_patches.json"}
    assert {k: v for k, v in after.items() if k != ".ppocr_patches.json"} == before, "upstream files changed"
    status = apply(route, "--status", fresh_copy)
    assert status.returncode == 0 and json.loads(status.stdout)["applied"] is True

    reverted = apply(route, "--revert", fresh_copy)
    assert reverted.returncode == 0, reverted.stderr
    assert tree_digest(fresh_copy) == before
    assert apply(route, "--status", fresh_copy).returncode == 1
    assert apply(route, "--revert", fresh_copy).returncode == 0  # reverting twice is harmless


def test_apply_refuses_a_checkout_it_was_not_written_for(route, fresh_copy):
    db_fpn = fresh_copy / "ppocr" / "modeling" / "necks" / "db_fpn.py"
    text = db_fpn.read_text()
    db_fpn.write_text(text.replace("def __init__(self, in_channels, out_channels, **kwargs):",
                                   "def __init__(self, in_channels, out_channels, use_asf=False, **kwargs):"))
    (fresh_copy / "ppocr" / "data" / "imaug" / "iaa_augment.py").unlink()
    proc = apply(route, "--no-smoke", fresh_copy)
    assert proc.returncode == 1
    assert str(db_fpn) in proc.stderr and "iaa_augment.py: missing" in proc.stderr, proc.stderr
    assert not (fresh_copy / ".ppocr_patches.json").exists()


def test_launcher_refuses_an_unprepared_checkout(route, fresh_copy):
    env = dict(route.env(), PADDLEOCR_DIR=str(fresh_copy))
    proc = subprocess.run([sys.executable, "-m", "ppocr_patches.run", "check"], env=env, cwd=str(route.root),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "has not been applied" in proc.stderr and str(fresh_copy) in proc.stderr


@pytest.mark.smoke
def test_check_imports_the_det_path_and_builds_dbnetpp_asf(route):
    log = route.launcher("check")
    assert "check ok" in log and "[1, 1, 64, 64]" in log
    assert "DBFPN(use_asf)" in log
