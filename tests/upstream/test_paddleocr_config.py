"""``ppocr_patches.config.paddleocr_config``: our recipe as PaddleOCR release/2.5 reads it (no checkout needed),
and ``benchmarks/finetune.py --engine paddleocr`` end to end (needs one)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dbnetpp.config import load_config
from dbnetpp.global_schema import GLOBAL_KEYS, OWN_GLOBAL_KEYS
from ppocr_patches.config import UnsupportedUpstream, paddleocr_config, write_paddleocr_config
from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]
FT = str(ROOT / "configs/det/cpu/ft_mv3_db++_icdar15.yml")


def test_own_keys_are_dropped_and_the_rest_is_unchanged(tmp_path):
    cfg = load_config(FT, ["Architecture.Neck.use_asf=False", "Global.max_steps=7", "Global.overwrite=true"])
    out = paddleocr_config(cfg)
    assert not set(out["Global"]) & OWN_GLOBAL_KEYS
    assert {"reference_cards", "eval_at_end", "max_steps", "overwrite"} <= set(cfg["Global"])
    assert "asf_gate_norm" not in out["Architecture"]["Neck"] and out["Architecture"]["Neck"]["use_asf"] is False
    for key, value in cfg["Global"].items():
        if key not in OWN_GLOBAL_KEYS:
            assert out["Global"][key] == value, key
    for section in ("Loss", "Optimizer", "PostProcess", "Metric", "Train", "Eval"):
        assert out[section] == cfg[section], section
    assert "__file__" not in out and cfg["Global"]["max_steps"] == 7  # the input is not changed
    # written as YAML, it is still a valid config here (PaddleOCR's keys are all ours too)
    path = write_paddleocr_config(cfg, str(tmp_path / "up.yml"))
    again = load_config(path)
    assert yaml.safe_load(Path(path).read_text(encoding="utf-8"))["Global"] == out["Global"]
    assert again["Architecture"] == out["Architecture"]
    assert OWN_GLOBAL_KEYS < set(GLOBAL_KEYS) and "seed" not in OWN_GLOBAL_KEYS


def test_settings_upstream_would_train_differently_are_refused():
    """DBNet++ with our ASF gate options would silently become PaddleOCR's plain ASF block there."""
    with pytest.raises(UnsupportedUpstream, match=r"Architecture\.Neck\.asf_gate_norm=True: PaddleOCR's ASF"):
        paddleocr_config(load_config(FT))
    with pytest.raises(UnsupportedUpstream, match=r"asf_gate_init='zeros'"):
        paddleocr_config(load_config(FT, ["Architecture.Neck.asf_gate_norm=False",
                                          "Architecture.Neck.asf_gate_init=zeros"]))
    plain = paddleocr_config(load_config(FT, ["Architecture.Neck.asf_gate_norm=False"]))
    assert plain["Architecture"]["Neck"] == {"name": "DBFPN", "out_channels": 96, "use_asf": True}


@pytest.mark.slow
def test_finetune_benchmark_with_paddleocr_engine(route, synth_data, tmp_path):
    """PaddleOCR's loop trains (2 processes, no in-training evaluation: gloo would time out), saves a
    checkpoint at each evaluation step of the recipe, and tools/eval.py scores them afterwards."""
    opts = ["Architecture.Neck.use_asf=False", "Global.epoch_num=2", "Global.eval_batch_step=[0,1]",
            "Global.pretrained_model=", "Train.loader.num_workers=0", "Eval.loader.num_workers=0",
            "Train.loader.batch_size_per_card=4", "Train.dataset.transforms.3.EastRandomCropData.size=[128,128]",
            "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[256,256]"]
    # the training images stand in for the validation split; the test images are scored once at the end
    for split, label in (("Train", synth_data["train"]), ("Eval", synth_data["train"])):
        opts += [f"{split}.dataset.data_dir={synth_data['root']}", f"{split}.dataset.label_file_list=[{label}]"]
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "benchmarks/finetune.py", "-c", FT, "--engine", "paddleocr",
                           "--procs", "2", "--minutes", "5", "--work", str(work), "--test", str(synth_data["test"]),
                           "-o", *opts],
                          cwd=ROOT, env=route.env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = last_line_json(proc.stdout)
    assert res["engine"] == "paddleocr" and res["steps"] == 2 and res["train_samples_per_s"] > 0
    # 4 images, the total batch of 4 split over 2 ranks: one step per epoch; evaluations after steps 1 and 2 (the end)
    assert [(c["step"], c["source"]) for c in res["curve"]] == [(1, "tools/eval.py on iter_epoch_1"),
                                                                 (2, "tools/eval.py on latest")]
    assert all(0 <= c["hmean"] <= 1 for c in res["curve"])
    # the test set scored once, on the checkpoint of the best validation evaluation
    chosen = max(res["curve"], key=lambda c: (c["hmean"], c["step"]))  # a tie: the later
    assert res["test"]["step"] == chosen["step"] and res["test"]["checkpoint"] == str(
        work / chosen["source"].split(" on ")[1])
    assert res["test_labels"] == str(synth_data["test"]) and res["hmean"] == res["test"]["hmean"]
    up = yaml.safe_load((work / "paddleocr_config.yml").read_text(encoding="utf-8"))
    assert up["Global"]["eval_batch_step"] == [3, 1] and up["Global"]["save_epoch_step"] == 1
    assert not set(up["Global"]) & OWN_GLOBAL_KEYS
    log = (work / "train.log").read_text(encoding="utf-8")
    assert "ppocr INFO: epoch: [2/2], global_step: 2" in log and "cur metric" not in log
