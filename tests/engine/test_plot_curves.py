"""``tools/plot_log.py --finetune``: test hmean against minutes of several benchmarks/finetune.py runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _result(path: Path, hmeans):
    curve = [{"minutes": 10.0 * (i + 1), "step": 125 * (i + 1), "hmean": h, "precision": h, "recall": h}
             for i, h in enumerate(hmeans)]
    path.write_text("fine-tuning ...\n  10.00 min  step 125 ...\n" + json.dumps({"hmean": max(hmeans), "curve": curve}) + "\n")
    return path


def test_finetune_curves_png(tmp_path):
    a = _result(tmp_path / "a.log", [0.5, 0.7, 0.75])
    b = _result(tmp_path / "b.log", [0.4, 0.6])
    out = tmp_path / "curves.png"
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "plot_log.py"), "--finetune", f"DBNet++={a}",
                        f"DBNet={b}", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    img = cv2.imread(str(out))
    assert img is not None and img.shape == (480, 960, 3)
    # two coloured series were drawn (pixels neither white, black nor grey)
    coloured = (np.ptp(img.astype(int), axis=2) > 60).sum()
    assert coloured > 500
    # --title: the same curves under another title (runs that validate on a held-out split)
    val = tmp_path / "val.png"
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "plot_log.py"), "--finetune", f"DBNet++={a}",
                        f"DBNet={b}", "--out", str(val), "--title", "validation hmean"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    other = cv2.imread(str(val))
    assert other.shape == img.shape and (other != img).any()
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "plot_log.py"), "--finetune", f"x={tmp_path / 'none'}",
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "none" in bad.stderr
    nolabel = tmp_path / "plain.log"
    nolabel.write_text("nothing\n")
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "plot_log.py"), "--finetune", f"x={nolabel}",
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no benchmarks/finetune.py result" in bad.stderr
