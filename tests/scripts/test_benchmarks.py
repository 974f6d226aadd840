"""benchmarks/train.py, benchmarks/dist_equivalence.py and benchmarks/learning.py: they run
end to end on tiny inputs and print the promised JSON last line."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from testutil import last_line_json

TINY = "configs/det/cpu/det_mv3_db++_tiny.yml"


def test_benchmark_train_reports_throughput(root_dir, tiny_data, tiny_overrides, tmp_path):
    opts = [o for o in tiny_overrides(TINY, tiny_data, tmp_path / "unused") if o.startswith(("Train.", "Eval."))]
    proc = subprocess.run([sys.executable, "benchmarks/train.py", "-c", TINY, "--steps", "2", "--warmup", "1",
                           "-o", *opts], cwd=root_dir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert res["steps"] == 2 and res["warmup_steps"] == 1 and res["batch_size_per_card"] == 2
    assert res["samples_per_s"] > 0 and 0 <= res["data_wait_fraction"] <= 1
    assert res["peak_rss_mb"] > 100


@pytest.mark.slow
def test_dist_equivalence_two_processes_match_one(root_dir):
    proc = subprocess.run([sys.executable, "benchmarks/dist_equivalence.py", "--steps", "2", "--size", "64"],
                          cwd=root_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert res["passed"] and len(res["dist"]) == 2 and res["max_rel_diff"] <= 1e-4
    # the one-batch run differs (per-rank BatchNorm and loss normalisation): the check is sensitive enough
    assert res["max_rel_diff_vs_full"] > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("crop", [0, 96])
def test_benchmark_learning_runs(root_dir, icdar_dir, tmp_path, crop):
    proc = subprocess.run([sys.executable, "benchmarks/learning.py", "--data", str(icdar_dir), "--images", "1",
                           "--batch", "1", "--size", "128x224", "--minutes", "0.25", "--eval-every", "2",
                           "--crop", str(crop), "--keep", str(tmp_path / "work")],
                          cwd=root_dir, capture_output=True, text=True, timeout=240)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert res["images"] == 1 and res["care_boxes"] == 4 and res["steps"] >= 2 and res["crop"] == crop
    train_tf = [next(iter(t)) for t in yaml.safe_load((tmp_path / "work" / "config.yml").read_text())
                ["Train"]["dataset"]["transforms"]]
    assert ("EastRandomCropData" in train_tf) == bool(crop) and ("Resize" in train_tf) == (not crop)
    assert 0 <= res["hmean"] <= 1 and res["reached_target"] == (res["hmean"] >= 0.9)


@pytest.mark.slow
def test_benchmark_learning_reports_when_interrupted(root_dir, icdar_dir, tmp_path):
    """SIGTERM (or Ctrl-C) stops the trainer and still prints the evaluations so far; exit code 130."""
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "benchmarks/learning.py", "--data", str(icdar_dir), "--images", "1",
                             "--batch", "1", "--size", "128x224", "--minutes", "10", "--eval-every", "2",
                             "--target", "1.01", "--keep", str(work)],
                            cwd=root_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = work / "out" / "metrics.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and '"event": "eval"' in metrics.read_text():
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the benchmark ended before it was interrupted"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    res = last_line_json(out)
    assert res["reached_target"] is False and res["steps"] >= 2 and 0 <= res["hmean"] <= 1
    assert "interrupted: best hmean" in out
    log = (work / "train.log").read_text()
    assert "training stopped by SIGTERM" in log  # the trainer was stopped, not left running


def test_benchmark_train_compares_process_counts(root_dir, tiny_data, tiny_overrides, tmp_path):
    """--compare-procs 1,2: the same total batch in one process, then split over two (gloo); both reported."""
    opts = [o for o in tiny_overrides(TINY, tiny_data, tmp_path / "unused") if o.startswith(("Train.", "Eval."))]
    proc = subprocess.run([sys.executable, "benchmarks/train.py", "-c", TINY, "--steps", "2", "--warmup", "1",
                           "--compare-procs", "1,2", "-o", *opts], cwd=root_dir, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert res["total_batch"] == 2 and [r["procs"] for r in res["runs"]] == [1, 2]
    one, two = res["runs"]
    assert (one["world_size"], one["batch_size_per_card"]) == (1, 2)
    assert (two["world_size"], two["batch_size_per_card"]) == (2, 1)
    assert one["speedup"] == 1.0 and two["speedup"] > 0 and two["samples_per_s"] > 0
    # a batch that cannot be split evenly is refused before anything runs
    bad = subprocess.run([sys.executable, "benchmarks/train.py", "-c", TINY, "--steps", "1",
                          "--compare-procs", "1,3", "-o", *opts], cwd=root_dir, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "cannot be split evenly over 3" in bad.stderr


def test_benchmark_train_compares_speed_options(root_dir, tiny_data, tiny_overrides, tmp_path):
    """--compare-options: each named option in turn on the same config; the first is the reference, an option
    that fails (oneDNN kernels inside a static training graph) is reported with its error and does not stop
    the others; an unknown option name is refused with the list."""
    opts = [o for o in tiny_overrides(TINY, tiny_data, tmp_path / "unused") if o.startswith(("Train.", "Eval."))]
    proc = subprocess.run([sys.executable, "benchmarks/train.py", "-c", TINY, "--steps", "1", "--warmup", "1",
                           "--compare-options", "eager,to_static,to_static+onednn,to_static+workers0", "-o", *opts],
                          cwd=root_dir, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    runs = {r["option"]: r for r in res["runs"]}
    assert list(runs) == ["eager", "to_static", "to_static+onednn", "to_static+workers0"]
    assert runs["eager"]["speedup"] == 1.0 and runs["to_static"]["samples_per_s"] > 0
    assert runs["to_static+workers0"]["num_workers"] == 0
    assert runs["to_static"]["overrides"] == ["Global.to_static=true"]
    failed = runs["to_static+onednn"]
    if "error" in failed:  # Paddle 3.3's oneDNN conv_transpose kernel is inference-only
        assert failed["samples_per_s"] is None and failed["speedup"] is None and failed["error"]
        assert "FAILED" in proc.stdout
    bad = subprocess.run([sys.executable, "benchmarks/train.py", "-c", TINY, "--compare-options", "eager,bf16"],
                         cwd=root_dir, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown option(s) bf16" in bad.stderr and "to_static" in bad.stderr


@pytest.mark.slow
def test_benchmark_finetune_runs_end_to_end(root_dir, tiny_data, tmp_path):
    """The fine-tune benchmark on a handful of images with a 1-minute limit: the validation curve chooses the
    checkpoint, the test set (the label file beside the validation one) is scored once on it, then the JSON."""
    config = "configs/det/cpu/ft_mv3_db++_icdar15.yml"
    opts = ["Global.epoch_num=1", "Global.eval_batch_step=[0,1]", "Global.pretrained_model=",
            "Train.loader.num_workers=0", "Eval.loader.num_workers=0",
            "Train.dataset.transforms.3.EastRandomCropData.size=[128,128]",
            "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[128,128]"]
    # the training images stand in for a validation split; test_icdar2015_label.txt lies beside them
    for split in ("Train", "Eval"):
        opts += [f"{split}.dataset.data_dir={tiny_data}",
                 f"{split}.dataset.label_file_list=[{tiny_data / 'train_icdar2015_label.txt'}]"]
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "benchmarks/finetune.py", "-c", config, "--procs", "1",
                           "--minutes", "1", "--work", str(work), "--test-scales", "96,160", "-o", *opts],
                          cwd=root_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert set(res) >= {"precision", "recall", "hmean", "minutes", "config", "curve", "test", "val_best"}
    assert res["config"] == config and res["reason"] == "finished" and 0 < res["minutes"] < 1
    assert res["engine"] == "dbnetpp" and res["train_samples_per_s"] > 0
    assert res["curve"] and all(0 <= c["hmean"] <= 1 for c in res["curve"])
    assert res["test_labels"] == str(tiny_data / "test_icdar2015_label.txt")
    assert res["val_labels"] == [str(tiny_data / "train_icdar2015_label.txt")] and not res["test_chose_checkpoint"]
    test = res["test"]
    assert test["checkpoint"] == str(work / "best_accuracy") and test["step"] == res["val_best"]["step"]
    assert (res["precision"], res["recall"], res["hmean"]) == (test["precision"], test["recall"], test["hmean"])
    lines = proc.stdout.splitlines()
    assert any(re.match(r"val\s+[\d.]+ min\s+step\s+\d+", line) for line in lines)
    assert any(line.startswith("test  best_accuracy") and "chosen on validation" in line for line in lines)
    # the test scoring ran tools/eval.py on the test labels (1 image there, 4 in the validation stand-in)
    scored = last_line_json((work / "test" / "eval.log").read_text(encoding="utf-8"))
    assert scored["images"] == 1 and scored["hmean"] == test["hmean"]
    # --test-scales: the same checkpoint again at each long side (DetResizeForTest resize_long)
    assert [sc["long_side"] for sc in test["scales"]] == [96, 160]
    assert all(0 <= sc["hmean"] <= 1 and sc["minutes"] >= 0 for sc in test["scales"])
    assert sum(line.startswith("test  long side") for line in lines) == 2
    assert (work / "test_long160" / "eval.log").is_file()
    # the work folder now holds a run: a second run there is refused, nothing overwritten
    again = subprocess.run([sys.executable, "benchmarks/finetune.py", "-c", config, "--work", str(work)],
                           cwd=root_dir, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_benchmark_finetune_refuses_missing_label_files(root_dir, tiny_data, tmp_path):
    """A missing validation split or test label file stops the benchmark before it trains or writes anything,
    naming the file (and for the validation split, the command that makes it)."""
    config = "configs/det/cpu/ft_mv3_db++_icdar15.yml"
    missing_val = tiny_data / "val_icdar2015_label.txt"
    for extra, needle in (([f"Eval.dataset.label_file_list=[{missing_val}]"], [str(missing_val), "--val 100"]),
                          (["--test", str(tmp_path / "nope.txt")], [str(tmp_path / "nope.txt"), "--test"])):
        opts = [a for a in extra if "=" in a]
        flags = [a for a in extra if "=" not in a] if not opts else []
        work = tmp_path / f"work{len(needle[0])}"
        cmd = [sys.executable, "benchmarks/finetune.py", "-c", config, "--work", str(work), *flags, "-o",
               f"Eval.dataset.data_dir={tiny_data}",
               *(opts or [f"Eval.dataset.label_file_list=[{tiny_data / 'train_icdar2015_label.txt'}]"])]
        proc = subprocess.run(cmd, cwd=root_dir, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert all(n in proc.stderr for n in needle), proc.stderr
        assert not work.exists()


def test_benchmark_finetune_names_the_failed_step(root_dir, tiny_data, tmp_path):
    """A step that fails (tools/train.py on corrupt start weights) ends the benchmark with exit 2 and one
    'benchmarks/finetune.py: error:' message naming the step, its exit code and its log's last lines."""
    bad = tmp_path / "bad.pdparams"
    bad.write_bytes(b"not a paddle file" * 10)
    opts = ["Global.epoch_num=1", f"Global.pretrained_model={tmp_path / 'bad'}", "Train.loader.num_workers=0",
            "Eval.loader.num_workers=0"]
    for split in ("Train", "Eval"):
        opts += [f"{split}.dataset.data_dir={tiny_data}",
                 f"{split}.dataset.label_file_list=[{tiny_data / 'train_icdar2015_label.txt'}]"]
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "benchmarks/finetune.py", "-c", "configs/det/cpu/ft_mv3_db++_icdar15.yml",
                           "--procs", "1", "--minutes", "2", "--work", str(work), "-o", *opts],
                          cwd=root_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    first = proc.stderr.splitlines()[0]
    assert re.fullmatch(r"benchmarks/finetune\.py: error: \S*tools/train\.py failed \(exit 1\); last lines of "
                        + re.escape(str(work / "train.log")) + ":", first), proc.stderr[-2000:]
    assert "bad.pdparams" in proc.stderr and "Traceback" not in proc.stderr


def test_benchmark_asf_records_learning_statistics(root_dir, tiny_data):
    """DBNet / DBNet++ / DBNet++ with a zero gate, a few steps each: every statistic is reported."""
    proc = subprocess.run([sys.executable, "benchmarks/asf.py", "--data-dir", str(tiny_data), "--images", "2",
                           "--steps", "2", "--every", "1", "--size", "128x128", "--batch", "1"],
                          cwd=root_dir, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = last_line_json(proc.stdout)
    assert set(res["final"]) == {"dbnet", "dbnet++", "dbnet++zero"}
    plain, asf, zero = res["final"]["dbnet"], res["final"]["dbnet++"], res["final"]["dbnet++zero"]
    assert plain["grad_neck.asf"] == 0 and "gate_std" not in plain
    assert asf["grad_neck.asf"] > 0 and asf["grad_backbone"] > 0 and 0 <= asf["gate_saturated"] <= 1
    assert {f"level{i}_weight" for i in range(4)} <= set(asf)
    first_zero = next(r for r in res["records"] if r["variant"] == "dbnet++zero")
    assert first_zero["step"] == 1 and first_zero["gate_std"] == 0.0 and first_zero["level0_weight"] == 0.5
    bad = subprocess.run([sys.executable, "benchmarks/asf.py", "--data-dir", str(tiny_data / "none")],
                         cwd=root_dir, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "label file not found" in bad.stderr
