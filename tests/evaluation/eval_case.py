"""A small evaluation case: synthetic ICDAR2015-layout test set, a random-init checkpoint, and GT that
the checkpoint partly detects.

* images: ``tools/make_synth_dataset.py`` (6 test images of 128 px), converted to a PaddleOCR label
  file by ``tools/prepare_icdar2015.py``;
* weights: a random-init tiny DBNet saved with ``save_checkpoint``; the post-processing thresholds are
  quantiles of its probability maps, so it returns boxes;
* GT: the synthetic boxes plus, per image, copies of some of the model's own boxes (matched), marked
  ``###`` for another (a don't-care detection), so precision and recall are strictly between 0 and 1;
* ``img_7.jpg``: an undecodable file listed with two GT boxes (one care, one ``###``), last in the label
  file (policy ``fail`` stops on it, ``skip`` scores it with no detections);
* ``gt.zip``: the official-format GT of all 7 images (CRLF, as released).

Tests load this file with ``importlib.util.spec_from_file_location`` (importlib import mode).
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "tiny_eval.yml"
SIZE = 128
N_TEST = 6
CORRUPT_LINE = N_TEST + 1  # label-file line of img_7.jpg
CORRUPT_GT = [([10, 10, 60, 10, 60, 30, 10, 30], "lost"), ([70, 70, 100, 70, 100, 90, 70, 90], "###")]


@dataclass
class EvalCase:
    root: Path
    data_dir: Path
    label_file: Path
    checkpoint: Path  # prefix (no .pdparams)
    gt_zip: Path
    thresh: float
    box_thresh: float
    planted_matches: int

    def overrides(self, *extra: str, checkpoint: bool = True) -> List[str]:
        out = [f"Eval.dataset.data_dir={self.data_dir}", f"Eval.dataset.label_file_list=[{self.label_file}]",
               f"PostProcess.thresh={self.thresh!r}", f"PostProcess.box_thresh={self.box_thresh!r}"]
        if checkpoint:
            out.append(f"Global.checkpoints={self.checkpoint}")
        return out + list(extra)


def _run(*args: str) -> None:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr[-2000:]}")


def _clockwise(points: np.ndarray) -> np.ndarray:
    p = points.astype(np.int64)
    q = np.roll(p, -1, axis=0)
    return p[::-1] if int(np.sum((q[:, 0] - p[:, 0]) * (q[:, 1] + p[:, 1]))) > 0 else p


def _model_maps(case_overrides: List[str], checkpoint: Path):
    """Probability maps ``[1, 1, H, W]`` and shape rows of the checkpoint on the Eval set, per image."""
    import paddle
    from dbnetpp.checkpoint import load_params
    from dbnetpp.config import load_config
    from dbnetpp.data import build_dataloader
    from dbnetpp.modeling import build_model

    cfg = load_config(str(CONFIG), case_overrides)
    model = build_model(cfg["Architecture"])
    model.set_state_dict(load_params(str(checkpoint)))
    model.eval()
    maps, shapes = [], []
    with paddle.no_grad():
        for batch in build_dataloader(cfg, "Eval"):
            maps.append(model(batch["image"])["maps"].numpy())
            shapes.append(batch["shape"].numpy())
    return maps, shapes


def _inside(boxes) -> list:
    """Boxes clear of the image border with some area (their corners survive clipping unchanged)."""
    return [b for b in boxes if b.min() >= 2 and b.max() <= SIZE - 3
            and abs(float(np.cross(b[1] - b[0], b[3] - b[0]))) >= 40]


def build_case(root: Path, seed: int = 5) -> EvalCase:
    import paddle
    from dbnetpp.checkpoint import save_checkpoint
    from dbnetpp.config import load_config
    from dbnetpp.modeling import build_model
    from dbnetpp.postprocess import DBPostProcess

    raw, data = root / "raw", root / "data"
    _run("tools/make_synth_dataset.py", "--dst", str(raw), "--train", "1", "--test", str(N_TEST),
         "--size", str(SIZE), "--seed", "3")
    _run("tools/prepare_icdar2015.py", "--src", str(raw), "--dst", str(data), "--no-progress")
    label = data / "test_icdar2015_label.txt"

    paddle.seed(seed)
    ckpt = root / "ckpt" / "model"
    save_checkpoint(str(ckpt), build_model(load_config(str(CONFIG))["Architecture"]))

    base = [f"Eval.dataset.data_dir={data}", f"Eval.dataset.label_file_list=[{label}]"]
    maps, shapes = _model_maps(base, ckpt)
    values = np.concatenate([m.ravel() for m in maps])
    box_thresh = round(float(np.quantile(values, 0.3)), 6)
    for q in (0.95, 0.93, 0.9, 0.88, 0.85, 0.82, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5):
        # the highest threshold that gives a few boxes inside the images of at least 3 images
        thresh = round(float(np.quantile(values, q)), 6)
        post = DBPostProcess(thresh=thresh, box_thresh=box_thresh, unclip_ratio=1.5)
        found = [_inside(post({"maps": prob}, shape)[0]["points"]) for prob, shape in zip(maps, shapes)]
        if sum(len(f) for f in found) >= 8 and sum(bool(f) for f in found) >= 3:
            break
    else:
        raise RuntimeError("the random model gives no usable boxes at any threshold")

    # plant GT on some of the model's own boxes
    gt_dir = raw / "Challenge4_Test_Task1_GT"
    planted = 0
    for k, inside in enumerate(found, start=1):
        lines = []
        for j, b in enumerate(inside[:3]):
            text = "###" if j == 2 else f"hit{k}_{j}"
            planted += text != "###"
            lines.append(",".join(str(int(v)) for v in _clockwise(b).reshape(-1)) + f",{text}")
        if lines:
            gt_file = gt_dir / f"gt_img_{k}.txt"
            old = gt_file.read_bytes()
            sep = b"" if old.endswith(b"\n") or not old else b"\r\n"
            gt_file.write_bytes(old + sep + ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    if planted < 2:
        raise RuntimeError(f"the random model gave too few boxes to plant GT on ({planted})")
    _run("tools/prepare_icdar2015.py", "--src", str(raw), "--dst", str(data), "--no-progress", "--force")

    # an undecodable image, listed last
    (data / "ch4_test_images" / f"img_{CORRUPT_LINE}.jpg").write_bytes(b"this is not a jpeg")
    entries = [{"transcription": t, "points": np.asarray(p).reshape(4, 2).tolist()} for p, t in CORRUPT_GT]
    with open(label, "a", encoding="utf-8") as f:
        f.write(f"ch4_test_images/img_{CORRUPT_LINE}.jpg\t{json.dumps(entries)}\n")

    gt_zip = root / "gt.zip"
    with zipfile.ZipFile(gt_zip, "w") as zf:
        for path in sorted(gt_dir.glob("gt_img_*.txt")):
            zf.write(path, path.name)
        zf.writestr(f"gt_img_{CORRUPT_LINE}.txt",
                    "".join(",".join(map(str, p)) + f",{t}\r\n" for p, t in CORRUPT_GT))
    return EvalCase(root=root, data_dir=data, label_file=label, checkpoint=ckpt, gt_zip=gt_zip, thresh=thresh,
                    box_thresh=box_thresh, planted_matches=planted)
