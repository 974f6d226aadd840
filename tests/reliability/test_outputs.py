"""One run per output, and nothing the user gave is overwritten or mistaken for new output:

* every tool that writes an output folder or file takes its lock first (``dbnetpp.output_lock``); a second
  run on it exits 2 naming the first run's pid, before writing anything; a lock left by a dead process is
  taken over with a warning;
* a config file, input images, a prepared dataset or a report are never replaced by a run's outputs;
* an export folder holds one export (no ``inference.onnx`` of an earlier export left beside a new model).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.modeling.detector import build_model
from dbnetpp.output_lock import LOCK_NAME, lock_output, lock_path

_HOLDER = r"""
import sys, time
from dbnetpp.output_lock import lock_output
locks = [lock_output(p, "holder", folder=(kind == "dir")) for kind, p in zip(sys.argv[1::2], sys.argv[2::2])]
print("held", flush=True)
time.sleep(600)
"""


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def holder():
    """Start a process holding the locks of ``(kind, path)`` pairs ("dir" / "file"); yields its pid."""
    procs = []

    def start(*targets):
        args = [str(x) for pair in targets for x in pair]
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, *args], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc.pid

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _weights(rel, tmp_path):
    model = build_model(load_config(str(rel.CONFIG))["Architecture"])
    paddle.save(model.state_dict(), str(tmp_path / "w.pdparams"))
    return tmp_path / "w"


@pytest.mark.slow
def test_a_locked_output_refuses_every_tool(rel, clean_data, tmp_path, holder):
    """tools/train.py, tools/eval.py (--json, --save-submission, --vis-dir), tools/infer_det.py, tools/export_model.py
    and tools/export_onnx.py on an output another process holds: exit 2 naming its pid, nothing written there."""
    busy = tmp_path / "busy"
    busy.mkdir()
    report, weights = tmp_path / "report.json", _weights(rel, tmp_path)
    pid = holder(("dir", busy), ("file", report))
    before = _digest(busy)
    ev = [sys.executable, "tools/eval.py", "-c", str(rel.CONFIG), "-o", *rel.overrides(clean_data, tmp_path / "o"),
          f"Global.pretrained_model={weights}"]
    cmds = {"train": rel.train_cmd(rel.overrides(clean_data, busy, "Global.max_steps=1")),
            "eval --json": ev[:2] + ["--json", str(report)] + ev[2:],
            "eval --vis-dir": ev[:2] + ["--vis-dir", str(busy)] + ev[2:],
            "infer_det": [sys.executable, "tools/infer_det.py", "--model_dir", str(tmp_path / "nomodel"),
                          "--image", str(clean_data / "imgs"), "--out", str(busy)],
            "export_model": [sys.executable, "tools/export_model.py", "-c", str(rel.CONFIG), "--random-init", "-o",
                             f"Global.save_inference_dir={busy}"],
            "export_onnx": [sys.executable, "tools/export_onnx.py", "--model_dir", str(busy)]}
    for name, cmd in cmds.items():
        r = rel.run(cmd, timeout=180)
        assert r.returncode == 2, (name, r.stdout[-1000:], r.stderr[-2000:])
        assert f"is in use by pid {pid} on" in r.stderr and "Traceback" not in r.stderr, (name, r.stderr[-2000:])
        assert _digest(busy) == before and not report.exists(), name
    assert not (busy / "train.log").exists()


@pytest.mark.slow
def test_two_trainings_started_on_one_folder(rel, clean_data, tmp_path):
    """The second exits 2 naming the first; the first finishes normally, its train.log holds only its own run."""
    out = tmp_path / "out"
    first = rel.Background(rel.train_cmd(rel.overrides(clean_data, out, "Global.epoch_num=3",
                                                       "Global.eval_at_end=false")), tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while not (out / "train.log").exists() and first.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (out / "train.log").exists(), first.output()[-2000:]
        second = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.epoch_num=3")), timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        if first.proc.poll() is None:  # still running: the lock refused the second run
            assert f"is in use by pid {first.pid}" in second.stderr, second.stderr[-2000:]
        else:  # finished already: the earlier-run check did
            assert "holds the checkpoints of an earlier run" in second.stderr, second.stderr[-2000:]
        assert first.wait(240) == 0, first.output()[-3000:]
    finally:
        if first.proc.poll() is None:
            first.kill_tree()
    log = (out / "train.log").read_text()
    assert log.count("config: ") == 1, "a second run wrote into train.log"
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", "import os, sys\nfrom dbnetpp.output_lock import lock_output\n"
                        "held = lock_output(sys.argv[1], 'training')\nos._exit(0)", str(out)], timeout=60)
    assert r.returncode == 0 and (out / LOCK_NAME).exists()  # the dead process left its lock file
    dead = json.loads((out / LOCK_NAME).read_text())["pid"]
    said = []
    with lock_output(str(out), "training", warn=said.append) as lock:
        assert lock.stale.startswith(f"pid {dead} on ")
        assert said and "took over the lock left by pid" in said[0] and "no longer running" in said[0]
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()
    assert not os.path.exists(lock_path(str(tmp_path / "r.json"), folder=False))


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    target = tmp_path / "new" / "out"
    with lock_output(str(target), "export"):
        assert target.is_dir()
    assert not target.exists()  # made for the run, nothing written: removed again


# --------------------------------------------------------------------------------------------- not overwritten
def test_source_config_in_the_output_folder_is_kept(rel, clean_data, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    config = exp / "config.yml"
    shutil.copy(rel.CONFIG, config)
    before = config.read_bytes()
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, exp, "Global.max_steps=1"), config=config), timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"would replace the config file {config} itself" in r.stderr
    assert "Copy it out of the folder and pass that copy with -c" in r.stderr
    assert config.read_bytes() == before and sorted(p.name for p in exp.iterdir()) == ["config.yml"]


def test_infer_det_never_writes_over_its_input_images(rel, clean_data, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(clean_data / "imgs", images)
    before = _digest(images)
    r = rel.run([sys.executable, "tools/infer_det.py", "--model_dir", str(tmp_path / "m"), "--image", str(images),
                 "--out", str(images)], timeout=60)
    assert r.returncode == 2 and "is the --image folder" in r.stderr, r.stderr[-2000:]
    one = next(images.glob("*.png"))
    r = rel.run([sys.executable, "tools/infer_det.py", "--model_dir", str(tmp_path / "m"), "--image", str(one),
                 "--out", str(images)], timeout=60)
    assert r.returncode == 2 and "would replace an input image" in r.stderr, r.stderr[-2000:]
    assert _digest(images) == before


def test_demo_never_replaces_a_dataset_it_did_not_make(rel, tmp_path):
    root = tmp_path / "data"
    prepared = root / "text_localization"
    prepared.mkdir(parents=True)
    (prepared / "train_icdar2015_label.txt").write_text("img_1.jpg\t[]\n")
    before = _digest(root)
    r = rel.run([sys.executable, "tools/demo.py", "-c", "configs/det/cpu/demo_mv3_db.yml", "--data-root", str(root),
                 "--dry-run", "--", "python", "tools/train.py"], timeout=120)
    assert r.returncode == 2, (r.stdout[-1000:], r.stderr[-2000:])
    assert "holds a prepared dataset that the demo did not make" in r.stderr and "--data-root" in r.stderr
    assert _digest(root) == before


def test_eval_json_and_submission_on_one_path_is_refused(rel, clean_data, tmp_path):
    weights = _weights(rel, tmp_path)
    same = tmp_path / "out.json"
    r = rel.run([sys.executable, "tools/eval.py", "-c", str(rel.CONFIG), "--json", str(same), "--save-submission",
                 str(same), "-o", *rel.overrides(clean_data, tmp_path / "o"), f"Global.pretrained_model={weights}"],
                timeout=180)
    assert r.returncode == 2 and "--json and --save-submission name the same path" in r.stderr, r.stderr[-2000:]
    assert not same.exists()


# --------------------------------------------------------------------------------------------- one export per folder
@pytest.mark.slow
def test_reexport_leaves_no_file_of_the_earlier_export(rel, tmp_path):
    folder = tmp_path / "export"
    cmd = [sys.executable, "tools/export_model.py", "-c", str(rel.CONFIG), "--random-init", "-o",
           f"Global.save_inference_dir={folder}"]
    r = rel.run(cmd, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    (folder / "inference.onnx").write_bytes(b"an earlier export's ONNX model")
    r = rel.run(cmd, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (folder / "inference.onnx").exists() and (folder / "inference.yml").exists()
    assert LOCK_NAME not in os.listdir(folder)
    (folder / "notes.txt").write_text("mine")
    before = _digest(folder)
    r = rel.run(cmd, timeout=240)
    assert r.returncode == 2 and "holds files that are not part of an export (notes.txt)" in r.stderr, r.stderr[-2000:]
    assert _digest(folder) == before


@pytest.mark.slow
def test_unwritable_outputs_are_one_line_errors(rel, clean_data, tmp_path):
    """An output under a file, in /sys, or a file where a folder is wanted: exit 2, `PROG: error: ...` naming the
    path, no traceback (tools/export_model.py, tools/eval.py --vis-dir, tools/infer_det.py --out)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    weights = _weights(rel, tmp_path)
    export = [sys.executable, "tools/export_model.py", "-c", str(rel.CONFIG), "--random-init", "-o"]
    cmds = {"export under a file": (export + [f"Global.save_inference_dir={a_file}/inference"],
                                    f"{a_file}/inference: Not a directory"),
            "export in /sys": (export + ["Global.save_inference_dir=/sys/dbnetpp_test_export"],
                               "/sys/dbnetpp_test_export"),
            "eval --vis-dir FILE": ([sys.executable, "tools/eval.py", "-c", str(rel.CONFIG), "--vis-dir", str(a_file),
                                     "-o", *rel.overrides(clean_data, tmp_path / "o"),
                                     f"Global.pretrained_model={weights}"], f"{a_file} is a file"),
            "infer_det --out FILE": ([sys.executable, "tools/infer_det.py", "--model_dir", str(tmp_path / "m"),
                                      "--image", str(clean_data / "imgs"), "--out", str(a_file)], f"{a_file} is a file")}
    for name, (cmd, needle) in cmds.items():
        r = rel.run(cmd, timeout=180)
        assert r.returncode == 2, (name, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and needle in r.stderr and ": error: " in r.stderr, (name, r.stderr[-2000:])
    assert a_file.read_text() == "x"
