"""tools/eval.py end to end on a synthetic ICDAR2015-layout test set with a random-init checkpoint: report,
RRC submission re-scored by tools/eval_icdar2015.py, pictures, 1 vs 2 processes, bad input."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from dbnetpp.evaluation.visualize import DONT_CARE_COLOR, GT_COLOR, HEADER_HEIGHT

from testutil import last_json_line, last_line_json

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
EVAL = str(ROOT / "tools" / "eval.py")


def _case_module():
    name = "dbnetpp_tests_eval_case"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "evaluation" / "eval_case.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return _case_module().build_case(tmp_path_factory.mktemp("eval_tool"))


def run_eval(case, *args: str, overrides=(), checkpoint=True, nproc: int = 1, log_dir: Path = None,
             timeout: int = 180) -> subprocess.CompletedProcess:
    cmd = [PY]
    if nproc > 1:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", str(log_dir)]
    cmd += [EVAL, "-c", str(_case_module().CONFIG), "-o", *case.overrides(checkpoint=checkpoint)]
    if overrides:
        cmd += ["-o", *overrides]  # -o given twice, PaddleOCR style
    cmd += [*args, "--no-progress"] if nproc > 1 else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def single(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    proc = run_eval(case, "--json", str(out / "report.json"), "--save-submission", str(out / "submit.zip"),
                    "--vis-dir", str(out / "vis"), "--vis", "7", overrides=["Global.bad_sample_policy=skip"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((out / "report.json").read_text()), out


def test_report_and_console(case, single):
    proc, report, _ = single
    final = last_line_json(proc.stdout)  # the last line is the JSON object
    m, c = report["metrics"], report["counts"]
    assert {k: final[k] for k in ("precision", "recall", "hmean")} == m
    assert 0 < m["precision"] < 1 and 0 < m["recall"] < 1 and 0 < m["hmean"] < 1
    assert c["images"] == 7 and final["images"] == 7 and final["skipped"] == 1
    assert c["matched"] >= 2 and c["matched"] == final["matched"]
    assert re.search(r"speed: +[\d.]+ images/s", proc.stdout)
    assert f"hmean:     {m['hmean']:.4f}" in proc.stdout
    assert report["protocol"] == "official" and report["world_size"] == 1
    assert report["config"] == str(_case_module().CONFIG)
    assert report["checkpoint"] == str(case.checkpoint) + ".pdparams"
    assert report["weights_key"] == "Global.checkpoints" and report["bad_sample_policy"] == "skip"
    assert report["post_process"]["thresh"] == case.thresh
    assert report["timing"]["images_per_second"] > 0 and report["timing"]["ranks"][0]["images"] == 7

    rows = report["per_image"]
    assert [r["index"] for r in rows] == list(range(7))
    for key in ("gt_care", "det_care", "matched"):
        assert sum(r[key] for r in rows) == c[key]
    for r in rows:
        p = r["matched"] / r["det_care"] if r["det_care"] else float(r["gt_care"] == 0)
        rec = r["matched"] / r["gt_care"] if r["gt_care"] else 1.0
        assert r["precision"] == pytest.approx(p) and r["recall"] == pytest.approx(rec)
        assert len(r["detections"]) == len(r["scores"])
    # the undecodable image: reported, scored with no detections, its care GT counted
    (skipped,) = report["skipped"]
    bad = rows[-1]
    assert skipped["label"] == bad["label"] == f"{case.label_file}:{_case_module().CORRUPT_LINE}"
    assert "cannot decode image" in skipped["reason"] and bad["skipped"] == skipped["reason"]
    assert (bad["gt_care"], bad["det_care"], bad["detections"]) == (1, 0, [])
    assert f"{case.label_file}:7" in proc.stderr and "scored with no detections" in proc.stderr


def test_submission_rescored_identically_by_the_official_tool(case, single, tmp_path):
    proc, report, out = single
    with zipfile.ZipFile(out / "submit.zip") as zf:
        assert zf.namelist() == [f"res_img_{k}.txt" for k in range(1, 8)]
        assert zf.read("res_img_7.txt") == b""
        for name in zf.namelist():
            for line in zf.read(name).decode().splitlines():
                assert re.fullmatch(r"-?\d+(,-?\d+){7}", line), line
    per_image = tmp_path / "per_image.json"
    r = subprocess.run([PY, str(ROOT / "tools" / "eval_icdar2015.py"), "--gt", str(case.gt_zip), "--det",
                        str(out / "submit.zip"), "--json", str(per_image)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    official = last_json_line(r.stdout)
    assert official is not None, r.stdout[-3000:]
    assert {k: official[k] for k in ("precision", "recall", "hmean")} == report["metrics"]
    assert {k: official[k] for k in report["counts"]} == report["counts"]
    samples = json.loads(per_image.read_text())["per_sample"]
    for row in report["per_image"]:
        key = re.search(r"img_(\d+)\.jpg$", row["image"]).group(1)
        assert {k: samples[key][k] for k in ("precision", "recall", "hmean", "matched", "det_care", "gt_care")} == \
            {k: row[k] for k in ("precision", "recall", "hmean", "matched", "det_care", "gt_care")}


def test_pictures_show_gt_corners_in_their_colours(case, single):
    _, report, out = single
    files = sorted(os.listdir(out / "vis"))
    assert files == [f"{i:03d}_img_{i + 1}.png" for i in range(7)]
    grey_seen = 0
    for name, row in zip(files, report["per_image"]):
        pic = cv2.imread(str(out / "vis" / name))
        src = cv2.imread(row["image"])
        if src is not None:
            assert pic.shape[0] == src.shape[0] + HEADER_HEIGHT and pic.shape[1] >= src.shape[1]
            h, w = src.shape[:2]
        else:
            h, w = pic.shape[0] - HEADER_HEIGHT, pic.shape[1]
        for poly, dont_care in zip(row["gt"], row["gt_is_dont_care"]):
            for x, y in np.round(np.asarray(poly)).astype(int):
                if not (0 <= x < w and 0 <= y < h):
                    continue
                colour = tuple(int(v) for v in pic[y + HEADER_HEIGHT, x])
                if not dont_care:
                    assert colour == GT_COLOR, (name, x, y)
                elif colour == DONT_CARE_COLOR:
                    grey_seen += 1
    assert grey_seen > 0


def test_two_processes_give_identical_results(case, single, tmp_path):
    _, report1, out1 = single
    logs = tmp_path / "logs"
    proc = run_eval(case, "--json", str(tmp_path / "report.json"), "--save-submission", str(tmp_path / "submit.zip"),
                    "--vis-dir", str(tmp_path / "vis"), "--vis", "3", "--vis-mode", "worst",
                    overrides=["Global.bad_sample_policy=skip"], nproc=2, log_dir=logs)
    worker0 = (logs / "workerlog.0").read_text(errors="replace")
    worker1 = (logs / "workerlog.1").read_text(errors="replace")
    assert proc.returncode == 0, worker0[-3000:] + worker1[-3000:]
    report2 = json.loads((tmp_path / "report.json").read_text())
    for key in ("metrics", "counts", "per_image", "skipped", "protocol"):
        assert report2[key] == report1[key], key
    assert report2["world_size"] == 2
    assert sorted(r["images"] for r in report2["timing"]["ranks"]) == [3, 4]  # 7 images, no padding
    assert (tmp_path / "submit.zip").read_bytes() == (out1 / "submit.zip").read_bytes()
    final = last_json_line(worker0)
    assert final is not None, worker0[-3000:]
    assert {k: final[k] for k in ("precision", "recall", "hmean")} == report1["metrics"]
    assert last_line_json(proc.stdout) == final  # the launcher's last stdout line
    assert "hmean" not in worker1  # rank 1 reports nothing
    worst = sorted(os.listdir(tmp_path / "vis"))
    assert len(worst) == 3
    hmeans = {Path(r["image"]).stem: r["hmean"] for r in report1["per_image"]}
    picked = [hmeans[re.sub(r"^\d{3}_", "", Path(f).stem)] for f in worst]
    assert picked == sorted(picked) and picked[0] == min(hmeans.values())


def test_paddleocr_protocol_and_pretrained_model_path(case, tmp_path):
    proc = run_eval(case, "--protocol", "paddleocr", "--save-submission", str(tmp_path / "s.zip"), "--no-progress",
                    checkpoint=False, overrides=["Global.bad_sample_policy=skip",
                                                 f"Global.pretrained_model={case.checkpoint}.pdparams"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(Global.pretrained_model)" in proc.stdout and "protocol:  paddleocr" in proc.stdout
    final = last_json_line(proc.stdout)
    assert final is not None, proc.stdout[-3000:]
    r = subprocess.run([PY, str(ROOT / "tools" / "eval_icdar2015.py"), "--gt", str(case.gt_zip), "--det",
                        str(tmp_path / "s.zip"), "--protocol", "paddleocr"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    rescored = last_json_line(r.stdout)
    assert rescored is not None, r.stdout[-3000:]
    assert final["protocol"] == rescored["protocol"] == "paddleocr"
    assert {k: final[k] for k in ("precision", "recall", "hmean", "matched", "images")} == \
        {k: rescored[k] for k in ("precision", "recall", "hmean", "matched", "images")}


def test_missing_checkpoint_is_a_clear_error(case, tmp_path):
    missing = tmp_path / "nothing" / "best_accuracy"
    proc = run_eval(case, checkpoint=False, overrides=[f"Global.checkpoints={missing}"])
    assert proc.returncode == 1
    assert f"{missing}.pdparams: file not found" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_no_weights_given_is_a_clear_error(case):
    proc = run_eval(case, checkpoint=False)
    assert proc.returncode == 2
    assert "no weights to evaluate" in proc.stderr and "Global.checkpoints=PATH" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_policy_fail_stops_at_the_undecodable_image(case):
    proc = run_eval(case, "--no-progress")
    assert proc.returncode == 1
    assert f"{case.label_file}:{_case_module().CORRUPT_LINE}: cannot decode image" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_command_line_errors(case):
    proc = run_eval(case, "--vis", "3")
    assert proc.returncode == 2 and "--vis needs --vis-dir" in proc.stderr
    proc = run_eval(case, "--save-submission", "x.zip", overrides=["PostProcess.box_type=poly"])
    assert proc.returncode == 2 and "PostProcess.box_type" in proc.stderr


def test_scripts_eval_sh_runs_the_tool_sharded(case, single, tmp_path):
    script = ROOT / "scripts" / "eval.sh"
    if not script.is_file():
        pytest.skip("scripts/eval.sh is not part of this checkout")
    report = tmp_path / "report.json"
    cmd = ["bash", str(script), str(_case_module().CONFIG), "cpu", "--cpu-procs", "2", "--ckpt", str(case.checkpoint),
           "--log-dir", str(tmp_path / "logs"), "--json", str(report), "--no-progress",
           "-o", *case.overrides(checkpoint=False), "Global.bad_sample_policy=skip"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=180, env={**os.environ, "PYTHON": PY})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    final = last_line_json(proc.stdout)  # also under paddle.distributed.launch
    assert {k: final[k] for k in ("precision", "recall", "hmean")} == single[1]["metrics"]
    got = json.loads(report.read_text())
    assert got["world_size"] == 2 and got["per_image"] == single[1]["per_image"]


@pytest.mark.shared
def test_icdar2015_images_rescored_identically_against_the_official_gt(case, icdar_dir, refdet_dir, tmp_path):
    """Real ICDAR2015 test images (BOM-less CRLF GT, ``###``, commas in texts) through prepare_icdar2015.py,
    tools/eval.py (small input size, the random checkpoint) and tools/eval_icdar2015.py on official_test_gt.zip:
    the same per-image counts and P / R / H."""
    data = tmp_path / "icdar"
    r = subprocess.run([PY, str(ROOT / "tools" / "prepare_icdar2015.py"), "--src", str(icdar_dir), "--dst", str(data),
                        "--splits", "test", "--symlink", "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    label = tmp_path / "test20.txt"
    lines = (data / "test_icdar2015_label.txt").read_text(encoding="utf-8").splitlines()
    label.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    small = [f"Eval.dataset.data_dir={data}", f"Eval.dataset.label_file_list=[{label}]",
             "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[96,160]"]
    proc = run_eval(case, "--json", str(out / "report.json"), "--save-submission", str(out / "submit.zip"),
                    "--no-progress", overrides=small)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["images"] == 20 and report["counts"]["det_care"] > 0
    per_image = tmp_path / "official.json"
    r = subprocess.run([PY, str(ROOT / "tools" / "eval_icdar2015.py"), "--gt",
                        str(refdet_dir / "official_test_gt.zip"), "--det", str(out / "submit.zip"),
                        "--json", str(per_image)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    samples = json.loads(per_image.read_text())["per_sample"]
    keys = ("precision", "recall", "hmean", "gt_care", "det_care", "matched")
    for row in report["per_image"]:
        key = re.search(r"img_(\d+)\.jpg$", row["image"]).group(1)
        assert {k: samples[key][k] for k in keys} == {k: row[k] for k in keys}, key
        assert samples[key]["gt_dont_care"] == row["gt_dont_care"]
