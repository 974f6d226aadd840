"""Run PaddleOCR 2.5's own ``TextDetector`` (PyPI ``paddleocr==2.5.0.3``) on an exported model.

Run as a separate process by ``test_ppocr_interop.py`` so that the wheel's top-level ``tools`` and
``ppocr`` packages and the numpy aliases it needs never touch the test process::

    python ppocr25_det_runner.py JOB.json

JOB.json: a list of jobs ``{"model_dir", "images": [...], "limit_side_len", "limit_type", "thresh",
"box_thresh", "unclip_ratio", "threads", "mkldnn", "maps_out": path.npz}``.  Prints one JSON line,
a list with per job ``{"boxes": [[...], ...]}`` (one list of [4, 2] corner lists per image), and
saves each image's probability map in the job's ``maps_out`` (``map_<i>`` entries).
"""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np


def wheel_dir() -> Path:
    spec = importlib.util.find_spec("paddleocr")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("paddleocr==2.5.0.3 is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    # numpy aliases removed in 1.24 that the 2.5 code still uses; lmdb is imported by its
    # dataset module but never used for inference.
    np.int, np.float, np.bool = int, float, bool
    sys.modules.setdefault("lmdb", types.ModuleType("lmdb"))
    sys.path.insert(0, str(wheel_dir()))
    import cv2
    import tools.infer.utility as utility
    from tools.infer.predict_det import TextDetector

    print(json.dumps([run_job(job, utility, TextDetector, cv2) for job in jobs]))


def run_job(job, utility, TextDetector, cv2) -> dict:
    args = utility.init_args().parse_args([])
    args.use_gpu = False
    args.det_algorithm = "DB"
    args.det_model_dir = job["model_dir"]
    args.det_limit_side_len = job["limit_side_len"]
    args.det_limit_type = job["limit_type"]
    args.det_db_thresh = job["thresh"]
    args.det_db_box_thresh = job["box_thresh"]
    args.det_db_unclip_ratio = job["unclip_ratio"]
    args.use_dilation = False
    args.det_db_score_mode = "fast"
    args.enable_mkldnn = job["mkldnn"]
    args.cpu_threads = job["threads"]
    det = TextDetector(args)
    maps = []
    post = det.postprocess_op

    def capture(preds, shape_list):
        maps.append(np.array(preds["maps"][0, 0]))
        return post(preds, shape_list)

    det.postprocess_op = capture
    out = []
    for path in job["images"]:
        boxes, _ = det(cv2.imread(path))
        out.append(np.asarray(boxes).reshape(-1, 4, 2).astype(int).tolist())
    np.savez(job["maps_out"], **{f"map_{i}": m for i, m in enumerate(maps)})
    return {"boxes": out}


if __name__ == "__main__":
    main()
