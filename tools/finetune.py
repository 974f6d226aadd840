"""Fine-tune a text detector on your own labelled images, on the machine you have, and export it.

    python tools/finetune.py --data DIR [--labels FILE] [--format auto|det|ppocrlabel|labelstudio]
        [--out output/finetune/<DIR name>] [--model dbnet++|dbnet] [--val N | --val 0.1] [--seed 0]
        [--minutes 60 | --epochs N] [--gpus auto|cpu|0,1] [--dry-run] [-o Key=value ...]
    bash scripts/finetune.sh --data DIR ...            (the same)

Five steps, each announced as "[k/5] ...":
  1. labels: reads the labels of the images in DIR (PaddleOCR det label file, PPOCRLabel's Label.txt with
     only the images checked in its fileState.txt, or a Label Studio JSON export; --format auto finds which)
     and reports what it kept and what it skipped, and why;
  2. split: holds out a validation set (--val: a count, or a fraction of the images; default 10 %, at least
     1; seeded by --seed), written as label files under the output folder;
  3. train: DBNet++ (or DBNet, --model dbnet) from PP-OCRv3's detector (fetched first when missing:
     scripts/download_pretrained.sh ppocrv3) with the CPU fine-tune recipe
     configs/det/cpu/ft_mv3_db++_icdar15.yml, on every CPU core (or the GPUs), for --epochs or as many
     epochs as fit --minutes at this machine's measured speed; validation every quarter of the run and at
     the end keeps the best as best_accuracy; a progress line with the ETA;
  4. evaluate: best_accuracy on the validation set (precision, recall, hmean) with pictures of the worst
     images;
  5. export: a Paddle inference model (PaddleX-registered model_name, for PaddleOCR 3.x) and ONNX (for
     RapidOCR and ONNX Runtime), then the lines that use them.

Everything is written under the output folder (a new one: an existing non-empty folder is refused, as
training refuses to replace a run; it may not lie inside DIR); DIR is only read.  --dry-run reads and
checks the labels, prints the plan and the commands, and writes nothing.  The last line printed is one
JSON object (scores, folders, counts).  Exit codes (dbnetpp/errors.py; one line ``finetune.py: error: MESSAGE``):
0 done; 1 an invalid label or image file (the message names the file and the entry); 2 a bad command line
or a failed step (named, with its log).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dbnetpp.cli import positive_float, positive_int, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.data.own_labels import Converted, convert
from dbnetpp.deploy.settings import InferenceSettings, rapidocr_params
from dbnetpp.errors import UsageError
from dbnetpp.jsonline import last_json_line
from dbnetpp.launch import (CPU_IMAGES_PER_SECOND_PER_CORE, Options, Plan, fetch_ppocrv3,
                            plan_eval, plan_train, ppocrv3_missing, run, show_cmd)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_CONFIG = "configs/det/cpu/ft_mv3_db++_icdar15.yml"
MODELS = {"dbnet++": [], "dbnet": ["Architecture.Neck.use_asf=False", "Architecture.Neck.asf_gate_norm=False"]}
FORMATS = ("auto", "det", "ppocrlabel", "labelstudio")
STEPS = 5
WORST_PICTURES = 8
TIME_FOR_TRAINING = 0.85  # of --minutes: the rest is left for the validations


class FinetuneError(UsageError):
    """A bad command line or a failed step: ``finetune.py: error: <message>``, exit code 2."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    p.add_argument("--data", required=True, metavar="DIR", help="folder of your images and their labels")
    p.add_argument("--labels", metavar="FILE", help="the label file (default: found in DIR)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="label format (default: auto)")
    p.add_argument("--out", metavar="DIR", help="output folder (default output/finetune/<DIR name>)")
    p.add_argument("--model", choices=sorted(MODELS), default="dbnet++", help="DBNet++ (default) or DBNet")
    p.add_argument("--val", type=_val_amount, default=0.1, metavar="N|F",
                   help="validation images: a count (e.g. 30) or a fraction (e.g. 0.1, the default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the training (default 0)")
    p.add_argument("--minutes", type=positive_float, default=60.0,
                   help="training time to plan for on CPU (default 60); ignored with --epochs")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs to train (default: what fits --minutes)")
    p.add_argument("--gpus", default="auto", help="auto (default), cpu, or GPU ids such as 0,1")
    p.add_argument("--dry-run", action="store_true", help="check the labels, print the plan, write nothing")
    p.add_argument("-o", "--opt", nargs="+", action="extend", default=[], metavar="Section.key=value",
                   help="further overrides of the recipe (e.g. Train.loader.num_workers=0)")
    return p.parse_args(argv)


def _val_amount(text: str) -> float:
    value = positive_float(text)
    if value >= 1 and value != int(value):
        raise argparse.ArgumentTypeError(f"--val takes a count (30) or a fraction below 1 (0.1), got {text!r}")
    return value


def say(message: str) -> None:
    print(f"finetune.py: {message}", flush=True)


# ---- 1-2: labels and split ------------------------------------------------------------------------

def split(lines: List[str], val: float, seed: int) -> Tuple[List[str], List[str]]:
    """(train, val): ``val`` lines (a count, or a fraction of them, at least 1) drawn with ``seed``."""
    n_val = int(val) if val >= 1 else max(1, round(val * len(lines)))
    if n_val >= len(lines):
        raise FinetuneError(f"--val {val:g}: {n_val} validation image(s) would leave none to train on "
                            f"({len(lines)} image(s) kept)")
    chosen = set(random.Random(seed).sample(range(len(lines)), n_val))
    return ([ln for i, ln in enumerate(lines) if i not in chosen], [ln for i, ln in enumerate(lines) if i in chosen])


def write_labels(out: str, train: List[str], val: List[str], conv: Converted, seed: int) -> Dict[str, str]:
    folder = os.path.join(out, "labels")
    os.makedirs(folder)
    files = {"train": os.path.join(folder, "train.txt"), "val": os.path.join(folder, "val.txt")}
    for name, lines in (("train", train), ("val", val)):
        with open(files[name], "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    with open(os.path.join(folder, "conversion.txt"), "w", encoding="utf-8") as f:
        f.write(conv.report() + "\n")
        f.writelines(f"skipped\t{where}\t{why}\n" for where, why in conv.skipped)
    with open(os.path.join(folder, "split.json"), "w", encoding="utf-8") as f:
        json.dump({"train": len(train), "val": len(val), "seed": seed, "source": conv.source,
                   "format": conv.source_format}, f, indent=1)
    return files


# ---- 3: the recipe --------------------------------------------------------------------------------

def _transform_index(cfg: Dict[str, Any], split_name: str, name: str) -> int:
    for i, item in enumerate(cfg[split_name]["dataset"]["transforms"]):
        if isinstance(item, dict) and name in item:
            return i
    raise FinetuneError(f"{BASE_CONFIG}: {split_name}.dataset.transforms has no {name}")


def schedule(args: argparse.Namespace, n_train: int, batch: int, procs: int, gpu: bool) -> Tuple[int, int]:
    """(epochs, steps): --epochs, else as many epochs as fit TIME_FOR_TRAINING of --minutes on CPU
    (100 on GPU)."""
    per_epoch = math.ceil(n_train / batch)
    if args.epochs:
        epochs = args.epochs
    elif gpu:
        epochs = 100
    else:
        images = args.minutes * 60 * TIME_FOR_TRAINING * CPU_IMAGES_PER_SECOND_PER_CORE * procs
        epochs = max(1, int(images // (per_epoch * batch)))
    return epochs, epochs * per_epoch


def recipe_overrides(args: argparse.Namespace, data: str, files: Dict[str, str], out: str, epochs: int,
                     steps: int) -> List[str]:
    base = load_config(BASE_CONFIG)
    resize = _transform_index(base, "Eval", "DetResizeForTest")
    every = max(1, steps // 4)
    return [*MODELS[args.model],
            f"Global.save_model_dir={os.path.join(out, 'model')}", f"Global.epoch_num={epochs}",
            f"Global.eval_batch_step=[0,{every}]", "Global.eval_at_end=true", f"Global.seed={args.seed}",
            f"Global.save_res_path={os.path.join(out, 'model', 'predicts.txt')}",
            f"Train.dataset.data_dir={data}", f"Train.dataset.label_file_list=[{files['train']}]",
            f"Eval.dataset.data_dir={data}", f"Eval.dataset.label_file_list=[{files['val']}]",
            # your images are not ICDAR2015's 1280x720: PaddleOCR's inference rule (long side at most 960)
            f"Eval.dataset.transforms.{resize}.DetResizeForTest={{limit_side_len: 960, limit_type: max}}",
            *args.opt]


def _progress(metrics: str, total: int, start: float, last: List[int]) -> None:
    """One progress line from the trainer's metrics.jsonl (a bar on a terminal, a line per 10 % otherwise)."""
    step = 0
    if os.path.isfile(metrics):
        with open(metrics, encoding="utf-8", errors="replace") as f:
            for line in f:
                if '"event": "train"' in line:
                    try:
                        step = max(step, int(json.loads(line)["global_step"]))
                    except (ValueError, KeyError):
                        continue
    if step <= last[0]:
        return
    last[0] = step
    done = step / max(1, total)
    elapsed = time.time() - start
    eta = elapsed / done * (1 - done) if done > 0 else 0
    bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
    text = f"[3/{STEPS}] [{bar}] step {step}/{total} {100 * done:3.0f}%  {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min"
    if sys.stdout.isatty():
        print("\r" + text, end="", flush=True)
    elif int(10 * done) > last[1]:
        last[1] = int(10 * done)
        print(text, flush=True)


def train(plan: Plan, out: str, steps: int) -> None:
    log = os.path.join(out, "train_output.log")
    metrics = os.path.join(out, "model", "metrics.jsonl")
    start, last = time.time(), [0, -1]
    with open(log, "w", encoding="utf-8") as f:
        rc = run(plan, lambda m: None, stdout=f, tick=lambda: _progress(metrics, steps, start, last))
    if sys.stdout.isatty():
        print()
    if rc != 0:
        raise FinetuneError(f"training failed (exit {rc}); its output: {log}\n{_tail(log)}")


def _text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _tail(path: str, n: int = 15) -> str:
    return "".join(_text(path).splitlines(keepends=True)[-n:])


# ---- 4-5: evaluate, export ------------------------------------------------------------------------

def evaluate(args: argparse.Namespace, overrides: List[str], out: str) -> Dict[str, Any]:
    folder = os.path.join(out, "val")
    os.makedirs(folder)
    best = os.path.join(out, "model", "best_accuracy")
    opts = Options("eval", config=BASE_CONFIG, gpus=args.gpus, ckpt=best, overrides=list(overrides),
                   passthrough=["--json", os.path.join(folder, "scores.json"), "--vis-dir",
                                os.path.join(folder, "worst"), "--vis", str(WORST_PICTURES), "--vis-mode", "worst",
                                "--no-progress"])
    plan = plan_eval(opts, lambda m: None)
    log = os.path.join(folder, "eval.log")
    with open(log, "w", encoding="utf-8") as f:
        rc = run(plan, lambda m: None, stdout=f)
    res = last_json_line(_text(log)) if rc == 0 else None
    if res is None:
        raise FinetuneError(f"the evaluation failed (exit {rc}); its output: {log}\n{_tail(log)}")
    return res


def export(overrides: List[str], out: str) -> Dict[str, Any]:
    inference = os.path.join(out, "inference")
    cmd = [sys.executable, "tools/export_model.py", "-c", BASE_CONFIG, "--onnx", "-o", *overrides,
           f"Global.pretrained_model={os.path.join(out, 'model', 'best_accuracy')}",
           f"Global.save_inference_dir={inference}"]
    log = os.path.join(out, "export.log")
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    res = last_json_line(_text(log)) if rc == 0 else None
    if res is None:
        raise FinetuneError(f"the export failed (exit {rc}); its output: {log}\n{_tail(log)}")
    return res


def usage_lines(inference: str) -> str:
    """How to run the export: PaddleOCR 3.x / PaddleX, RapidOCR, our infer_det.py (values from inference.yml)."""
    settings = InferenceSettings.load(inference)
    name = settings.model_name
    params = ", ".join(f'"{key}": {value!r}' for key, value in rapidocr_params(inference).items())
    return "\n".join([
        "PaddleOCR 3.x (pip install paddleocr), detection only, or as the detector of its OCR pipeline:",
        "    from paddleocr import TextDetection, PaddleOCR",
        f"    det = TextDetection(model_name={name!r}, model_dir={inference!r})",
        f"    ocr = PaddleOCR(text_detection_model_name={name!r}, text_detection_model_dir={inference!r})",
        "RapidOCR 3.x (pip install rapidocr onnxruntime):",
        "    from rapidocr import RapidOCR",
        f"    engine = RapidOCR(params={{{params}}})",
        "This project:",
        f"    python tools/infer_det.py --model_dir {inference} --image YOUR_IMAGES --out OUT_DIR",
    ])


# ---- the tool -------------------------------------------------------------------------------------

def check_folders(data: str, out: str) -> None:
    if not os.path.isdir(data):
        raise FinetuneError(f"--data {data}: not a folder")
    real_data, real_out = os.path.realpath(data), os.path.realpath(out)
    if os.path.commonpath([real_data, real_out]) == real_data:
        raise FinetuneError(f"--out {out} lies inside --data {data}: your image folder is only read; choose an "
                            "output folder outside it")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FinetuneError(f"--out {out} already holds a run (or is a file); choose another --out or remove it")


def finetune(args: argparse.Namespace) -> Dict[str, Any]:
    data = args.data
    out = args.out or os.path.join(ROOT, "output", "finetune", os.path.basename(data.rstrip("/")))
    check_folders(data, out)
    say(f"[1/{STEPS}] labels: reading {data}")
    conv = convert(data, args.format, args.labels)
    print(conv.report(), flush=True)
    train_lines, val_lines = split(conv.lines, args.val, args.seed)
    say(f"[2/{STEPS}] split: {len(train_lines)} training + {len(val_lines)} validation images (seed {args.seed})")
    files = {"train": os.path.join(out, "labels", "train.txt"), "val": os.path.join(out, "labels", "val.txt")}
    # the devices and the batch split scripts/train.sh would use, then the schedule that fits them
    probe = plan_train(Options("train", config=BASE_CONFIG, gpus=args.gpus, dry_run=args.dry_run,
                               overrides=recipe_overrides(args, data, files, out, 1, 1)), lambda m: None)
    gpu, procs, batch = probe.device == "gpu", probe.procs, probe.total_batch
    epochs, steps = schedule(args, len(train_lines), batch, procs, gpu)
    overrides = recipe_overrides(args, data, files, out, epochs, steps)
    plan = plan_train(Options("train", config=BASE_CONFIG, gpus=args.gpus, dry_run=args.dry_run,
                              overrides=overrides), say)
    minutes = "" if gpu else f", about {steps * batch / (CPU_IMAGES_PER_SECOND_PER_CORE * procs) / 60:.0f} min"
    say(f"[3/{STEPS}] train: {args.model} from PP-OCRv3's detector, {epochs} epochs = {steps} steps of {batch} "
        f"images on {procs} {'GPU(s)' if gpu else 'CPU process(es)'}{minutes}")
    if args.dry_run:
        say("dry run; would run:\n" + show_cmd(plan.cmd, plan.env))
        return {"dry_run": True, "images": conv.images, "train": len(train_lines), "val": len(val_lines),
                "skipped": len(conv.skipped), "epochs": epochs, "steps": steps, "out": out}
    if ppocrv3_missing(load_config(BASE_CONFIG, overrides)):
        fetch_ppocrv3(say)
    os.makedirs(out, exist_ok=True)
    write_labels(out, train_lines, val_lines, conv, args.seed)
    train(plan, out, steps)
    say(f"[4/{STEPS}] evaluate: best_accuracy on the {len(val_lines)} validation images")
    scores = evaluate(args, overrides, out)
    say(f"          precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  hmean {scores['hmean']:.4f}; "
        f"pictures of the worst images: {os.path.join(out, 'val', 'worst')}")
    say(f"[5/{STEPS}] export: {os.path.join(out, 'inference')}")
    export(overrides, out)
    print(usage_lines(os.path.join(out, "inference")), flush=True)
    return {"precision": scores["precision"], "recall": scores["recall"], "hmean": scores["hmean"],
            "images": conv.images, "train": len(train_lines), "val": len(val_lines), "skipped": len(conv.skipped),
            "epochs": epochs, "steps": steps, "out": out, "inference": os.path.join(out, "inference")}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    # your paths are read from where you are; the recipe's (configs/, tools/, ./pretrain_models) from the project
    args.data = os.path.abspath(args.data)
    args.out = os.path.abspath(args.out) if args.out else None
    args.labels = os.path.abspath(args.labels) if args.labels else None
    os.chdir(ROOT)

    def body() -> int:
        print(json.dumps(finetune(args)), flush=True)
        return 0
    return run_tool("finetune.py", body)


if __name__ == "__main__":
    sys.exit(main())
