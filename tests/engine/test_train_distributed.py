"""A real 2-process CPU (gloo) run through ``paddle.distributed.launch``: sharded training and evaluation,
checkpoints, logs, metrics.jsonl, skipped samples summed over ranks, final JSON line."""
import json
import re

import cv2


def _dataset_with_a_broken_image(cli, root):
    """9 good training images + 1 that cannot be decoded (10 lines: no padding over 2 ranks);
    4 good test images + the broken one (with 2 GT boxes)."""
    data = cli.make_dataset(root, n_train=9, n_test=4, seed=1)
    (data / "imgs" / "broken.png").write_bytes(b"this is not an image")
    box = [[1, 1], [20, 1], [20, 10], [1, 10]]
    for split, n_boxes in (("train", 1), ("test", 2)):
        label = json.dumps([{"transcription": "x", "points": box}] * n_boxes)
        with open(data / f"{split}.txt", "a", encoding="utf-8") as f:
            f.write(f"imgs/broken.png\t{label}\n")
    return data


def test_two_process_cpu_training(cli, tmp_path):
    data = _dataset_with_a_broken_image(cli, tmp_path / "data")
    out, logs = tmp_path / "out", tmp_path / "launch_logs"
    overrides = cli.overrides(data, out, "Global.epoch_num=2", "Global.eval_batch_step=[0,3]",
                              "Global.bad_sample_policy=skip", "Global.use_visualdl=true")
    # -o given twice, PaddleOCR style
    cmd_overrides = overrides[:3] + ["-o"] + overrides[3:]
    r = cli.run(cmd_overrides, nproc=2, log_dir=logs, timeout=240)
    worker0 = (logs / "workerlog.0").read_text(errors="replace")
    worker1 = (logs / "workerlog.1").read_text(errors="replace")
    assert r.returncode == 0, worker0[-3000:] + worker1[-3000:]

    # rank 0: last stdout line of the trainer is the JSON summary
    summary = [json.loads(ln) for ln in worker0.splitlines() if ln.startswith("{")][-1]
    assert summary["steps"] == 6  # 10 samples / 2 ranks / batch 2 -> 3 iterations/epoch, 2 epochs
    assert summary["epochs"] == 2 and summary["best_step"] in (3, 6)
    assert set(summary) >= {"precision", "recall", "hmean", "best_epoch"}

    for prefix in ("latest", "best_accuracy", "iter_epoch_1", "iter_epoch_2"):
        for ext in ("pdparams", "pdopt", "states"):
            assert (out / f"{prefix}.{ext}").is_file(), f"{prefix}.{ext}"
    assert (out / "config.yml").is_file() and "distributed: true" in (out / "config.yml").read_text()
    png = cv2.imread(str(out / "training_curves.png"))
    assert png is not None and png.shape[0] > 100

    log = (out / "train.log").read_text()
    assert "world size 2 (gloo)" in log and "evaluated" not in log
    line = re.search(r"epoch: \[1/2\], global_step: 1, lr: \S+, loss: [\d.]+, loss_shrink_maps: [\d.]+, "
                     r"loss_threshold_maps: [\d.]+, loss_binary_maps: [\d.]+, avg_reader_cost: [\d.]+ s, "
                     r"avg_batch_cost: [\d.]+ s, avg_samples: (\d+), ips: [\d.]+ samples/s, eta: \d+:\d\d:\d\d", log)
    assert line, log[:3000]
    assert line.group(1) == "4"  # samples of the step summed over both ranks
    assert "visualdl" in log  # the package is absent: one warning
    # rank 1 writes no files and logs no info lines
    assert "global_step" not in worker1

    events = cli.events(out / "metrics.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds.count("train") == 6 and kinds.count("eval") == 2 and kinds.count("epoch") == 2
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["global_step"] for e in evals] == [3, 6]
    # each test image evaluated once over the two shards; the broken one counts with its 2 GT boxes
    gt_boxes = sum(len(json.loads(ln.split("\t")[1])) for ln in (data / "test.txt").read_text().splitlines())
    assert all(e["images"] == 5 and e["gt_care"] == gt_boxes for e in evals), evals
    assert all(0.0 <= e["hmean"] <= 1.0 for e in evals)
    # the broken image is skipped once per epoch, counted over both ranks, and reported
    assert [e["skipped"] for e in events if e["event"] == "epoch"] == [1, 1]
    assert "1 sample(s) skipped" in log and "train.txt:10" in worker0 + worker1


def test_sigterm_to_the_launcher_saves_latest_once(cli, engine_data, tmp_path):
    """The launcher forwards SIGTERM to both trainers; they agree on the step to stop after, rank 0 saves."""
    import os
    import pickle
    import signal
    import subprocess
    import time

    out, logs = tmp_path / "out", tmp_path / "launch_logs"
    cmd = cli.cmd(cli.overrides(engine_data, out, "Global.epoch_num=200", "Global.eval_batch_step=[0,100000]",
                                "Global.save_epoch_step=1000"), nproc=2, log_dir=logs)
    launcher_log = open(tmp_path / "launcher.txt", "w")
    proc = subprocess.Popen(cmd, cwd=str(cli.config.parents[3]), stdout=launcher_log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 180
        worker0 = logs / "workerlog.0"
        while time.time() < deadline:
            if worker0.exists() and "global_step: 3," in worker0.read_text(errors="replace"):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    w0 = worker0.read_text(errors="replace")
    w1 = (logs / "workerlog.1").read_text(errors="replace")
    assert "training stopped by SIGTERM; 'latest' was saved" in w0 and "training stopped by SIGTERM" in w1, \
        f"rc {proc.returncode}\n--- worker 0:\n{w0[-3000:]}\n--- worker 1:\n{w1[-3000:]}\n--- launcher:\n" \
        f"{(tmp_path / 'launcher.txt').read_text()[-3000:]}"
    with open(out / "latest.states", "rb") as f:
        states = pickle.load(f)
    assert 3 <= states["global_step"] < 400 and states["world_size"] == 2
    assert f"saved {out / 'latest'} (global step {states['global_step']})" in w0
