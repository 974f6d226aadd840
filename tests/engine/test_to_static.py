"""``Global.to_static``: training through a static graph of the model gives the eager model's losses (to float
rounding), trains on 2 gloo processes with sharded evaluation, and writes checkpoints the eager model loads."""
import math
import subprocess
import sys

ROOT_EVAL = "tools/eval.py"


def _train_losses(cli, data, out, *extra, nproc=1, logs=None):
    r = cli.run(cli.overrides(data, out, "Global.epoch_num=1", "Global.max_steps=3", "Global.eval_batch_step=[0,3]",
                              "Global.eval_at_end=false", *extra), nproc=nproc, log_dir=logs, timeout=300)
    text = r.stdout + r.stderr
    if logs is not None and (logs / "workerlog.0").is_file():
        text += (logs / "workerlog.0").read_text(errors="replace") + (logs / "workerlog.1").read_text(errors="replace")
    assert r.returncode == 0, text[-3000:]
    events = cli.events(out / "metrics.jsonl")
    return [e["loss"] for e in events if e["event"] == "train"], [e for e in events if e["event"] == "eval"], text


def test_to_static_matches_eager_losses_and_its_checkpoint_loads_eagerly(cli, engine_data, tmp_path):
    eager, eager_evals, _ = _train_losses(cli, engine_data, tmp_path / "eager")
    static, static_evals, text = _train_losses(cli, engine_data, tmp_path / "static", "Global.to_static=true")
    assert "Global.to_static: the model runs as a static graph" in text
    assert len(static) == len(eager) == 3 and all(math.isfinite(v) for v in static)
    # the same computation: the first loss (same start, same batch) agrees to float rounding, later ones closely
    assert math.isclose(static[0], eager[0], rel_tol=1e-5), (static, eager)
    assert all(math.isclose(s, e, rel_tol=1e-3) for s, e in zip(static, eager)), (static, eager)
    assert len(static_evals) == 1
    # the checkpoint is an ordinary one: tools/eval.py (eager) scores it as the trainer's evaluation did
    r = subprocess.run([sys.executable, ROOT_EVAL, "-c", str(cli.config), "-o",
                        *cli.overrides(engine_data, tmp_path / "eval_out"),
                        f"Global.checkpoints={tmp_path / 'static' / 'latest'}"],
                       cwd=str(cli.config.parents[3]), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    res = cli.last_json(r.stdout)
    assert abs(res["hmean"] - static_evals[0]["hmean"]) < 1e-9


def test_to_static_on_two_gloo_processes(cli, engine_data, tmp_path):
    losses, evals, text = _train_losses(cli, engine_data, tmp_path / "out", "Global.to_static=true",
                                        "Global.epoch_num=2", nproc=2,
                                        logs=tmp_path / "logs")  # 2 steps per epoch on 2 ranks
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert len(evals) == 1 and 0 <= evals[0]["hmean"] <= 1
    assert (tmp_path / "out" / "latest.pdparams").is_file()
