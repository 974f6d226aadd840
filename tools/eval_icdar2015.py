"""Score ICDAR2015 text-localisation results (task 4.1) like the official RRC tool.

    python tools/eval_icdar2015.py --gt official_test_gt.zip --det submit.zip [--json per_image.json]
                                   [--protocol official|paddleocr]

GT and DET may each be an RRC zip (gt_img_N.txt / res_img_N.txt), a folder of such files, or a
PaddleOCR label file (``image_path<TAB>json`` lines; detections as ``{"points": ..., "score": ...}``).
``--protocol official`` (default) reproduces the RRC script (IoU > 0.5 one-to-one greedy matching,
``###`` don't-care with area-precision 0.5, int coordinates, its submission validation);
``--protocol paddleocr`` reproduces PaddleOCR's DetMetric (``*`` also don't-care, float
coordinates, invalid polygons skipped).  In a zip or folder every entry must be named exactly
``gt_img_<N>.txt`` / ``res_img_<N>.txt`` and name each image once; GT images with no result file are
scored as images without detections (as the RRC tool does) and counted in the report.
Prints precision, recall and hmean; the last line is one JSON object (precision, recall, hmean,
counts, images_with_results, protocol).  ``--json FILE`` then writes the global and per-image results
(the RRC script's ``method`` / ``per_sample`` layout).  Exit status 0; 1 with
``eval_icdar2015: error: file:line: message`` on an invalid input, or when the ``--json`` file cannot be
written (the scores are printed first); 2 on a usage error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dbnetpp.cli import run_tool
from dbnetpp.errors import DataError
from dbnetpp.metrics import PROTOCOLS, evaluate_paths


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", required=True, help="GT zip, folder of gt_img_N.txt, or PaddleOCR label file")
    ap.add_argument("--det", required=True, help="detections: zip, folder of res_img_N.txt, or label file")
    ap.add_argument("--json", dest="json_out", default=None, help="write global and per-image results here")
    ap.add_argument("--protocol", choices=PROTOCOLS, default="official",
                    help="official RRC protocol (default) or PaddleOCR DetMetric's variant")
    return ap.parse_args(argv)


def format_result_json(result) -> str:
    """JSON text with the global metrics first and one line per image."""
    lines = ['{"method": ' + json.dumps(result["method"]) + ',', ' "per_sample": {']
    items = list(result["per_sample"].items())
    for i, (key, entry) in enumerate(items):
        lines.append(f"  {json.dumps(key)}: {json.dumps(entry)}" + ("," if i + 1 < len(items) else ""))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_tool("eval_icdar2015", lambda: score(args))


def score(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    result = evaluate_paths(args.gt, args.det, args.protocol)
    seconds = time.perf_counter() - start
    m = result["method"]
    print(f"protocol:  {args.protocol}")
    print(f"images:    {m['images']}  (care GT {m['gt_care']}, care detections {m['det_care']}, "
          f"matched {m['matched']})")
    print(f"results:   {result['with_results']} of {m['images']} images have a result file"
          + ("" if result["with_results"] == m["images"] else " (the others count as images without detections)"))
    print(f"precision: {m['precision']:.4f}")
    print(f"recall:    {m['recall']:.4f}")
    print(f"hmean:     {m['hmean']:.4f}")
    print(f"seconds:   {seconds:.2f}")
    print(json.dumps({"precision": m["precision"], "recall": m["recall"], "hmean": m["hmean"],
                      "gt_care": m["gt_care"], "det_care": m["det_care"], "matched": m["matched"],
                      "images": m["images"], "images_with_results": result["with_results"],
                      "protocol": args.protocol}), flush=True)
    if args.json_out:  # after the scores, so that a path that cannot be written loses nothing computed
        try:
            folder = os.path.dirname(os.path.abspath(args.json_out))
            os.makedirs(folder, exist_ok=True)
            with open(args.json_out, "w", encoding="utf-8") as f:
                f.write(format_result_json(result))
        except OSError as exc:
            raise DataError(f"--json {args.json_out}: cannot write the per-image results: {exc.strerror or exc}") \
                from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
