"""SIGTERM in the middle of an epoch, then ``Global.checkpoints=.../latest``: the resumed run ends with
exactly the weights, optimizer state and schedule of an uninterrupted run (deterministic, one process)."""
import os
import pickle
import signal
import subprocess

import numpy as np
import paddle
import pytest

STEPS = 16  # 4 epochs x 4 iterations (8 images, batch 2)


def _common(cli, data, out, *extra):
    return cli.overrides(data, out, "Global.epoch_num=4", "Global.deterministic=true",
                         "Global.eval_batch_step=[0,6]", "Global.save_epoch_step=100", *extra)


def _interrupt_after(cli, overrides, step):
    """Start a training in its own process group and send SIGTERM to the whole group (the trainer and its
    data-loader worker, as ``timeout`` or a batch scheduler does) once global step ``step`` is logged."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cli.cmd(overrides), cwd=str(cli.config.parents[3]), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if f"global_step: {step}," in line:
                os.killpg(proc.pid, signal.SIGTERM)
                break
        lines.extend(proc.stdout)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, "".join(lines)


def _load(prefix):
    return paddle.load(f"{prefix}.pdparams"), paddle.load(f"{prefix}.pdopt")


def test_sigterm_then_resume_equals_uninterrupted_run(cli, engine_data, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = cli.run(_common(cli, engine_data, full))
    assert r.returncode == 0, r.stderr[-3000:]
    assert cli.last_json(r.stdout)["steps"] == STEPS

    # with a data-loader worker process (the uninterrupted run has none: results do not depend on it)
    workers = "Train.loader.num_workers=1"
    rc, out = _interrupt_after(cli, _common(cli, engine_data, cut, workers), step=6)
    assert rc == 128 + signal.SIGTERM, out[-3000:]
    assert "SIGTERM received" in out and "training stopped by SIGTERM" in out
    with open(cut / "latest.states", "rb") as f:
        states = pickle.load(f)
    stopped = states["global_step"]
    assert 6 <= stopped < STEPS, "the run ended before the signal arrived"
    assert states["epoch"] * 4 + states["iter_in_epoch"] == stopped
    events = cli.events(cut / "metrics.jsonl")
    assert events[-1]["event"] == "stop" and events[-1]["signal"] == signal.SIGTERM

    r = cli.run(_common(cli, engine_data, cut, workers, f"Global.checkpoints={cut / 'latest'}"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed from {cut / 'latest'}: global step {stopped}" in r.stdout
    summary = cli.last_json(r.stdout)
    assert summary["steps"] == STEPS and summary["epochs"] == 4

    (pa, oa), (pb, ob) = _load(full / "latest"), _load(cut / "latest")
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k].numpy(), pb[k].numpy(), err_msg=k)
    assert oa["LR_Scheduler"] == ob["LR_Scheduler"]
    for k in oa:
        if k != "LR_Scheduler":
            np.testing.assert_array_equal(np.asarray(oa[k]), np.asarray(ob[k]), err_msg=k)
    # the curve continues: the resumed run logs steps stopped+1 .. STEPS, the metrics file keeps the first part
    steps = [e["global_step"] for e in cli.events(cut / "metrics.jsonl") if e["event"] == "train"]
    assert steps == list(range(1, STEPS + 1))


@pytest.mark.parametrize("bad", ["missing", "corrupt"])
def test_bad_checkpoint_path_fails_before_training(cli, engine_data, tmp_path, bad):
    out = tmp_path / "out"
    ckpt = tmp_path / "ck"
    if bad == "corrupt":
        (tmp_path / "ck.pdparams").write_bytes(b"not a checkpoint")
    r = cli.run(cli.overrides(engine_data, out, f"Global.checkpoints={ckpt}"))
    assert r.returncode == (2 if bad == "missing" else 1), r.stderr
    assert str(ckpt) in r.stderr
    assert "global_step: 1," not in r.stdout


def test_resume_in_the_same_process_restores_optimizer_moments(cli, engine_data, tmp_path):
    """Several trainers in one process (parameter names would otherwise shift): resume == straight run."""
    from dbnetpp.config import load_config
    from dbnetpp.engine.trainer import Trainer

    def run(out, *extra):
        cfg = load_config(str(cli.config), cli.overrides(engine_data, out, "Global.eval_at_end=false",
                                                         "Global.deterministic=true", *extra))
        return Trainer(cfg).train()

    run(tmp_path / "straight", "Global.max_steps=6")
    run(tmp_path / "cut", "Global.max_steps=3")  # stops mid-epoch 1 (4 iterations/epoch)
    # as if the run had gone on after 'latest' and been killed mid-write: those events are dropped on resume
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write('{"event": "train", "global_step": 4, "loss": 1.0}\n{"event": "tra')
    summary = run(tmp_path / "cut", "Global.max_steps=6", f"Global.checkpoints={tmp_path / 'cut' / 'latest'}")
    assert summary["steps"] == 6
    (pa, oa), (pb, ob) = _load(tmp_path / "straight" / "latest"), _load(tmp_path / "cut" / "latest")
    for k in pa:
        np.testing.assert_array_equal(pa[k].numpy(), pb[k].numpy(), err_msg=k)
    steps = [e["global_step"] for e in cli.events(tmp_path / "cut" / "metrics.jsonl") if e["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    moments = [k for k in oa if "moment1" in k]
    assert moments and all(np.array_equal(np.asarray(oa[k]), np.asarray(ob[k])) for k in moments)


def test_resume_from_paddleocr_latest_recovers_the_position(cli, engine_data, tmp_path):
    """PaddleOCR release/2.5 writes ``.states`` for best_accuracy only: its ``latest`` (what its docs resume
    from) is ``.pdparams`` + ``.pdopt``.  The position comes from the learning-rate schedule's step count in
    ``.pdopt``, said in one line; since augmentation and sample order are seeded per (seed, epoch, sample),
    the resumed run ends with exactly the weights of a straight run."""
    from dbnetpp.config import load_config
    from dbnetpp.engine.trainer import Trainer

    def run(out, *extra):
        cfg = load_config(str(cli.config), cli.overrides(engine_data, out, "Global.eval_at_end=false",
                                                         "Global.deterministic=true", "Global.epoch_num=4", *extra))
        return Trainer(cfg).train()

    run(tmp_path / "straight")
    run(tmp_path / "first", "Global.max_steps=8")  # two whole epochs of 4 iterations
    ppocr = tmp_path / "ppocr"
    ppocr.mkdir()
    params, opt = _load(tmp_path / "first" / "latest")
    opt.pop("dbnetpp_parameter_names@@")  # PaddleOCR without the overlay writes no name table
    paddle.save(params, str(ppocr / "latest.pdparams"))
    paddle.save(opt, str(ppocr / "latest.pdopt"))
    assert opt["LR_Scheduler"]["last_epoch"] == 8

    summary = run(tmp_path / "resumed", f"Global.checkpoints={ppocr / 'latest'}")
    assert summary["steps"] == 16 and summary["epochs"] == 4
    log = (tmp_path / "resumed" / "train.log").read_text(encoding="utf-8")
    assert "latest.states does not exist (PaddleOCR writes it for best_accuracy only): resuming at global step 8" in log
    assert "Not recoverable: the best evaluation so far" in log
    assert "global step 8, epoch 3 iteration 0" in log
    steps = [e["global_step"] for e in cli.events(tmp_path / "resumed" / "metrics.jsonl") if e["event"] == "train"]
    assert steps == list(range(9, 17))
    (pa, _), (pb, _) = _load(tmp_path / "straight" / "latest"), _load(tmp_path / "resumed" / "latest")
    for k in pa:
        np.testing.assert_array_equal(pa[k].numpy(), pb[k].numpy(), err_msg=k)
