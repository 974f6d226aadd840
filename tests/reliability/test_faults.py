"""Faults during training: kills at seeded random points (one process and a 2-process gloo job),
a dying rank, a full or read-only output disk, crashes while a checkpoint is replaced and corrupt
checkpoint files.  Deterministic mode (``Global.deterministic``) makes "resumed == uninterrupted"
an exact, bitwise comparison."""
from __future__ import annotations

import os
import pickle
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import load_checkpoint, save_checkpoint
from dbnetpp.config import load_config
from dbnetpp.errors import CheckpointError
from dbnetpp.modeling import build_model

SEED = 20241124  # picks the kill points; change it to explore others


def _wait_new_line(log_path, start_offset, needle, proc, timeout):
    """Wait until ``needle`` appears in ``log_path`` after byte ``start_offset``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists():
            with open(log_path, "rb") as f:
                f.seek(start_offset)
                if needle.encode() in f.read():
                    return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _kill_at(rel, cmd, out, step, delay, sig, console, timeout=180):
    """Run ``cmd``; once global step ``step`` is logged, wait ``delay`` s and send ``sig`` to the whole job.

    Returns the exit code.  SIGTERM goes to the top process only (the launcher forwards it, as
    ``kill PID`` does); SIGKILL to every process of the job (a node failure).
    """
    log = out / "train.log"
    offset = log.stat().st_size if log.exists() else 0
    job = rel.Background(cmd, console)
    try:
        seen = _wait_new_line(log, offset, f"global_step: {step},", job.proc, timeout)
        assert seen or job.proc.poll() is not None, job.output()[-3000:]
        time.sleep(delay)
        if sig == signal.SIGKILL:
            job.kill_tree(signal.SIGKILL)
        else:
            job.adopt(rel.descendants(job.pid))
            job.proc.send_signal(sig)
        rc = job.wait(timeout=120)
        assert job.wait_known_gone(30), "processes of the job outlived it"  # before the next run starts
        return rc
    finally:
        job.close()


def _resume_opts(out):
    latest = out / "latest"
    return [f"Global.checkpoints={latest}"] if (out / "latest.pdparams").exists() else []


def _kill_plan(rng, total_steps, steps_per_epoch, kinds):
    """Seeded, increasing kill points (each at least 2 steps after the previous one, so the resumed
    run reaches it); SIGKILL after the first save and never right at an epoch end (it must lose the
    steps done since the last save)."""
    plan, low = [], 2
    for i, sig in enumerate(kinds):
        high = total_steps - 2 - 2 * (len(kinds) - 1 - i)
        choices = [s for s in range(low, high + 1)
                   if sig != signal.SIGKILL or (s > steps_per_epoch and s % steps_per_epoch)]
        step = rng.choice(choices[: max(1, len(choices) // (len(kinds) - i))])
        plan.append((sig, step, round(rng.uniform(0.0, 0.15), 3)))
        low = step + 2
    return plan


# ---------------------------------------------------------------------------------------------
# one process
# ---------------------------------------------------------------------------------------------
SINGLE_EPOCHS, SINGLE_SPE = 3, 4  # 8 images, batch 2


@pytest.fixture(scope="module")
def single_process_runs(rel, clean_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("kill_single")
    common = ("Global.epoch_num=3", "Global.deterministic=true", "Global.eval_batch_step=[0,5]",
              "Global.save_epoch_step=1")
    ref = base / "ref"
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, ref, *common)), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    out = base / "cut"
    plan = _kill_plan(random.Random(SEED), SINGLE_EPOCHS * SINGLE_SPE, SINGLE_SPE, [signal.SIGKILL, signal.SIGTERM])
    after_kill = []
    for i, (sig, step, delay) in enumerate(plan):
        cmd = rel.train_cmd(rel.overrides(clean_data, out, *common, *_resume_opts(out)))
        rc = _kill_at(rel, cmd, out, step, delay, sig, base / f"console_{i}.txt")
        assert rc in (-signal.SIGKILL, 128 + signal.SIGTERM, 0), (rc, (base / f"console_{i}.txt").read_text()[-3000:])
        after_kill.append((sig, step, rc, rel.check_all_checkpoints(out)))
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, *common, *_resume_opts(out))), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return {"ref": ref, "out": out, "plan": plan, "after_kill": after_kill, "summary": rel.last_json(r.stdout)}


@pytest.mark.slow
def test_single_process_kill_and_resume_is_exact(rel, single_process_runs):
    runs = single_process_runs
    for sig, step, rc, checkpoints in runs["after_kill"]:
        if rc == 128 + signal.SIGTERM:  # graceful stop: 'latest' holds the step the signal interrupted
            assert checkpoints["latest"]["global_step"] >= step
    assert runs["summary"]["steps"] == SINGLE_EPOCHS * SINGLE_SPE
    rel.check_all_checkpoints(runs["out"])
    rel.assert_same_params(runs["ref"] / "latest", runs["out"] / "latest")
    ref_opt, opt = paddle.load(str(runs["ref"] / "latest.pdopt")), paddle.load(str(runs["out"] / "latest.pdopt"))
    assert ref_opt["LR_Scheduler"] == opt["LR_Scheduler"]


@pytest.mark.slow
def test_metrics_log_has_each_step_once_after_kill_and_resume(rel, single_process_runs):
    """The SIGKILL came after the first save, mid-epoch: the resumed run redoes some logged steps."""
    events = rel.events(single_process_runs["out"] / "metrics.jsonl")
    steps = [e["global_step"] for e in events if e["event"] == "train"]
    assert steps == list(range(1, SINGLE_EPOCHS * SINGLE_SPE + 1)), steps


# ---------------------------------------------------------------------------------------------
# two processes (paddle.distributed.launch, gloo)
# ---------------------------------------------------------------------------------------------
DIST_EPOCHS, DIST_SPE = 3, 4  # 8 images over 2 ranks, batch 1


@pytest.mark.slow
def test_two_process_kill_and_resume_is_exact(rel, clean_data, tmp_path):
    common = ("Global.epoch_num=3", "Global.deterministic=true", "Train.loader.batch_size_per_card=1",
              "Global.save_epoch_step=1")
    ref = tmp_path / "ref"
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, ref, *common), nproc=2, log_dir=tmp_path / "ref_logs"),
                timeout=300)
    assert r.returncode == 0, (tmp_path / "ref_logs" / "workerlog.0").read_text()[-3000:]

    out = tmp_path / "cut"
    plan = _kill_plan(random.Random(SEED + 1), DIST_EPOCHS * DIST_SPE, DIST_SPE, [signal.SIGTERM, signal.SIGKILL])
    for i, (sig, step, delay) in enumerate(plan):
        cmd = rel.train_cmd(rel.overrides(clean_data, out, *common, *_resume_opts(out)), nproc=2,
                            log_dir=tmp_path / f"logs_{i}")
        rc = _kill_at(rel, cmd, out, step, delay, sig, tmp_path / f"console_{i}.txt")
        assert rc != 0 or step >= DIST_EPOCHS * DIST_SPE - 1, (tmp_path / f"console_{i}.txt").read_text()[-3000:]
        checkpoints = rel.check_all_checkpoints(out)
        if sig == signal.SIGTERM and rc != 0:  # forwarded to the workers: 'latest' saved at the stop
            assert checkpoints["latest"]["global_step"] >= step
            assert "training stopped by SIGTERM" in (tmp_path / f"logs_{i}" / "workerlog.0").read_text()
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, *common, *_resume_opts(out)), nproc=2,
                              log_dir=tmp_path / "final_logs"), timeout=300)
    assert r.returncode == 0, (tmp_path / "final_logs" / "workerlog.0").read_text()[-3000:]
    rel.check_all_checkpoints(out)
    rel.assert_same_params(ref / "latest", out / "latest")


def _start_two_rank_job(rel, data, tmp_path):
    """A long 2-process CPU training job, once it is at global step 3: (job, {rank: pid})."""
    out = tmp_path / "out"
    cmd = rel.train_cmd(rel.overrides(data, out, "Global.epoch_num=200", "Train.loader.batch_size_per_card=1"),
                        nproc=2, log_dir=tmp_path / "logs")
    job = rel.Background(cmd, tmp_path / "console.txt")
    try:
        assert _wait_new_line(out / "train.log", 0, "global_step: 3,", job.proc, 180), job.output()[-3000:]
        ranks = rel.trainer_ranks(job.pid)
        job.adopt(ranks.values())
    except BaseException:
        job.close()
        raise
    return job, ranks


@pytest.mark.slow
def test_dead_rank_stops_the_whole_job(rel, clean_data, tmp_path):
    job, ranks = _start_two_rank_job(rel, clean_data, tmp_path)
    try:
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGKILL)
        start = time.monotonic()
        rc = job.wait(timeout=120)
        took = time.monotonic() - start
        assert rc != 0
        assert took < 120
        assert not rel.alive(ranks[0]), "rank 0 outlived the job"
    finally:
        job.close()


@pytest.mark.slow
def test_killed_launcher_leaves_no_trainer_behind(rel, clean_data, tmp_path):
    job, ranks = _start_two_rank_job(rel, clean_data, tmp_path)
    try:
        os.kill(job.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(rel.alive(p) for p in ranks.values()):
            time.sleep(0.2)
        assert not any(rel.alive(p) for p in ranks.values()), "trainers still running 10 s after the launcher died"
    finally:
        job.close()


# ---------------------------------------------------------------------------------------------
# disk
# ---------------------------------------------------------------------------------------------
def _mount_tmpfs(path, size, read_only=False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    return r.returncode == 0


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fsize_limit(limit_bytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


@pytest.mark.parametrize("how", ["tmpfs", "fsize"])
def test_full_disk_fails_clearly_and_keeps_last_checkpoint(rel, clean_data, tmp_path, how):
    """Epoch 1 saves; the save at the end of epoch 2 hits a full disk: a clear error, exit 1, and the
    epoch-1 ``latest`` still loads and resumes."""
    out = tmp_path / "out"
    common = ("Global.epoch_num=2", "Global.save_epoch_step=1")
    if how == "tmpfs":
        # room for config/logs + latest + iter_epoch_1 (2 x 1.9 MB), not for the next latest's temporary copy
        if not _mount_tmpfs(out, "5m"):
            pytest.skip("cannot mount a tmpfs here (needs root); the 'fsize' variant covers this")
        try:
            r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, *common)), timeout=300)
            message = "No space left on device"
            _check_full_disk_outcome(rel, r, out, message)
            for f in out.glob("iter_epoch_1.*"):
                f.unlink()  # the user frees space, then resumes
            r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, *common, f"Global.checkpoints={out / 'latest'}")),
                        timeout=300)
            assert r.returncode == 0, r.stderr[-3000:]
            assert rel.last_json(r.stdout)["steps"] == 8
        finally:
            _umount(out)
    else:
        r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.epoch_num=1", "Global.save_epoch_step=100")),
                    timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        # the resumed run may not write files over 1 MB (the .pdopt has 1.3 MB): EFBIG like a full quota
        cmd = rel.train_cmd(rel.overrides(clean_data, out, *common, f"Global.checkpoints={out / 'latest'}"))
        r = subprocess.run(cmd, cwd=str(rel.ROOT), env=rel.env(), capture_output=True, text=True, timeout=300,
                           preexec_fn=_fsize_limit(1 << 20))
        _check_full_disk_outcome(rel, r, out, "File too large")


def _check_full_disk_outcome(rel, r, out, message):
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert message in r.stderr and str(out / "latest") in r.stderr, r.stderr[-2000:]
    states = rel.check_all_checkpoints(out)
    assert states["latest"]["global_step"] == 4 and states["latest"]["epoch"] == 1
    assert not list(out.glob("*.tmp")), "temporary checkpoint files left behind"


def test_read_only_output_dir_fails_before_training(rel, clean_data, tmp_path):
    out = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(out, "1m", read_only=True):
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        out.mkdir()
        out.chmod(0o555)
    try:
        r = rel.run(rel.train_cmd(rel.overrides(clean_data, out / "run")), timeout=120)
    finally:
        if os.geteuid() == 0:
            _umount(out)
        else:
            out.chmod(0o755)
    assert r.returncode != 0
    assert str(out / "run") in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "global_step: 1," not in r.stdout


# ---------------------------------------------------------------------------------------------
# checkpoint files
# ---------------------------------------------------------------------------------------------
def _model_and_optimizer(rel, seed, steps=0):
    """The tiny model with an Adam optimizer (StepDecay schedule) after ``steps`` updates.

    ``steps=0`` is what a resume loads into (as the Trainer does: nothing trained yet)."""
    paddle.seed(seed)
    model = build_model(load_config(str(rel.CONFIG))["Architecture"])
    opt = paddle.optimizer.Adam(learning_rate=paddle.optimizer.lr.StepDecay(1e-3, step_size=1),
                                parameters=model.parameters())
    for _ in range(steps):
        model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
        opt.step()
        opt.clear_grad()
        opt._learning_rate.step()
    return model, opt


@pytest.fixture(scope="module")
def saved_checkpoint(rel, tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    model, opt = _model_and_optimizer(rel, 1, steps=1)
    save_checkpoint(str(base / "good"), model, opt, {"epoch": 1, "global_step": 1, "lr_last_epoch": 1})
    return base / "good"


CORRUPTIONS = {
    "truncated": lambda b, rng: b[: len(b) // 2],
    "zero_bytes": lambda b, rng: b"",
    "random_bytes": lambda b, rng: rng.bytes(len(b)),
    "header_damaged": lambda b, rng: rng.bytes(16) + b[16:],
}


@pytest.mark.parametrize("ext", [".pdparams", ".pdopt", ".states"])
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_checkpoint_is_detected(rel, saved_checkpoint, tmp_path, ext, kind):
    import shutil

    prefix = tmp_path / "ck"
    for e in (".pdparams", ".pdopt", ".states"):
        shutil.copy(f"{saved_checkpoint}{e}", f"{prefix}{e}")
    target = tmp_path / f"ck{ext}"
    target.write_bytes(CORRUPTIONS[kind](target.read_bytes(), np.random.default_rng(0)))
    model, opt = _model_and_optimizer(rel, 2)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(str(prefix), model, opt, log=lambda s: None)
    assert str(target) in str(exc.value)


def test_corrupt_latest_stops_a_resume_with_a_clear_error(rel, clean_data, tmp_path):
    out = tmp_path / "out"
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=2")), timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    pdopt = out / "latest.pdopt"
    pdopt.write_bytes(pdopt.read_bytes()[:1000])
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=4",
                                            f"Global.checkpoints={out / 'latest'}")), timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert str(pdopt) in r.stderr
    assert "global_step: 3," not in r.stdout


def test_overwritten_weights_are_detected(rel, saved_checkpoint, tmp_path):
    import shutil

    prefix = tmp_path / "ck"
    for e in (".pdparams", ".pdopt", ".states"):
        shutil.copy(f"{saved_checkpoint}{e}", f"{prefix}{e}")
    params = paddle.load(f"{prefix}.pdparams")
    name, tensor = max(params.items(), key=lambda kv: kv[1].size)
    raw = tensor.numpy().tobytes()
    blob = bytearray((tmp_path / "ck.pdparams").read_bytes())
    at = bytes(blob).find(raw[:4096])
    assert at > 0, "tensor bytes not found verbatim in the file"
    blob[at + 100: at + 116] = b"\x7f" * 16
    (tmp_path / "ck.pdparams").write_bytes(bytes(blob))
    model, opt = _model_and_optimizer(rel, 2)
    with pytest.raises(CheckpointError):
        load_checkpoint(str(prefix), model, opt, log=lambda s: None)


_CRASH_BETWEEN_RENAMES = r"""
import os, sys
import paddle
from dbnetpp.checkpoint import save_checkpoint
from dbnetpp.config import load_config
from dbnetpp.modeling import build_model

prefix = sys.argv[1]
paddle.seed(5)
model = build_model(load_config(sys.argv[2])["Architecture"])
opt = paddle.optimizer.Adam(learning_rate=paddle.optimizer.lr.StepDecay(1e-3, step_size=1),
                            parameters=model.parameters())
opt._learning_rate.step()
save_checkpoint(prefix, model, opt, {"epoch": 1, "global_step": 1, "lr_last_epoch": 1})
# the next save is interrupted (power loss) right after its first file was renamed into place
with paddle.no_grad():
    for p in model.parameters():
        p.set_value(p + 1.0)
for _ in range(3):
    opt._learning_rate.step()
real_replace = os.replace

def replace_then_crash(src, dst):
    real_replace(src, dst)
    os._exit(9)

os.replace = replace_then_crash
save_checkpoint(prefix, model, opt, {"epoch": 2, "global_step": 4, "lr_last_epoch": 4})
"""


def test_crash_while_replacing_latest_leaves_a_consistent_checkpoint(rel, tmp_path):
    prefix = tmp_path / "latest"
    r = subprocess.run([sys.executable, "-c", _CRASH_BETWEEN_RENAMES, str(prefix), str(rel.CONFIG)],
                       cwd=str(rel.ROOT), env=rel.env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr[-3000:]
    model, opt = _model_and_optimizer(rel, 6)
    try:
        states = load_checkpoint(str(prefix), model, opt, log=lambda s: None)
    except CheckpointError:
        return  # refusing the mixed checkpoint is fine
    with open(f"{prefix}.states", "rb") as f:
        saved_step = pickle.load(f)["global_step"]
    assert states["global_step"] == saved_step
    # weights of the second save (+1.0) must come with that save's counters (global step 4)
    paddle.seed(5)
    first = build_model(load_config(str(rel.CONFIG))["Architecture"]).state_dict()
    name = next(k for k in first if k.endswith("weight"))
    from_second_save = not np.allclose(model.state_dict()[name].numpy(), first[name].numpy())
    assert (states["global_step"] == 4) == from_second_save, (states["global_step"], from_second_save)
