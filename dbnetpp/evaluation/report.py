"""The JSON evaluation report and the console summary."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..checkpoint import checkpoint_file
from .gather import EvalResult


def build_report(result: EvalResult, *, config_file: Optional[str], checkpoint: str,
                 weights_key: str, world_size: int, post_process: Mapping[str, Any], policy: str,
                 overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Everything about one evaluation; ``per_image`` in dataset order."""
    ckpt = checkpoint_file(checkpoint)
    return {
        "metrics": result.metrics,
        "counts": dict(result.counts),
        "protocol": result.protocol,
        "config": config_file,
        "overrides": list(overrides),
        "checkpoint": os.path.abspath(ckpt),
        "weights_key": weights_key,
        "post_process": dict(post_process),
        "bad_sample_policy": policy,
        "world_size": world_size,
        "timing": {"seconds": result.seconds, "images_per_second": result.images_per_second,
                   "ranks": result.ranks},
        "skipped": [{"index": r.index, "image": r.image, "label": r.label, "reason": r.skipped}
                    for r in result.skipped],
        "unscored": list(result.unscored),
        "per_image": [r.to_json() for r in result.records],
    }


def write_report(report: Mapping[str, Any], path: str) -> None:
    """JSON with one line per image (readable and still one ``json.load``)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    head = {k: v for k, v in report.items() if k != "per_image"}
    text = json.dumps(head, indent=1)[:-2]
    rows = report.get("per_image", [])
    lines: List[str] = [text + ',\n "per_image": [']
    lines += ["  " + json.dumps(row) + ("," if i + 1 < len(rows) else "") for i, row in enumerate(rows)]
    lines.append(" ]\n}\n")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def summary_lines(result: EvalResult, world_size: int) -> List[str]:
    m, c = result.metrics, result.counts
    per_rank = ", ".join(f"rank {r['rank']}: {r['images']} in {r['seconds_total']:.2f} s" for r in result.ranks)
    return [
        f"protocol:  {result.protocol}",
        f"images:    {c['images']}  (care GT {c['gt_care']}, care detections {c['det_care']}, matched {c['matched']})",
        f"precision: {m['precision']:.4f}",
        f"recall:    {m['recall']:.4f}",
        f"hmean:     {m['hmean']:.4f}",
        f"speed:     {result.images_per_second:.2f} images/s over {world_size} process(es) ({per_rank})",
    ]


def final_line(result: EvalResult) -> str:
    """The last stdout line: one JSON object."""
    m, c = result.metrics, result.counts
    return json.dumps({"precision": m["precision"], "recall": m["recall"], "hmean": m["hmean"], **c,
                       "skipped": len(result.skipped), "unscored": len(result.unscored), "protocol": result.protocol,
                       "images_per_second": round(result.images_per_second, 3)})
