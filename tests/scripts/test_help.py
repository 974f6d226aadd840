"""``--help`` of every shell entry point prints its leading comment block, and nothing else."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["init.sh", "scripts/train.sh", "scripts/eval.sh", "scripts/setup_paddleocr.sh",
           "scripts/download_pretrained.sh", "scripts/setup_deploy_venv.sh", "scripts/finetune.sh"]


def _comment_block(path: Path):
    lines = path.read_text().splitlines()[1:]
    block = []
    for line in lines:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    return block


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_the_leading_comment_block(script):
    r = subprocess.run(["bash", script, "--help"], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out == _comment_block(ROOT / script)
    assert len(out) >= 3 and not any(line.startswith(("set -", "#")) for line in out), r.stdout
