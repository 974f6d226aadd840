"""The CPU demo: generate a small synthetic dataset, prepare it, train on it, evaluate, print the scores.

    python tools/demo.py -c configs/det/cpu/demo_mv3_db.yml [--train N --test M --size S]
        [--data-root DIR] [--dry-run] [-o Key=value ...] -- TRAINING COMMAND ...

    # what `bash scripts/train.sh` runs when there is no GPU and no prepared ICDAR2015 (one CPU process):
    python tools/demo.py -c configs/det/cpu/demo_mv3_db.yml --log-prefix train.sh -o Global.use_gpu=False \\
        -- python tools/train.py -c configs/det/cpu/demo_mv3_db.yml -o Global.use_gpu=False

Four steps, each announced as "[k/4] ...", between two banners saying that the data is synthetic:
  1. tools/make_synth_dataset.py writes N training and M test images of S x S pixels in the official
     ICDAR2015 layout to DATA_ROOT/raw (seed 0; a dataset it made there before is replaced);
  2. tools/prepare_icdar2015.py converts them to PaddleOCR label files in DATA_ROOT/text_localization;
  3. the training command after "--" runs, e.g. "python tools/train.py -c CONFIG -o ..." or
     "python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c CONFIG -o ...";
  4. tools/eval.py -c CONFIG --vis-dir SAVE_DIR/pictures --vis 4 -o <the -o overrides>
     Global.checkpoints=SAVE_DIR/latest evaluates the trained model and draws its detections on the first
     four test images (SAVE_DIR: Global.save_model_dir of CONFIG after -o).

Inputs:
  -c CONFIG, -o       the config and the overrides the training command was given (the evaluation uses
                      the same); the config is validated, and a save_model_dir holding an earlier run is
                      refused, before anything runs.
  --train/--test/--size
                      the dataset; each one not given comes from Global.demo_dataset of CONFIG after -o
                      ({train: N, test: M, size: S}); with neither it is an error (there is no built-in size).
  --data-root DIR     where the data is written (default ./train_data/synth_demo, where
                      configs/det/cpu/demo_mv3_db.yml reads it).  When CONFIG after -o does not read Train
                      and Eval data from DIR/text_localization, the tool points both steps 3 and 4 at it:
                      it appends "-o Train.dataset.data_dir=DIR/text_localization/
                      Train.dataset.label_file_list=[.../train_icdar2015_label.txt]
                      Eval.dataset.data_dir=... Eval.dataset.label_file_list=[.../test_icdar2015_label.txt]"
                      to the training command (which must take more -o values at its end, as
                      tools/train.py does) and to the evaluation's overrides.
  Relative paths resolve against the current directory.

Outputs: the folders DATA_ROOT/raw and DATA_ROOT/text_localization, the checkpoints of the training and
the pictures (SAVE_DIR/pictures/NNN_img_K.png: GT green, detections red, the image's P / R / H on top) in
SAVE_DIR, the steps' own output (the evaluation's stderr merged into stdout), then the summary line
"demo (synthetic data) precision P  recall R  hmean H  in M min S s" and, last, one JSON object
{"precision", "recall", "hmean", "data": "synthetic demo", "seconds", "pictures"} (scores from the
evaluation's last JSON line).  --dry-run checks the inputs and prints the four commands instead of running them.

Exit codes: 0 done (or dry run); 2 invalid command line or config, or a step failed (the message on stderr
names the step and its exit code).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from dbnetpp.cli import add_config_args, positive_int, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.engine.state import LATEST
from dbnetpp.errors import ConfigError, UsageError
from dbnetpp.global_schema import global_value
from dbnetpp.jsonline import last_json_line
from dbnetpp.synth import INFO_FILE

TOOLS = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_ROOT = "./train_data/synth_demo"
PICTURES = "pictures"  # SAVE_DIR/pictures: the evaluation's drawings of the first test images
N_PICTURES = 4
SIZE_KEYS = ("train", "test", "size")
LABEL_FILES = {"Train": "train_icdar2015_label.txt", "Eval": "test_icdar2015_label.txt"}
BANNER = """\
==================================================================================================
  DEMO on SYNTHETIC data (no ICDAR2015 found at ./train_data/icdar2015, no GPU): a small CPU run that
  shows the whole pipeline works. Its precision/recall/hmean say nothing about ICDAR2015 accuracy.
  To train on ICDAR2015 instead:
    python tools/prepare_icdar2015.py --src /path/to/icdar2015 --dst ./train_data/icdar2015/text_localization --val 100
    bash scripts/train.sh    # CPU only: fine-tunes DBNet++ from PP-OCRv3 (about an hour on 2 cores);
                             # GPUs: configs/det/det_mv3_db++_icdar15.yml (bash scripts/download_pretrained.sh mv3)
=================================================================================================="""


class DemoError(UsageError):
    """A problem with the inputs or a failed step: ``<prefix>: error: <message>``, exit code 2."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = tool_parser(__doc__, epilog=True)
    parser.usage = "%(prog)s -c CONFIG [options] [-o Section.key=value ...] -- TRAINING COMMAND ..."
    add_config_args(parser, example="Global.save_model_dir=DIR")
    parser.add_argument("--train", type=positive_int, metavar="N",
                        help="training images (default: Global.demo_dataset.train)")
    parser.add_argument("--test", type=positive_int, metavar="M",
                        help="test images (default: Global.demo_dataset.test)")
    parser.add_argument("--size", type=positive_int, metavar="S",
                        help="image side in pixels (default: Global.demo_dataset.size)")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, metavar="DIR",
                        help=f"folder for the raw and prepared data (default {DEFAULT_DATA_ROOT})")
    parser.add_argument("--dry-run", action="store_true", help="check the inputs, print the commands, run nothing")
    parser.add_argument("--log-prefix", default="demo.py", metavar="NAME",
                        help="prefix of the tool's own lines (scripts/train.sh passes train.sh)")
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1:]
    if not args.command:
        parser.error("give the training command after '--' (e.g. -- python tools/train.py -c CONFIG -o ...)")
    return args


def shown(cmd: Sequence[str]) -> str:
    """A command line quoted only where a shell needs it (as scripts/lib/common.sh's show_cmd does)."""
    return "  " + " ".join(a if re.fullmatch(r"[A-Za-z0-9_./:=,+@%-]+", a) else shlex.quote(a) for a in cmd)


def tool(name: str) -> str:
    """tools/<name>, relative to the current directory when it is below it."""
    path = os.path.join(TOOLS, name)
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def dataset_size(args: argparse.Namespace, g: Mapping[str, Any], config: str) -> Tuple[int, int, int]:
    """(train, test, size): the flags, else Global.demo_dataset (already validated by load_config)."""
    stated = g.get("demo_dataset")
    missing = [k for k in SIZE_KEYS if getattr(args, k) is None]
    if missing and stated is None:
        raise DemoError(
            f"{config} has no Global.demo_dataset and {', '.join('--' + k for k in missing)} "
            f"{'was' if len(missing) == 1 else 'were'} not given: add 'demo_dataset: {{train: N, test: M, size: S}}' "
            f"under Global in the config, or pass --train N --test M --size S")
    return tuple(getattr(args, k) if getattr(args, k) is not None else stated[k] for k in SIZE_KEYS)


def _same_path(a: Any, b: str) -> bool:
    return isinstance(a, str) and os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _yaml_path(path: str) -> str:
    """``path`` as an override value: plain when YAML reads it back unchanged, else double-quoted."""
    return path if re.fullmatch(r"[A-Za-z0-9_./@+~-]+", path) else json.dumps(path)


def data_overrides(cfg: Mapping[str, Any], prepared: str, config: str) -> List[str]:
    """The -o values that make Train and Eval read ``prepared`` ([] when the config already does)."""
    reads_it = True
    for split, label in LABEL_FILES.items():
        ds = (cfg.get(split) or {}).get("dataset")
        if not isinstance(ds, dict):
            raise DemoError(f"{config} has no {split}.dataset section: the demo trains on Train and evaluates on Eval")
        labels = ds.get("label_file_list")
        labels = [labels] if isinstance(labels, str) else list(labels or [])
        reads_it = reads_it and _same_path(ds.get("data_dir"), prepared) and len(labels) == 1 \
            and _same_path(labels[0], os.path.join(prepared, label))
    if reads_it:
        return []
    opts = []
    for split, label in LABEL_FILES.items():
        opts += [f"{split}.dataset.data_dir={_yaml_path(prepared.rstrip('/') + '/')}",
                 f"{split}.dataset.label_file_list=[{_yaml_path(os.path.join(prepared, label))}]"]
    return opts


def run_step(cmd: Sequence[str], failed: str, capture: bool = False) -> str:
    """Run ``cmd`` (a :class:`DemoError` starting with ``failed`` when it fails); with ``capture`` its stdout
    and stderr are shown as they come and also returned."""
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE if capture else None,
                                stderr=subprocess.STDOUT if capture else None)
    except OSError as exc:
        raise DemoError(f"{failed}: cannot run {cmd[0]} ({exc.strerror or exc})") from None
    chunks: List[bytes] = []
    try:
        if capture:
            out = getattr(sys.stdout, "buffer", None)
            while True:
                data = proc.stdout.read1(65536)
                if not data:
                    break
                chunks.append(data)
                if out is not None:
                    out.write(data)
                    out.flush()
                else:
                    sys.stdout.write(data.decode("utf-8", "replace"))
                    sys.stdout.flush()
        rc = proc.wait()
    except KeyboardInterrupt:  # the child got the same SIGINT: let it stop cleanly (the trainer saves 'latest')
        rc = proc.wait()
    if rc:
        raise DemoError(f"{failed} (exit code {rc}; see the log above)")
    return b"".join(chunks).decode("utf-8", "replace")


def check_data_root(root: str, raw: str, prepared: str) -> None:
    """The demo replaces only data it made: a prepared dataset in ``prepared`` is the demo's when ``raw`` holds
    the synthetic generator's info file; anything else there (e.g. a prepared ICDAR2015) is refused."""
    if os.path.isdir(prepared) and os.listdir(prepared) and not os.path.isfile(os.path.join(raw, INFO_FILE)):
        raise DemoError(f"{prepared} holds a prepared dataset that the demo did not make (there is no "
                        f"{os.path.join(raw, INFO_FILE)}); the demo would replace it with synthetic data. Give "
                        f"--data-root a new folder (default {DEFAULT_DATA_ROOT})")


def demo(args: argparse.Namespace, say) -> int:
    try:
        cfg = load_config(args.config, args.opt)
        from dbnetpp.engine.checks import check_output_dir
        g = cfg.get("Global") or {}
        check_output_dir(g)  # before the data is generated
    except ConfigError as exc:
        raise DemoError(str(exc)) from None
    n_train, n_test, size = dataset_size(args, g, args.config)
    raw = os.path.join(args.data_root, "raw")
    prepared = os.path.join(args.data_root, "text_localization")
    check_data_root(args.data_root, raw, prepared)
    data_opts = data_overrides(cfg, prepared, args.config)
    save_dir = str(global_value(g, "save_model_dir")).rstrip("/")
    ckpt = f"{save_dir}/{LATEST}"  # the checkpoint the trainer ends on
    pictures = f"{save_dir}/{PICTURES}"
    py = sys.executable
    gen = [py, tool("make_synth_dataset.py"), "--dst", raw, "--train", str(n_train), "--test", str(n_test),
           "--size", str(size), "--seed", "0", "--force"]
    prep = [py, tool("prepare_icdar2015.py"), "--src", raw, "--dst", prepared, "--force", "--no-progress"]
    train = list(args.command) + (["-o", *data_opts] if data_opts else [])
    evaluate = [py, tool("eval.py"), "-c", args.config, "--vis-dir", pictures, "--vis", str(N_PICTURES), "-o",
                *args.opt, *data_opts, f"Global.checkpoints={ckpt}"]

    print(BANNER)
    if args.dry_run:
        say("dry run; would run:")
        for cmd in (gen, prep, train, evaluate):
            print(shown(cmd))
        return 0
    for name in ("make_synth_dataset.py", "prepare_icdar2015.py", "eval.py"):
        if not os.path.isfile(os.path.join(TOOLS, name)):
            raise DemoError(f"tools/{name} is missing from this checkout")
    t0 = time.time()
    say(f"[1/4] generating {n_train} + {n_test} synthetic {size}px images in {raw} (ICDAR2015 layout)")
    run_step(gen, "synthetic data generation failed")
    say(f"[2/4] converting to PaddleOCR label files in {prepared}")
    run_step(prep, "preparing the synthetic dataset failed")
    say(f"[3/4] training {args.config} on {'GPU' if global_value(g, 'use_gpu') else 'CPU'}")
    run_step(train, "training failed")
    say(f"[4/4] evaluating the saved model {ckpt} with tools/eval.py")
    text = run_step(evaluate, "evaluation failed", capture=True)
    secs = int(time.time() - t0)
    metrics = last_json_line(text, key="hmean")
    try:
        p, r, h = (float(metrics[k]) for k in ("precision", "recall", "hmean"))
    except (TypeError, KeyError, ValueError):
        raise DemoError("tools/eval.py printed no JSON line with precision/recall/hmean") from None
    say(f"pictures of the first {min(N_PICTURES, n_test)} test images (GT green, detections red) in {pictures}/")
    print(BANNER)
    say(f"demo (synthetic data) precision {p:.4f}  recall {r:.4f}  hmean {h:.4f}  in {secs // 60} min {secs % 60} s")
    print(json.dumps({"precision": round(p, 6), "recall": round(r, 6), "hmean": round(h, 6),
                      "data": "synthetic demo", "seconds": secs, "pictures": pictures}), flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def say(msg: str) -> None:
        print(f"{args.log_prefix}: {msg}", flush=True)

    return run_tool(args.log_prefix, lambda: demo(args, say))


if __name__ == "__main__":
    sys.exit(main())
