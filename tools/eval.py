r"""Evaluate a trained DBNet / DBNet++ detector on the Eval set of a PaddleOCR-style config.

    python tools/eval.py -c configs/det/det_mv3_db++_icdar15.yml \
        -o Global.checkpoints=output/db_mv3/best_accuracy [More.keys=...] [-o ...] \
        [--json report.json] [--save-submission submit.zip] \
        [--vis-dir vis/ --vis 20 --vis-mode first|worst] [--protocol official|paddleocr]

    # sharded over several processes (CPU: gloo; GPU: --gpus 0,1 instead of --nproc_per_node)
    python -m paddle.distributed.launch --nproc_per_node 2 tools/eval.py -c CONFIG -o Global.checkpoints=PATH

Weights come from ``Global.checkpoints``, else ``Global.pretrained_model`` (with or without
``.pdparams``), and must cover the whole model.  Every Eval image is evaluated exactly once
(across ranks, counts all-reduced).  With ``Global.bad_sample_policy=skip`` an image that
cannot be loaded is scored as an image without detections (its GT still counts) and listed;
with ``fail`` (default) it stops the evaluation naming ``label_file:line``.

``--protocol`` (default: ``Metric.protocol`` of the config, else ``official``): ``official``
is the ICDAR2015 RRC protocol (``###`` don't-care, int coordinates), ``paddleocr`` PaddleOCR's
DetMetric (``###`` and ``*`` don't-care, invalid polygons skipped).
``--json`` writes metrics, counts, settings, timing and per-image precision / recall / hmean
with counts and boxes; ``--save-submission`` an RRC zip (``res_img_N.txt``) that
``tools/eval_icdar2015.py --gt GT.zip --det ZIP`` scores identically; ``--vis-dir`` PNGs of
the first (or worst-scoring) N images, GT green, detections red, don't-care GT grey.

Rank 0 prints precision, recall, hmean and images/s; its last stdout line is one JSON object.
Exit codes (dbnetpp/errors.py; one line ``eval: error: MESSAGE``): 0 done; 1 data, checkpoint or file-system
error; 2 invalid config or command line, or an output in use by another run; 130 / 143 stopped by a signal.
"""
from __future__ import annotations

import os

# Paddle's C++ INFO lines (gloo / TCP-store start-up and shut-down) would otherwise follow the final
# JSON line under paddle.distributed.launch; warnings and errors still show.  Set before paddle loads.
os.environ.setdefault("GLOG_minloglevel", "1")

import argparse
import sys
from typing import List, Optional

from dbnetpp.cli import add_config_args, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.engine.guard import abort_on_signals
from dbnetpp.errors import ConfigError
from dbnetpp.global_schema import global_value
from dbnetpp.metrics import PROTOCOLS
from dbnetpp.output_lock import lock_outputs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__, epilog=True)
    add_config_args(parser, example="Global.checkpoints=PATH")
    parser.add_argument("--json", dest="json_out", metavar="OUT", help="write the full report (JSON) here")
    parser.add_argument("--save-submission", metavar="ZIP", help="write detections as an ICDAR2015 RRC zip")
    parser.add_argument("--vis-dir", metavar="DIR", help="write pictures of evaluated images here")
    parser.add_argument("--vis", type=int, default=None, metavar="N", help="number of pictures (default 20)")
    parser.add_argument("--vis-mode", choices=("first", "worst"), default="first",
                        help="picture the first N images in Eval order, or the N with the lowest hmean")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                        help="evaluation protocol (default: Metric.protocol of the config, else official)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.vis is not None and args.vis < 1:
        parser.error("--vis must be >= 1")
    if args.vis is not None and not args.vis_dir:
        parser.error("--vis needs --vis-dir")
    if args.vis_dir and args.vis is None:
        args.vis = 20
    return args


def _check_submission_boxes(cfg) -> None:
    box_type = (cfg.get("PostProcess") or {}).get("box_type", "quad")
    if box_type != "quad":
        raise ConfigError("--save-submission writes 4-point boxes (RRC format); set PostProcess.box_type=quad",
                          key="PostProcess.box_type", file=cfg.get("__file__"))


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.opt)
    from dbnetpp import dist as D
    from dbnetpp.evaluation import resolve_weights
    from dbnetpp.metrics import build_metric

    weights, weights_key = resolve_weights(cfg)
    metric = build_metric(cfg, args.protocol)  # the Metric section's object; --protocol overrides Metric.protocol
    if args.save_submission:
        _check_submission_boxes(cfg)
    g = cfg.get("Global") or {}
    env = D.setup(bool(global_value(g, "use_gpu")), log=lambda m: print(m, file=sys.stderr))
    outputs = [(path, folder, key) for path, folder, key in ((args.json_out, False, "--json"),
                                                            (args.save_submission, False, "--save-submission"),
                                                            (args.vis_dir, True, "--vis-dir")) if path]
    locks = lock_outputs(outputs, "evaluation", warn=lambda m: print(f"warning: {m}", file=sys.stderr)) \
        if env.is_main else []
    try:
        return _evaluate(args, cfg, g, env, weights, weights_key, metric)
    finally:
        for lock in locks:
            lock.release()


def _evaluate(args, cfg, g, env, weights, weights_key, metric) -> int:
    from dbnetpp.evaluation import (build_report, evaluate_config, final_line, summary_lines, write_report,
                                    write_submission, write_visualisations)

    say = print if env.is_main else (lambda *a, **k: None)
    say(f"config:    {cfg.get('__file__')}")
    say(f"weights:   {weights} ({weights_key})")
    say(f"device:    {env.device}, {env.world_size} process(es)")
    result = evaluate_config(cfg, weights, env, metric, log=say, progress=not args.no_progress)
    if not env.is_main:
        return 0
    for rec in result.skipped:
        print(f"warning: {rec.label}: {rec.image} could not be loaded ({rec.skipped}); scored with no "
              f"detections, its {len(rec.gt)} GT box(es) count", file=sys.stderr)
    for item in result.unscored:
        print(f"warning: {item['label']}: not scored: {item['reason']}", file=sys.stderr)
    for line in summary_lines(result, env.world_size):
        print(line)
    if result.skipped or result.unscored:
        print(f"skipped:   {len(result.skipped)} image(s) not loaded, scored with no detections; "
              f"{len(result.unscored)} with an unreadable label, not scored")
    if args.json_out:
        report = build_report(result, config_file=cfg.get("__file__"), checkpoint=weights,
                              weights_key=weights_key, world_size=env.world_size, post_process=cfg["PostProcess"],
                              policy=global_value(g, "bad_sample_policy"), overrides=args.opt)
        write_report(report, args.json_out)
        print(f"report:    {args.json_out}")
    if args.save_submission:
        n = write_submission(result.records, args.save_submission)
        print(f"submission: {args.save_submission} ({n} res_img_N.txt files)")
    if args.vis_dir:
        paths = write_visualisations(result.records, args.vis_dir, args.vis, args.vis_mode)
        print(f"pictures:  {len(paths)} in {os.path.abspath(args.vis_dir)} ({args.vis_mode})")
    sys.stdout.flush()
    print(final_line(result), flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        with abort_on_signals("evaluation", note="no report written"):
            return run(args)
    return run_tool("eval", body)


if __name__ == "__main__":
    sys.exit(main())
