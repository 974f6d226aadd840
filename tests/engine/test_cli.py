"""``tools/train.py`` command line: validation before anything starts, exit codes, max_steps, AMP on CPU,
``tools/plot_log.py``."""
import subprocess
import sys

import cv2
import pytest

from dbnetpp.config import load_config
from dbnetpp.engine.trainer import Trainer

from testutil import load_module


def _tool(cli, name):
    return load_module(f"engine_test_{name}", cli.config.parents[3] / "tools" / f"{name}.py", fresh=True)


@pytest.mark.smoke
@pytest.mark.parametrize("override, needle", [
    ("Global.epoch_nm=3", "Did you mean 'epoch_num'"),
    ("Optimizer.momentum=0.9", "'Optimizer.momentum'"),
    ("Optimizer.lr.name=Cosinus", "Did you mean 'Cosine'"),
    ("Train.loader.batch_size_per_card=0", "'Train.loader.batch_size_per_card'"),
    ("Global.pretrained_model=/nonexistent/weights", "'Global.pretrained_model'"),
    ("Optimizer.beta1=1.5", "'Optimizer.beta1'"),
    ("Optimizer.lr.warmup_epoch=-1", "'warmup_epoch' must be a number >= 0"),
    ("Global.seed=-1", "'Global.seed'"),
    ("Architecture.Neck.out_channels=-5", "'Architecture.Neck"),  # found while building: file still named
])
def test_invalid_config_fails_before_anything_starts(cli, engine_data, tmp_path, capsys, override, needle):
    out = tmp_path / "out"
    rc = _tool(cli, "train").main(["-c", str(cli.config), "-o", *cli.overrides(engine_data, out), "-o", override])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and str(cli.config) in err
    assert not out.exists()  # nothing was created


def test_max_steps_json_summary_and_plot_tool(cli, engine_data, tmp_path, capsys):
    out = tmp_path / "out"
    r = cli.run(cli.overrides(engine_data, out, "Global.max_steps=3", "Global.print_batch_step=2"))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = cli.last_json(r.stdout)  # the very last stdout line
    assert summary["steps"] == 3 and summary["epochs"] == 0
    assert summary["best_step"] == 3 and summary["last"]["hmean"] == summary["hmean"]  # evaluated at the end
    events = cli.events(out / "metrics.jsonl")
    # logged every 2 steps and at the step that ended the run
    assert [e["global_step"] for e in events if e["event"] == "train"] == [2, 3]
    assert [e["global_step"] for e in events if e["event"] == "eval"] == [3]
    states = out / "latest.states"
    assert states.is_file()

    (out / "training_curves.png").unlink()
    p = subprocess.run([sys.executable, str(cli.config.parents[3] / "tools" / "plot_log.py"), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("training_curves.png")
    img = cv2.imread(str(out / "training_curves.png"))
    assert img is not None and img.shape == (720, 960, 3)
    assert _tool(cli, "plot_log").main([str(tmp_path / "no")]) == 2
    assert "not found" in capsys.readouterr().err


def test_amp_is_ignored_loudly_on_cpu(cli, engine_data, tmp_path):
    out = tmp_path / "out"
    cfg = load_config(str(cli.config), cli.overrides(engine_data, out, "Global.use_amp=true", "Global.max_steps=1",
                                                     "Global.eval_at_end=false", "Global.scale_loss=1024.0"))
    trainer = Trainer(cfg)
    assert trainer.amp.enabled is False and trainer.amp.scaler is None
    assert trainer.train()["steps"] == 1
    log = (out / "train.log").read_text()
    assert log.count("mixed precision is IGNORED") == 1 and "AMP off" in log


def test_unwritable_output_folder_is_a_config_error(cli, engine_data, tmp_path, capsys):
    rc = _tool(cli, "train").main(["-c", str(cli.config), "-o",
                                   *cli.overrides(engine_data, engine_data / "train.txt")])  # a file, not a folder
    err = capsys.readouterr().err
    assert rc == 2 and "'Global.save_model_dir'" in err and f"{engine_data / 'train.txt'} is a file" in err


def test_nothing_loadable_under_skip_policy_is_a_data_error(cli, engine_data, tmp_path, capsys):
    out = tmp_path / "out"
    overrides = cli.overrides(engine_data, out, "Global.bad_sample_policy=skip", "Global.max_steps=3")
    overrides[0] = f"Train.dataset.data_dir={tmp_path / 'wrong_dir'}"
    rc = _tool(cli, "train").main(["-c", str(cli.config), "-o", *overrides])
    err = capsys.readouterr().err
    assert rc == 1 and "wrong_dir" in err and "no training sample of epoch 1 could be loaded" in err
