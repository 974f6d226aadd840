"""Every reliability case the tests run, with the promised behaviour.

One list feeds both the tests (parametrized over it, see ``conftest.py``) and
``tests/reliability/gen_doc.py``, which renders ``docs/reliability.md``; a test fails when that
file is stale.  A case whose ``bug`` is set currently misbehaves: its test is a strict
``xfail`` with that reason, and the document says so.

* :data:`CORPUS_CASES`: broken images / label lines (from ``tests/fixtures/bad_inputs/make_corpus.py``).
* :data:`CONFIG_CASES`: malformed configs and command lines given to ``tools/train.py``.
* :data:`SCENARIOS`: kills, full disks, corrupt checkpoints, non-finite losses, evaluation.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

_CORPUS_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs" / "make_corpus.py"


def _load_corpus_module():
    name = "reliability_make_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _CORPUS_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus = _load_corpus_module()
CORPUS_CASES = corpus.CASES



@dataclass(frozen=True)
class ConfigCase:
    """``tools/train.py -c tiny_det.yml -o <overrides>`` (after ``edit`` of the YAML text).

    ``{data}`` and ``{out}`` in overrides are replaced by the dataset folder and the output folder;
    ``edit = (old, new)`` replaces text in a copy of the config (``old == ""`` appends ``new``,
    ``old == "*"`` replaces the whole text); ``config`` is ``"missing"`` (a path that does not exist)
    ``"txt"`` (a copy named ``.txt``) or ``"folder"`` (a folder holding a copy).
    Expected: exit code ``exit_code`` quickly, ``needles`` in stderr, no training step, and the
    config file named in stderr unless ``file_bug`` says why it currently is not.
    """

    id: str
    what: str
    overrides: Tuple[str, ...] = ()
    edit: Optional[Tuple[str, str]] = None
    config: str = ""
    exit_code: int = 2
    needles: Tuple[str, ...] = ()
    names_file: bool = True
    bug: str = ""
    file_bug: str = ""
    in_subprocess: bool = False  # run as a real subprocess (cases that may hang or crash the interpreter)


CONFIG_CASES: Tuple[ConfigCase, ...] = (
    # --- the file itself ---
    ConfigCase("yaml_syntax_error", "YAML syntax error", edit=("epoch_num: 2", "epoch_num: [2"),
               needles=("invalid YAML", "line")),
    ConfigCase("top_level_not_mapping", "YAML top level is a list", edit=("*", "- Global: {}\n- Train: {}\n"),
               needles=("top level must be a mapping",)),
    ConfigCase("config_missing", "config file does not exist", config="missing", needles=("config file not found",)),
    ConfigCase("config_is_a_folder", "-c names a folder of configs", config="folder",
               needles=("names a folder, not a config file",)),
    ConfigCase("config_not_yaml", "config file without .yml/.yaml extension", config="txt",
               needles=(".yml or .yaml",)),
    ConfigCase("unknown_section", "unknown top-level section", edit=("", "\nTrainn:\n  foo: 1\n"),
               needles=("Trainn", "Did you mean 'Train'")),
    ConfigCase("duplicate_key", "a key given twice in one mapping (YAML keeps the last silently)",
               edit=("  epoch_num: 2\n", "  epoch_num: 2\n  epoch_num: 50\n"), overrides=("Global.max_steps=1",),
               needles=("duplicate key 'epoch_num'", "line 7")),
    # --- overrides ---
    ConfigCase("unknown_global_key", "unknown Global key by override", ("Global.epoch_nm=3",),
               needles=("Global.epoch_nm", "Did you mean 'epoch_num'")),
    ConfigCase("unknown_override_section", "override of a section that does not exist", ("Foo.bar=1",),
               needles=("Foo.bar", "section 'Foo'")),
    ConfigCase("override_without_value", "override without '='", ("Global.epoch_num",),
               needles=("Global.epoch_num", "Section.key=value"), names_file=False),
    ConfigCase("override_index_out_of_range", "override of transform #20 of 9", ("Train.dataset.transforms.20.X=1",),
               needles=("Train.dataset.transforms.20.X", "out of range")),
    ConfigCase("override_into_value", "override below a scalar", ("Global.epoch_num.x=1",),
               needles=("Global.epoch_num", "not a section")),
    # --- types ---
    ConfigCase("epoch_num_string", "Global.epoch_num: abc", ("Global.epoch_num=abc",),
               needles=("Global.epoch_num", "must be int")),
    ConfigCase("epoch_num_float", "Global.epoch_num: 1.5", ("Global.epoch_num=1.5",),
               needles=("Global.epoch_num", "must be int")),
    ConfigCase("use_gpu_string", "Global.use_gpu: maybe", ("Global.use_gpu=maybe",), needles=("Global.use_gpu",)),
    ConfigCase("batch_size_string", "batch_size_per_card: abc", ("Train.loader.batch_size_per_card=abc",),
               needles=("Train.loader.batch_size_per_card",)),
    ConfigCase("batch_size_float", "batch_size_per_card: 1.5", ("Train.loader.batch_size_per_card=1.5",),
               needles=("Train.loader.batch_size_per_card",)),
    ConfigCase("eval_batch_with_keep_ratio_resize", "Eval batch 2 with a keep-ratio DetResizeForTest (images of "
               "different sizes cannot be stacked)", edit=("image_shape: [64, 64]", "limit_side_len: 64"),
               needles=("Eval.loader.batch_size_per_card", "DetResizeForTest", "set batch_size_per_card to 1")),
    ConfigCase("empty_save_model_dir", "Global.save_model_dir: '' (would write into the current folder)",
               ("Global.save_model_dir=''",), needles=("Global.save_model_dir", "is empty")),
    ConfigCase("unknown_algorithm", "Architecture.algorithm: EAST (would train a DBNet under another name)",
               ("Architecture.algorithm=EAST",), needles=("Architecture.algorithm", "DB, DB++")),
    ConfigCase("seed_string", "Global.seed: abc", ("Global.seed=abc",), needles=("Global.seed",)),
    ConfigCase("transform_args_not_mapping", "transform arguments are a list", (
        "Train.dataset.transforms.3.EastRandomCropData=[1,2]",), needles=("EastRandomCropData", "mapping")),
    # --- impossible values ---
    ConfigCase("negative_batch", "batch_size_per_card: -2", ("Train.loader.batch_size_per_card=-2",),
               needles=("Train.loader.batch_size_per_card", "positive")),
    ConfigCase("zero_batch", "batch_size_per_card: 0", ("Eval.loader.batch_size_per_card=0",),
               needles=("Eval.loader.batch_size_per_card",)),
    ConfigCase("negative_workers", "num_workers: -1", ("Train.loader.num_workers=-1",),
               needles=("Train.loader.num_workers",)),
    ConfigCase("zero_epochs", "Global.epoch_num: 0", ("Global.epoch_num=0",), needles=("Global.epoch_num",)),
    ConfigCase("zero_max_steps", "Global.max_steps: 0", ("Global.max_steps=0",), needles=("Global.max_steps",)),
    ConfigCase("zero_max_bad_steps", "Global.max_bad_steps: 0", ("Global.max_bad_steps=0",),
               needles=("Global.max_bad_steps",)),
    ConfigCase("negative_seed", "Global.seed: -1", ("Global.seed=-1",), needles=("Global.seed",)),
    ConfigCase("bad_policy", "Global.bad_sample_policy: ignore", ("Global.bad_sample_policy=ignore",),
               needles=("Global.bad_sample_policy", "'fail' or 'skip'")),
    ConfigCase("negative_lr", "learning_rate: -0.1", ("Optimizer.lr.learning_rate=-0.1",),
               needles=("Optimizer.lr.learning_rate",)),
    ConfigCase("negative_warmup", "warmup_epoch: -1", ("Optimizer.lr.warmup_epoch=-1",),
               needles=("Optimizer.lr", "warmup_epoch")),
    ConfigCase("beta1_out_of_range", "Adam beta1: 1.5", ("Optimizer.beta1=1.5",), needles=("Optimizer.beta1",)),
    ConfigCase("negative_regularizer", "regularizer factor: -1", ("Optimizer.regularizer.factor=-1",),
               needles=("Optimizer.regularizer.factor",)),
    ConfigCase("unknown_optimizer", "Optimizer.name: Adamm", ("Optimizer.name=Adamm",),
               needles=("Optimizer.name", "Did you mean 'Adam'")),
    ConfigCase("crop_negative", "EastRandomCropData size [-64, 64]", (
        "Train.dataset.transforms.3.EastRandomCropData.size=[-64,64]",),
        needles=("EastRandomCropData", "size")),
    ConfigCase("crop_not_multiple_of_32", "EastRandomCropData size [70, 70] (the model needs multiples of 32)", (
        "Train.dataset.transforms.3.EastRandomCropData.size=[70,70]",), needles=("EastRandomCropData", "32")),
    ConfigCase("crop_larger_than_memory", "EastRandomCropData size [100000, 100000] (28 GB per sample)", (
        "Train.dataset.transforms.3.EastRandomCropData.size=[100000,100000]",),
        needles=("EastRandomCropData", "too large", "4096"), in_subprocess=True),
    ConfigCase("shrink_ratio_out_of_range", "MakeShrinkMap shrink_ratio 1.5", (
        "Train.dataset.transforms.5.MakeShrinkMap.shrink_ratio=1.5",), needles=("MakeShrinkMap", "shrink_ratio")),
    ConfigCase("normalize_std_zero", "NormalizeImage std with a 0", (
        "Train.dataset.transforms.6.NormalizeImage.std=[0,0.2,0.2]",), needles=("NormalizeImage", "std")),
    ConfigCase("normalize_scale_code", "NormalizeImage scale: __import__('os') (never evaluated)", (
        "Train.dataset.transforms.6.NormalizeImage.scale=__import__('os')",), needles=("NormalizeImage", "scale")),
    ConfigCase("decode_mode_unknown", "DecodeImage img_mode: XYZ", (
        "Train.dataset.transforms.0.DecodeImage.img_mode=XYZ",), needles=("DecodeImage", "img_mode")),
    ConfigCase("ratio_out_of_range", "ratio_list: [2.0]", ("Train.dataset.ratio_list=[2.0]",),
               needles=("Train.dataset.ratio_list",)),
    ConfigCase("backbone_scale", "MobileNetV3 scale 0.33", ("Architecture.Backbone.scale=0.33",),
               needles=("Architecture.Backbone", "scale")),
    ConfigCase("neck_channels", "DBFPN out_channels -5", ("Architecture.Neck.out_channels=-5",),
               needles=("Architecture.Neck", "out_channels")),
    ConfigCase("postprocess_thresh", "DBPostProcess thresh 2.0", ("PostProcess.thresh=2.0",),
               needles=("PostProcess", "thresh")),
    # --- non-finite numbers (each would train NaN weights or score 0 with exit 0) ---
    ConfigCase("lr_infinite", "learning_rate: .inf", ("Optimizer.lr.learning_rate=.inf",),
               needles=("Optimizer.lr.learning_rate", "finite")),
    ConfigCase("lr_overflows", "learning_rate: 1.0e999 (YAML reads infinity)", ("Optimizer.lr.learning_rate=1.0e999",),
               needles=("Optimizer.lr.learning_rate", "finite")),
    ConfigCase("regularizer_infinite", "regularizer factor: .inf", ("Optimizer.regularizer.factor=.inf",),
               needles=("Optimizer.regularizer.factor", "finite")),
    ConfigCase("loss_weight_nan", "Loss alpha: .nan (every step would be skipped)", ("Loss.alpha=.nan",),
               needles=("Loss.alpha", "finite")),
    ConfigCase("loss_weight_negative", "Loss beta: -1", ("Loss.beta=-1",), needles=("Loss.beta", "[0, inf)")),
    ConfigCase("box_thresh_nan", "PostProcess box_thresh: .nan (hmean 0)", ("PostProcess.box_thresh=.nan",),
               needles=("PostProcess.box_thresh", "finite")),
    ConfigCase("box_thresh_nan_string", "PostProcess box_thresh: nan (a string that float() reads as NaN)",
               ("PostProcess.box_thresh=nan",), needles=("PostProcess.box_thresh", "finite")),
    ConfigCase("box_thresh_out_of_range", "PostProcess box_thresh: 1.5 (no box can score that)",
               ("PostProcess.box_thresh=1.5",), needles=("PostProcess.box_thresh", "[0, 1]")),
    ConfigCase("unclip_ratio_infinite", "PostProcess unclip_ratio: .inf", ("PostProcess.unclip_ratio=.inf",),
               needles=("PostProcess.unclip_ratio", "finite")),
    ConfigCase("transform_arg_infinite", "IaaAugment / crop argument .inf deep in a list", (
        "Train.dataset.transforms.3.EastRandomCropData.max_tries=.inf",),
        needles=("Train.dataset.transforms.3.EastRandomCropData.max_tries", "finite")),
    # --- eval_batch_step ---
    ConfigCase("eval_step_three_values", "eval_batch_step: [1, 2, 3]", ("Global.eval_batch_step=[1,2,3]",),
               needles=("Global.eval_batch_step",)),
    ConfigCase("eval_step_string", "eval_batch_step: abc", ("Global.eval_batch_step=abc",),
               needles=("Global.eval_batch_step",)),
    ConfigCase("eval_step_zero_period", "eval_batch_step: [0, 0]", ("Global.eval_batch_step=[0,0]",),
               needles=("Global.eval_batch_step",)),
    ConfigCase("eval_step_negative", "eval_batch_step: [-1, 2]", ("Global.eval_batch_step=[-1,2]",),
               needles=("Global.eval_batch_step",)),
    # --- transforms ---
    ConfigCase("unknown_transform", "unknown Train transform name", (
        "Train.dataset.transforms.1={DetLabelEncodx: null}",), needles=("DetLabelEncodx", "Did you mean")),
    ConfigCase("unknown_eval_transform", "unknown Eval transform name", (
        "Eval.dataset.transforms.2={DetResizeForTst: null}",), needles=("DetResizeForTst", "Did you mean")),
    ConfigCase("unknown_transform_key", "unknown key in a transform", (
        "Train.dataset.transforms.3.EastRandomCropData.sizes=[64,64]",),
        needles=("EastRandomCropData.sizes", "Did you mean 'size'")),
    ConfigCase("unknown_augmenter", "IaaAugment augmenter 'Flipz'", (
        "Train.dataset.transforms.2.IaaAugment.augmenter_args=[{type: Flipz, args: {p: 0.5}}]",),
        needles=("IaaAugment", "Flipz")),
    ConfigCase("keep_unknown_key", "KeepKeys asks for a key no transform makes", (
        "Train.dataset.transforms.8.KeepKeys.keep_keys=[image,foo]",), needles=("KeepKeys", "'foo'")),
    ConfigCase("empty_transform_list", "Train transforms: []", ("Train.dataset.transforms=[]",),
               needles=("Train.dataset.transforms", "is empty")),
    ConfigCase("null_transform_list", "Train transforms: (null)", ("Train.dataset.transforms=",),
               needles=("Train.dataset.transforms", "is empty")),
    ConfigCase("keep_keys_without_loss_target", "Train KeepKeys without threshold_map", (
        "Train.dataset.transforms.8.KeepKeys.keep_keys=[image,threshold_mask,shrink_map,shrink_mask]",),
        needles=("Train.dataset.transforms.8.KeepKeys.keep_keys", "'threshold_map'")),
    ConfigCase("eval_keep_keys_without_polys", "Eval KeepKeys without polys", (
        "Eval.dataset.transforms.5.KeepKeys.keep_keys=[image,shape,ignore_tags]",),
        needles=("Eval.dataset.transforms.5.KeepKeys.keep_keys", "'polys'")),
    ConfigCase("eval_shape_not_multiple_of_32", "DetResizeForTest image_shape [100, 100]", (
        "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[100,100]",),
        needles=("DetResizeForTest.image_shape", "multiple of 32")),
    # --- data and output locations ---
    ConfigCase("missing_label_file", "label file does not exist", ("Train.dataset.label_file_list=[{data}/nope.txt]",),
               needles=("nope.txt", "not found")),
    ConfigCase("missing_eval_label_file", "Eval label file does not exist", (
        "Eval.dataset.label_file_list=[{data}/nope.txt]",), needles=("nope.txt", "not found")),
    ConfigCase("label_file_is_directory", "label_file_list names a folder", ("Train.dataset.label_file_list=[{data}]",),
               needles=("directory",)),
    ConfigCase("empty_label_file_list", "label_file_list: []", ("Train.dataset.label_file_list=[]",),
               needles=("label_file_list",)),
    ConfigCase("missing_data_dir", "data_dir does not exist (policy fail)", ("Train.dataset.data_dir={data}/nowhere",),
               needles=("Train.dataset.data_dir", "nowhere", "not found")),
    ConfigCase("empty_data_dir", "data_dir: (empty)", ("Train.dataset.data_dir=",), needles=("data_dir",)),
    ConfigCase("missing_checkpoint", "Global.checkpoints names no file", ("Global.checkpoints={out}/nope",),
               needles=("Global.checkpoints", "nope")),
    ConfigCase("missing_pretrained", "Global.pretrained_model names no file", (
        "Global.pretrained_model={data}/nope",), needles=("Global.pretrained_model",)),
    ConfigCase("save_dir_is_a_file", "save_model_dir is an existing file", ("Global.save_model_dir={data}/train.txt",),
               needles=("save_model_dir",)),
)


@dataclass(frozen=True)
class Scenario:
    """A fault or robustness case with its own test (``test`` = ``file::function``)."""

    id: str
    area: str
    what: str
    result: str
    test: str
    bug: str = ""


SCENARIOS: Tuple[Scenario, ...] = (
    # --- bad inputs through real runs ---
    Scenario("train_skip_corpus", "bad inputs",
             "whole corpus in the Train set, policy skip, tools/train.py 2 epochs with 2 loader worker processes",
             "exit 0; every bad line skipped and counted per epoch (metrics.jsonl `skipped`), named in the log",
             "test_bad_inputs.py::test_training_run_skips_and_counts_every_bad_sample"),
    Scenario("train_fail_corpus", "bad inputs", "whole corpus in the Train set, policy fail",
             "exit 1 before the first step, stderr names `labels.txt:LINE` of a bad line",
             "test_bad_inputs.py::test_training_run_fail_policy_names_the_bad_line"),
    Scenario("skip_names_every_sample", "bad inputs", "corpus with policy skip: where are the skipped lines listed?",
             "every skipped `label_file:line` is named in train.log or metrics.jsonl",
             "test_bad_inputs.py::test_every_skipped_sample_is_named_somewhere"),
    Scenario("skip_everything_bad", "bad inputs", "policy skip with a wrong data_dir (no sample loads)",
             "exit non-zero: a run that cannot load any sample is an error",
             "test_bad_inputs.py::test_skip_policy_with_nothing_loadable_fails"),
    Scenario("huge_image_memory", "bad inputs", "10000 x 10000 PNG through the train and eval pipelines",
             "refused by default, naming its size (DecodeImage max_pixels, 50 Mpx, checked from the file header "
             "before decoding); with max_pixels raised to 100 Mpx decoded and processed, peak RSS of the loading "
             "process grows by < 1 GB (measured ~0.6 GB)",
             "test_bad_inputs.py::test_huge_image_is_processed_in_bounded_memory"),
    Scenario("loader_unexpected_exception", "bad inputs",
             "a transform raising an unexpected exception (MemoryError) with num_workers: 0",
             "raised in the main process even under policy skip (never skipped, no hang), naming `label_file:line`",
             "test_bad_inputs.py::test_unexpected_sample_exception_does_not_hang"),
    Scenario("data_error_mid_training", "bad inputs", "an image that fails only when decoded, met at step 3 "
             "(policy fail)", "exit 1 naming `label_file:line`; `latest` saved at step 2 first (metrics.jsonl "
             "`stop` event, reason data_error)", "test_bad_inputs.py::test_data_error_during_training_saves_latest_first"),
    Scenario("label_checked_at_start", "bad inputs", "a bad label (a `true` among the coordinates, cut JSON) on "
             "lines 4 and 6 of a label file", "DataError naming line 4 when the loader is built, before any batch",
             "../data/test_loader.py::test_every_label_is_checked_before_the_first_batch"),
    Scenario("batch_cannot_be_made", "bad inputs", "samples of different sizes in one batch (collate fails in the "
             "loader thread, 0 workers, or a worker process, 1 worker)", "LoaderError in the main process within "
             "seconds naming the key and shapes and `Eval.loader.batch_size_per_card`; no hang",
             "../data/test_loader.py::test_a_batch_that_cannot_be_made_ends_the_pass_with_an_error"),
    Scenario("eval_tool_skip", "evaluation", "unloadable Eval images, tools/eval.py policy skip",
             "every image counted (`images` = lines); an unloadable image scores as no detections, its GT counts; "
             "listed on stderr", "test_bad_inputs.py::test_eval_tool_never_drops_an_image"),
    Scenario("eval_tool_fail", "evaluation", "unloadable Eval image, tools/eval.py policy fail",
             "exit 1 naming `label_file:line`", "test_bad_inputs.py::test_eval_tool_never_drops_an_image"),
    Scenario("eval_in_training", "evaluation", "unloadable Eval images during training's evaluation (policy skip)",
             "scored like tools/eval.py: the image counts with no detections",
             "test_bad_inputs.py::test_training_evaluation_never_drops_an_image"),
    Scenario("metric_missing_prediction", "evaluation", "DetMetric / tools/eval_icdar2015.py with an image "
             "that has no prediction", "counts as no detections (GT boxes are misses)",
             "test_bad_inputs.py::test_missing_prediction_counts_as_no_detections"),
    # --- kills ---
    Scenario("kill_single", "kill / resume", "single process: SIGKILL then SIGTERM at seeded random steps, "
             "resume each time with Global.checkpoints=.../latest",
             "final weights identical to an uninterrupted deterministic run; every checkpoint file loads after "
             "each kill", "test_faults.py::test_single_process_kill_and_resume_is_exact"),
    Scenario("kill_single_metrics", "kill / resume", "metrics.jsonl after a SIGKILL and resume",
             "each global step logged once (the steps redone after the kill replace the lost ones)",
             "test_faults.py::test_metrics_log_has_each_step_once_after_kill_and_resume"),
    Scenario("kill_distributed", "kill / resume", "2 CPU processes (paddle.distributed.launch, gloo): SIGTERM and "
             "SIGKILL of the whole job at seeded random steps, resume",
             "final weights identical to an uninterrupted 2-process run; checkpoints load after each kill",
             "test_faults.py::test_two_process_kill_and_resume_is_exact"),
    Scenario("rank_death", "kill / resume", "SIGKILL of one trainer process of a 2-process job",
             "the whole job exits non-zero in < 120 s, no process left behind",
             "test_faults.py::test_dead_rank_stops_the_whole_job"),
    Scenario("launcher_killed", "kill / resume", "SIGKILL of paddle.distributed.launch only (its trainers survive)",
             "the trainers stop within 10 s", "test_faults.py::test_killed_launcher_leaves_no_trainer_behind"),
    Scenario("signal_in_training_eval", "signals", "SIGTERM / SIGINT during an evaluation inside training "
             "(1200 images at 512x512)", "exit 128+signal within 10 s, no traceback, `latest` saved, no partial "
             "eval recorded", "test_signals.py::test_signal_during_training_evaluation_saves_latest_and_exits"),
    Scenario("signal_in_eval_tool", "signals", "SIGTERM / SIGINT during tools/eval.py",
             "exit 128+signal within 10 s, one line naming the signal, no traceback, no report",
             "test_signals.py::test_signal_during_tools_eval_exits_quickly_without_traceback"),
    Scenario("second_signal", "signals", "a second SIGTERM more than the 3 s grace period after the first, during "
             "a long step", "aborts at once (exit 143 within 10 s), one line, no traceback, nothing saved",
             "test_signals.py::test_second_signal_after_the_grace_period_aborts_at_once"),
    Scenario("new_run_over_finished_run", "checkpoints", "tools/train.py and scripts/train.sh with a save_model_dir "
             "holding an earlier run's checkpoints", "exit 2 before anything is written, naming the folder and "
             "the ways out (Global.checkpoints, another save_model_dir, Global.overwrite=true); every file unchanged",
             "test_overwrite.py::test_new_run_into_a_finished_run_is_refused"),
    # --- the shell scripts ---
    Scenario("script_value_as_code", "scripts", "shell or Python code as a config value (learning_rate, "
             "batch_size_per_card, reference_cards), an -o override, an option (--cpu-procs, --nnodes, --rank, "
             "--ref-cards, GPUS) or an environment variable (DEMO_TRAIN, DOWNLOAD_TIMEOUT) of scripts/train.sh, "
             "scripts/eval.sh, scripts/download_pretrained.sh, with and without --dry-run",
             "exit 2 naming the value and what it must be; nothing runs (the code's marker file is never created)",
             "test_scripts_as_data.py::test_values_are_data_never_code"),
    Scenario("pickle_runs_code", "checkpoints", "a .pdparams / .pdopt / .states whose pickle calls os.system "
             "(`__reduce__`), as Global.pretrained_model, Global.checkpoints, tools/eval.py or tools/export_model.py "
             "weights, or inside .states' random state", "refused before anything else is read from it: "
             "`FILE: refused: the file asks for posix.system ...` (only NumPy arrays, dtypes, containers, numbers "
             "and strings are admitted); no code runs; files written by Paddle 2.6 / 3.3 and the released weights "
             "still load", "test_unsafe_pickles.py::test_tools_refuse_a_malicious_weights_file"),
    Scenario("update_to_infinity", "non-finite", "Optimizer.lr.learning_rate=1e308 (finite in YAML, infinite in "
             "float32): the first update fills the weights with NaN / infinity",
             "exit 1 at that step naming the step, the parameters and the learning rate; no checkpoint written from "
             "those weights (`latest` keeps the last finite ones); metrics.jsonl `stop` reason `non_finite_weights`",
             "test_non_finite.py::test_an_update_to_infinity_stops_training_at_once"),
    Scenario("weights_with_nan", "non-finite", "a .pdparams holding NaN / infinity as Global.pretrained_model, "
             "tools/eval.py or tools/export_model.py weights", "refused before anything is loaded: `FILE: N tensor(s) "
             "hold NaN or infinity: NAME (k of n values) ...`; nothing trained, scored or exported",
             "test_non_finite.py::test_tools_refuse_weights_with_nan"),
    Scenario("infer_threshold_nan", "non-finite", "tools/infer_det.py --box_thresh nan, --thresh inf, "
             "--unclip_ratio nan / -1, --box_thresh 1.5", "exit 2 naming the argument and the value; nothing written",
             "test_non_finite.py::test_infer_det_refuses_non_finite_thresholds"),
    # --- outputs ---
    Scenario("output_in_use", "outputs", "a second run on an output another process holds: tools/train.py "
             "(save_model_dir), tools/eval.py (--json, --save-submission, --vis-dir), tools/infer_det.py --out, "
             "tools/export_model.py, tools/export_onnx.py", "exit 2 before writing anything: `DIR is in use by pid P "
             "on HOST (COMMAND, started T)`", "test_outputs.py::test_a_locked_output_refuses_every_tool"),
    Scenario("two_trainings_one_folder", "outputs", "two tools/train.py started on one empty save_model_dir",
             "the second exits 2 naming the first (or its finished checkpoints); the first finishes, its train.log "
             "holds one run", "test_outputs.py::test_two_trainings_started_on_one_folder"),
    Scenario("stale_lock", "outputs", "the lock file of a process that died (SIGKILL, power loss)",
             "taken over, with a warning naming the dead process; removed when the run ends",
             "test_outputs.py::test_stale_lock_of_a_dead_process_is_taken_over"),
    Scenario("config_replaced_by_run", "outputs", "-c exp/config.yml -o Global.save_model_dir=exp",
             "exit 2 before anything is written: the run would replace the config file itself; the way out named "
             "(a config.yml a run wrote there may be replaced, so resuming from it works)",
             "test_outputs.py::test_source_config_in_the_output_folder_is_kept"),
    Scenario("infer_over_inputs", "outputs", "tools/infer_det.py --image DIR --out DIR, or --out the folder of a "
             "single --image", "exit 2, the images untouched",
             "test_outputs.py::test_infer_det_never_writes_over_its_input_images"),
    Scenario("demo_over_dataset", "outputs", "tools/demo.py --data-root DIR where DIR/text_localization holds a "
             "prepared dataset the demo did not make (e.g. ICDAR2015)", "exit 2 (also with --dry-run), nothing "
             "replaced", "test_outputs.py::test_demo_never_replaces_a_dataset_it_did_not_make"),
    Scenario("json_and_zip_one_path", "outputs", "tools/eval.py --json F --save-submission F",
             "exit 2 before evaluating: the two outputs name one path",
             "test_outputs.py::test_eval_json_and_submission_on_one_path_is_refused"),
    Scenario("stale_export_file", "outputs", "re-export into a folder holding an earlier export's inference.onnx; "
             "export into a folder holding other files", "every file of the earlier export is removed first "
             "(infer_det --backend onnx can no longer run the old model); a folder with other files is refused, "
             "nothing removed", "test_outputs.py::test_reexport_leaves_no_file_of_the_earlier_export"),
    Scenario("unwritable_output", "outputs", "an output path under a file, in /sys, or a file where a folder is "
             "wanted (tools/export_model.py, tools/eval.py --vis-dir, tools/infer_det.py --out)", "exit 2 with one "
             "`PROG: error: ...` line naming the path; no traceback (every tool maps errors through one table, "
             "dbnetpp/errors.py)", "test_outputs.py::test_unwritable_outputs_are_one_line_errors"),
    # --- hostile files ---
    Scenario("hostile_submission_zip", "hostile files", "submission zip entry with a bad CRC, an unknown "
             "compression method, the encrypted flag, a 5000-digit image number, one 100 MB line (97 KB zip), "
             "3 million lines (230 KB zip), a 1 MB bad line", "tools/eval_icdar2015.py exits 1 with one short "
             "`error:` line naming the zip entry (bad lines quoted by an 80-character prefix); entries over 8 MB "
             "or 100000 lines, and more than 256 MB in all, refused before parsing",
             "test_hostile_files.py::test_hostile_zip_is_a_clear_error"),
    Scenario("resume_other_architecture", "checkpoints", "Global.checkpoints of a DBNet++ run under a DBNet config "
             "(and the reverse), or without .pdopt / .states", "CheckpointError naming the entries / file; "
             "Global.allow_partial_resume=true loads what fits",
             "../test_checkpoint.py::test_resume_into_another_architecture_is_an_error_unless_partial"),
    Scenario("crash_between_files", "checkpoints", "crash while `latest` is being replaced (between renaming its "
             ".pdparams and .pdopt/.states)", "resume refuses a mixed checkpoint or sees a consistent one",
             "test_faults.py::test_crash_while_replacing_latest_leaves_a_consistent_checkpoint"),
    Scenario("corrupt_checkpoint", "checkpoints", "truncated / zero-byte / random-bytes .pdparams, .pdopt, .states",
             "CheckpointError naming the file (tools/train.py: exit 1, file in stderr)",
             "test_faults.py::test_corrupt_checkpoint_is_detected"),
    Scenario("corrupt_latest_resume", "checkpoints", "resume from a `latest` whose .pdopt was truncated",
             "tools/train.py exits 1 before any step, naming the file",
             "test_faults.py::test_corrupt_latest_stops_a_resume_with_a_clear_error"),
    Scenario("bitflip_checkpoint", "checkpoints", "bytes overwritten inside the tensor data of .pdparams",
             "detected on load (checksum) instead of resuming with changed weights",
             "test_faults.py::test_overwritten_weights_are_detected"),
    # --- disk ---
    Scenario("disk_full", "disk", "output disk fills up during training (tiny tmpfs when mountable; "
             "else RLIMIT_FSIZE)", "exit 1 with 'No space left on device' / 'File too large' naming the "
             "checkpoint; the previous `latest` still loads and resumes",
             "test_faults.py::test_full_disk_fails_clearly_and_keeps_last_checkpoint"),
    Scenario("read_only_output", "disk", "save_model_dir on a read-only file system",
             "exit non-zero before the first step with a message naming the folder",
             "test_faults.py::test_read_only_output_dir_fails_before_training"),
    # --- loss guard ---
    Scenario("nan_input", "loss guard", "one image with a NaN pixel after normalisation (test transform)",
             "the step is skipped and reported like a NaN loss; no NaN reaches the weights",
             "test_loss_guard.py::test_nan_input_image_is_caught"),
    Scenario("nan_sample", "loss guard", "one sample with a NaN target (test transform)",
             "that step skipped (no update, BatchNorm statistics restored) and reported with the sample's "
             "label_file:line; training continues", "test_loss_guard.py::test_nan_sample_is_skipped_and_reported"),
    Scenario("nan_stop", "loss guard", "every sample NaN, Global.max_bad_steps: 2, tools/train.py",
             "exit 1 after 2 consecutive bad steps with the guard's message; weights never updated",
             "test_loss_guard.py::test_persistent_nan_stops_training"),
    Scenario("nan_one_rank", "loss guard", "NaN only on rank 1 of a 2-process job",
             "both ranks skip the same steps and stop together (exit 1, no hang)",
             "test_loss_guard.py::test_nan_on_one_rank_stops_all_ranks"),
)
