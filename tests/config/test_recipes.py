"""The recipes under configs/: every YAML validates and builds, the published recipes carry
PaddleOCR's settings, and every config trains one iteration on a tiny synthetic dataset."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from dbnetpp.config import load_config
from dbnetpp.modeling import build_model

from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yml"))
MAIN = ("configs/det/det_mv3_db.yml", "configs/det/det_mv3_db++_icdar15.yml", "configs/det/det_r50_vd_db++_icdar15.yml")

# Trainable parameter counts of PaddleOCR's own models for these architectures (upstream
# PaddleOCR reference build: mv3 DB 1,844,136; mv3 DB++ 1,991,922; the ASF block adds 147,786).
PARAMS = {"configs/det/det_mv3_db.yml": 1_844_136, "configs/det/det_mv3_db++_icdar15.yml": 1_991_922,
          "configs/det/det_r50_vd_db++_icdar15.yml": 25_428_962 + 147_786}


def _transform(cfg, split, name):
    for item in cfg[split]["dataset"]["transforms"]:
        if name in item:
            return item[name] or {}
    raise KeyError(name)


def _transform_names(cfg, split):
    return [next(iter(item)) for item in cfg[split]["dataset"]["transforms"]]


def test_configs_found():
    assert set(MAIN) <= set(CONFIGS)
    assert {"configs/det/cpu/demo_mv3_db.yml", "configs/det/cpu/det_mv3_db++_tiny.yml",
            "configs/det/cpu/det_mv3_db_tiny.yml"} <= set(CONFIGS)


@pytest.mark.parametrize("path", CONFIGS)
def test_validates_and_builds(path):
    cfg = load_config(str(ROOT / path))
    model = build_model(cfg["Architecture"])
    n = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    if path in PARAMS:
        assert n == PARAMS[path]
    model.eval()
    with paddle.no_grad():
        out = model(paddle.zeros([1, 3, 64, 96]))["maps"]
    assert out.shape == [1, 1, 64, 96]


@pytest.mark.smoke
def test_mv3_db_is_paddleocrs_recipe():
    cfg = load_config(str(ROOT / MAIN[0]))
    g, arch = cfg["Global"], cfg["Architecture"]
    assert (g["epoch_num"], g["eval_batch_step"]) == (1200, [0, 2000])
    assert g["pretrained_model"] == "./pretrain_models/MobileNetV3_large_x0_5_pretrained"
    assert arch["Backbone"] == {"name": "MobileNetV3", "scale": 0.5, "model_name": "large", "disable_se": False}
    assert arch["Neck"] == {"name": "DBFPN", "out_channels": 256} and arch["Head"] == {"name": "DBHead", "k": 50}
    assert cfg["Loss"]["main_loss_type"] == "DiceLoss"
    opt = cfg["Optimizer"]
    assert opt["name"] == "Adam" and opt["lr"] == {"learning_rate": 0.001}  # no name: constant
    assert cfg["Train"]["loader"]["batch_size_per_card"] == 16
    assert _transform_names(cfg, "Train") == ["DecodeImage", "DetLabelEncode", "IaaAugment", "EastRandomCropData",
                                              "MakeBorderMap", "MakeShrinkMap", "NormalizeImage", "ToCHWImage",
                                              "KeepKeys"]
    assert _transform(cfg, "Train", "EastRandomCropData") == {"size": [640, 640], "max_tries": 50, "keep_ratio": True}
    assert _transform(cfg, "Eval", "DetResizeForTest") == {"image_shape": [736, 1280]}
    assert _transform(cfg, "Train", "NormalizeImage")["std"] == [0.229, 0.224, 0.225]
    pp = cfg["PostProcess"]
    assert (pp["thresh"], pp["box_thresh"], pp["unclip_ratio"]) == (0.3, 0.6, 1.5)
    for split, label in (("Train", "train_icdar2015_label.txt"), ("Eval", "test_icdar2015_label.txt")):
        ds = cfg[split]["dataset"]
        assert ds["data_dir"].rstrip("/") == "./train_data/icdar2015/text_localization"
        assert ds["label_file_list"] == [f"./train_data/icdar2015/text_localization/{label}"]


def test_mv3_dbpp_differs_only_by_asf():
    a = load_config(str(ROOT / MAIN[0]))
    b = load_config(str(ROOT / MAIN[1]))
    assert b["Architecture"]["Neck"] == {"name": "DBFPN", "out_channels": 256, "use_asf": True}
    for cfg in (a, b):
        cfg.pop("__file__")
        cfg["Architecture"]["Neck"].pop("use_asf", None)
        for key in ("save_model_dir", "save_res_path"):
            cfg["Global"].pop(key)
    assert a == b


def test_r50_dbpp_follows_paddleocrs_dbpp_schedule():
    cfg = load_config(str(ROOT / MAIN[2]))
    g, arch = cfg["Global"], cfg["Architecture"]
    assert g["epoch_num"] == 1000 and g["pretrained_model"] == "./pretrain_models/ResNet50_vd_ssld_pretrained"
    assert arch["algorithm"] == "DB++"
    assert arch["Backbone"] == {"name": "ResNet_vd", "layers": 50}
    assert arch["Neck"] == {"name": "DBFPN", "out_channels": 256, "use_asf": True}
    assert cfg["Loss"]["main_loss_type"] == "BCELoss"
    opt = cfg["Optimizer"]
    assert (opt["name"], opt["momentum"], opt["weight_decay"]) == ("Momentum", 0.9, 0.0001)
    assert opt["lr"] == {"name": "DecayLearningRate", "learning_rate": 0.007, "epochs": 1000, "factor": 0.9,
                         "end_lr": 0}
    assert cfg["Train"]["loader"]["batch_size_per_card"] == 4
    names = _transform_names(cfg, "Train")
    assert names.index("MakeShrinkMap") < names.index("MakeBorderMap")
    assert _transform(cfg, "Train", "EastRandomCropData")["max_tries"] == 10
    mean = [0.48109378172549, 0.45752457890196, 0.40787054090196]
    for split in ("Train", "Eval"):
        norm = _transform(cfg, split, "NormalizeImage")
        assert norm["mean"] == mean and norm["std"] == [1.0, 1.0, 1.0]
    assert _transform(cfg, "Eval", "DetResizeForTest") == {"image_shape": [1152, 2048]}


# ---------------------------------------------------------------------------- one training iteration
@pytest.mark.parametrize("path", CONFIGS)
def test_trains_one_iteration(path, tiny_data, tiny_overrides, tmp_path):
    """Through scripts/train.sh (CPU, one process): one step on 128 px images, then the final evaluation."""
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "scripts/train.sh", path, "cpu", "--cpu-procs", "1", "-o",
                           *tiny_overrides(path, tiny_data, out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = last_line_json(proc.stdout)
    assert summary["steps"] == 1 and summary["hmean"] is not None
    assert (out / "latest.pdparams").is_file()
