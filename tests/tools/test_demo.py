"""tools/demo.py: the CPU demo scripts/train.sh runs (generate + prepare synthetic data, train, evaluate)."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from testutil import load_module

ROOT = Path(__file__).resolve().parents[2]
DEMO = "configs/det/cpu/demo_mv3_db.yml"
NO_DEMO_DATASET = "configs/det/cpu/det_mv3_db_tiny.yml"  # states no Global.demo_dataset


@pytest.fixture(scope="module")
def tool():
    return load_module("demo_tool", ROOT / "tools" / "demo.py", fresh=True)


def run(tool, capsys, *args):
    """The CLI in-process, for runs that start no step: (exit code, stdout, stderr)."""
    code = tool.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _train(config, *opts):
    return ["--", sys.executable, "tools/train.py", "-c", config, "-o", *opts]


def test_dry_run_prints_the_four_commands(tool, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    out_dir, data = tmp_path / "out", tmp_path / "data"
    opts = ["Global.use_gpu=False", f"Global.save_model_dir={out_dir}"]
    code, out, err = run(tool, capsys, "-c", DEMO, "--train", 8, "--data-root", data, "--dry-run", "-o", *opts,
                         *_train(DEMO, *opts))
    assert code == 0, err
    assert out.count("DEMO on SYNTHETIC data") == 1  # the banner; the closing one follows the scores
    cmds = out.split("demo.py: dry run; would run:\n")[1].splitlines()
    assert len(cmds) == 4, out
    gen, prep, train, evaluate = (shlex.split(c) for c in cmds)
    # --train 8 wins over Global.demo_dataset (train 192 test 24 size 256), the rest comes from it
    assert gen == [sys.executable, "tools/make_synth_dataset.py", "--dst", f"{data}/raw", "--train", "8", "--test",
                   "24", "--size", "256", "--seed", "0", "--force"]
    assert prep == [sys.executable, "tools/prepare_icdar2015.py", "--src", f"{data}/raw", "--dst",
                    f"{data}/text_localization", "--force", "--no-progress"]
    # the data is not where the config reads it: both steps are pointed at it
    prepared = data / "text_localization"
    data_opts = [f"Train.dataset.data_dir={prepared}/",
                 f"Train.dataset.label_file_list=[{prepared}/train_icdar2015_label.txt]",
                 f"Eval.dataset.data_dir={prepared}/",
                 f"Eval.dataset.label_file_list=[{prepared}/test_icdar2015_label.txt]"]
    assert train == _train(DEMO, *opts)[1:] + ["-o", *data_opts]
    assert evaluate == [sys.executable, "tools/eval.py", "-c", DEMO, "--vis-dir", f"{out_dir}/pictures", "--vis", "4",
                        "-o", *opts, *data_opts, f"Global.checkpoints={out_dir}/latest"]
    assert not data.exists() and not out_dir.exists()  # a dry run writes nothing
    # the default data root is where the demo config reads: the training command runs as given
    code, out, err = run(tool, capsys, "-c", DEMO, "--dry-run", "-o", *opts, *_train(DEMO, *opts))
    assert code == 0, err
    train = out.split("would run:\n")[1].splitlines()[2]
    assert train.endswith(f"-c {DEMO} -o {' '.join(opts)}") and "Train.dataset" not in out
    assert "--dst ./train_data/synth_demo/raw --train 192 --test 24 --size 256" in out


def test_dataset_size_needs_flags_or_the_config_key(tool, capsys, tmp_path):
    """No built-in dataset size: without Global.demo_dataset every one of --train/--test/--size is needed."""
    cfg = str(ROOT / NO_DEMO_DATASET)
    args = ["--data-root", tmp_path / "data", "--dry-run", "-o", f"Global.save_model_dir={tmp_path / 'out'}"]
    code, out, err = run(tool, capsys, "-c", cfg, *args, *_train(cfg))
    assert code == 2 and "DEMO" not in out
    assert f"demo.py: error: {cfg} has no Global.demo_dataset and --train, --test, --size were not given" in err
    assert "demo_dataset: {train: N, test: M, size: S}" in err and "--train N --test M --size S" in err
    code, out, err = run(tool, capsys, "-c", cfg, "--train", 4, "--size", 64, *args, *_train(cfg))
    assert code == 2 and "--test was not given" in err
    code, out, err = run(tool, capsys, "-c", cfg, "--train", 4, "--test", 2, "--size", 64, *args, *_train(cfg))
    assert code == 0, err
    assert "--train 4 --test 2 --size 64" in out and "Train.dataset.data_dir=" in out
    # ... or Global.demo_dataset given with -o
    code, out, err = run(tool, capsys, "-c", cfg, *args, "Global.demo_dataset={train: 3, test: 1, size: 96}",
                         *_train(cfg))
    assert code == 0 and "--train 3 --test 1 --size 96" in out, err


@pytest.mark.parametrize("args, message", [
    (["--train", "0"], "argument --train: expected a positive integer, got '0'"),
    (["--size", "big"], "argument --size: expected a positive integer, got 'big'"),
    (["-o", "Global.demo_dataset={train: 1, test: 1}"], "Global.demo_dataset"),
    (["-o", "Global.epoch_num=0"], "Global.epoch_num"),
    (["--no-command"], "unrecognized arguments: --no-command"),
])
def test_bad_input_is_a_clear_error(tool, capsys, tmp_path, args, message):
    cfg = str(ROOT / DEMO)
    try:
        code = tool.main(["-c", cfg, "--dry-run", "--data-root", str(tmp_path), *args, *_train(cfg)])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_missing_command_and_earlier_run_are_refused(tool, capsys, tmp_path):
    cfg = str(ROOT / DEMO)
    with pytest.raises(SystemExit) as exc:
        tool.main(["-c", cfg, "--dry-run"])
    assert exc.value.code == 2 and "give the training command after '--'" in capsys.readouterr().err
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "latest.pdparams").write_bytes(b"")
    code, out, err = run(tool, capsys, "-c", cfg, "--data-root", tmp_path / "data", "-o",
                         f"Global.save_model_dir={out_dir}", *_train(cfg))
    assert code == 2 and "holds the checkpoints of an earlier run" in err and "Global.overwrite=true" in err
    assert not (tmp_path / "data").exists()  # refused before the data is generated


def _demo(*args, timeout=300):
    return subprocess.run([sys.executable, "tools/demo.py", *map(str, args)], cwd=str(ROOT), capture_output=True,
                          text=True, timeout=timeout)


def _tiny_opts(out_dir):
    """One epoch of 2 steps at 64x64 (4 training images, batch 2), no loader workers."""
    return [f"Global.save_model_dir={out_dir}", "Global.use_gpu=False", "Global.epoch_num=1",
            "Global.print_batch_step=1", "Train.loader.batch_size_per_card=2", "Train.loader.num_workers=0",
            "Eval.loader.num_workers=0", "Train.dataset.transforms.3.EastRandomCropData.size=[64,64]",
            "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[64,64]"]


def test_a_failing_step_stops_the_demo(tmp_path):
    data = tmp_path / "data"
    p = _demo("-c", DEMO, "--train", 2, "--test", 1, "--size", 64, "--data-root", data,
              "-o", *_tiny_opts(tmp_path / "out"), "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert p.returncode == 2
    assert "demo.py: error: training failed (exit code 3" in p.stderr
    assert "[3/4] training" in p.stdout and "[4/4]" not in p.stdout and "synthetic demo" not in p.stdout
    assert (data / "text_localization" / "train_icdar2015_label.txt").is_file()
    p = _demo("-c", DEMO, "--train", 2, "--test", 1, "--size", 64, "--data-root", data,
              "-o", *_tiny_opts(tmp_path / "out"), "--", str(tmp_path / "no-such-program"))
    assert p.returncode == 2 and "demo.py: error: training failed: cannot run " in p.stderr, p.stderr


def test_end_to_end_on_a_tiny_dataset(tmp_path):
    data, out_dir = tmp_path / "data", tmp_path / "out"
    opts = _tiny_opts(out_dir)
    p = _demo("-c", DEMO, "--train", 4, "--test", 2, "--size", 64, "--data-root", data, "-o", *opts,
              *_train(DEMO, *opts))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    steps = [line for line in p.stdout.splitlines() if line.startswith("demo.py: [")]
    assert [s[:14] for s in steps] == ["demo.py: [1/4]", "demo.py: [2/4]", "demo.py: [3/4]", "demo.py: [4/4]"]
    assert f"generating 4 + 2 synthetic 64px images in {data}/raw" in steps[0]
    assert steps[3].endswith(f"evaluating the saved model {out_dir}/latest with tools/eval.py")
    lines = p.stdout.strip().splitlines()
    assert lines[-2].startswith("demo.py: demo (synthetic data) precision ")
    final = json.loads(lines[-1])
    assert set(final) == {"precision", "recall", "hmean", "data", "seconds", "pictures"}
    assert final["data"] == "synthetic demo" and final["pictures"] == f"{out_dir}/pictures"
    # the pictures of the (two) test images, named in the output
    assert sorted(f.name for f in (out_dir / "pictures").iterdir()) == ["000_img_1.png", "001_img_2.png"]
    assert f"pictures of the first 2 test images (GT green, detections red) in {out_dir}/pictures/" in p.stdout
    assert all(0.0 <= final[k] <= 1.0 for k in ("precision", "recall", "hmean"))
    for sub in ("raw/ch4_training_images", "raw/ch4_test_images", "text_localization/icdar_c4_train_imgs",
                "text_localization/ch4_test_images"):
        assert (data / sub).is_dir(), sub
    assert len(list((data / "raw" / "ch4_training_images").glob("*.jpg"))) == 4
    assert (out_dir / "latest.pdparams").is_file()
