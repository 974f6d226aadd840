"""The shipped configs' Train/Eval transform lists end to end on real ICDAR2015 samples."""
from __future__ import annotations

import numpy as np
import pytest

from dbnetpp.config import load_yaml
from dbnetpp.data.transforms import create_transforms

CONFIGS = ["det_mv3_db.yml", "det_mv3_db++_icdar15.yml", "det_r50_vd_db++_icdar15.yml"]


@pytest.mark.shared
@pytest.mark.parametrize("config", CONFIGS)
def test_train_and_eval_pipelines(root_dir, icdar_samples, config):
    cfg = load_yaml(str(root_dir / "configs" / "det" / config))
    train = create_transforms(cfg["Train"]["dataset"]["transforms"])
    evaluate = create_transforms(cfg["Eval"]["dataset"]["transforms"], where="Eval.dataset.transforms")
    np.random.seed(0)
    n_text = 0
    for name, raw, label in icdar_samples[:12]:
        out = train({"image": raw, "label": label})
        assert list(out) == ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"], name
        assert out["image"].shape == (3, 640, 640) and out["image"].dtype == np.float32
        assert out["image"].flags.c_contiguous
        for key in ("threshold_map", "threshold_mask", "shrink_map", "shrink_mask"):
            assert out[key].shape == (640, 640) and out[key].dtype == np.float32, (name, key)
        assert 0.3 - 1e-6 <= out["threshold_map"].min() and out["threshold_map"].max() <= 0.7 + 1e-6
        n_text += int(out["shrink_map"].sum() > 0)
        ev = evaluate({"image": raw, "label": label})
        assert list(ev) == ["image", "shape", "polys", "ignore_tags"]
        assert ev["image"].shape[0] == 3 and ev["image"].shape[1] % 32 == 0 and ev["image"].shape[2] % 32 == 0
        assert ev["shape"].dtype == np.float32 and ev["shape"][:2].tolist() == [720, 1280]
        assert ev["polys"].dtype == np.float32 and ev["polys"].shape[1:] == (4, 2)
    assert n_text >= 8


@pytest.mark.shared
def test_labels_follow_the_image(icdar_samples):
    """After the fused augment+crop, shrink-map text sits on image content (not on black fill)."""
    train = create_transforms([
        {"DecodeImage": {"img_mode": "BGR"}}, {"DetLabelEncode": None},
        {"IaaAugment": None}, {"EastRandomCropData": {"size": [640, 640], "max_tries": 50, "keep_ratio": True}},
        {"MakeShrinkMap": None},
    ])
    np.random.seed(1)
    on_content = []
    for _, raw, label in icdar_samples:
        d = train({"image": raw, "label": label})
        text = d["shrink_map"] > 0
        if text.sum() > 50:
            on_content.append((d["image"][text].max(axis=1) > 0).mean())
    assert len(on_content) > 15 and np.mean(on_content) > 0.97
