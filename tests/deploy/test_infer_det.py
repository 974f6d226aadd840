"""tools/infer_det.py as a user runs it: folder of images, batches, results.json, PNGs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dbnetpp.deploy import Detector


def test_infer_det_folder_batched(tiny_export, helpers, tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    sizes = {"a.jpg": (200, 300), "b.png": (120, 90), "c.jpg": (200, 300)}
    for i, (name, (h, w)) in enumerate(sizes.items()):
        assert cv2.imwrite(str(src / name), helpers.synthetic_image(h, w, seed=i))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    proc = helpers.run_tool("infer_det.py", "--model_dir", str(tiny_export), "--image", str(src), "--batch", "2",
                            "--out", str(out), "--thresh", "0.47", "--box_thresh", "0.47", "--mkldnn", "off")
    assert proc.returncode == 0, proc.stderr
    summary = helpers.last_json(proc.stdout)
    assert summary["images"] == 3
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["engine"] == {"backend": "paddle", "device": "cpu", "threads": 2, "mkldnn": False}
    assert res["settings"]["PostProcess"]["thresh"] == 0.47
    assert [r["image"].split("/")[-1] for r in res["images"]] == ["a.jpg", "b.png", "c.jpg"]
    assert sum(len(r["boxes"]) for r in res["images"]) == summary["boxes"] > 0
    # the 3rd image ran alone (batch 2): its boxes equal the API's single-image result
    det = Detector(str(tiny_export), mkldnn=False, postprocess={"thresh": 0.47, "box_thresh": 0.47})
    boxes, scores = det.detect(cv2.imread(str(src / "c.jpg")))
    assert res["images"][2]["boxes"] == boxes.tolist()
    np.testing.assert_allclose(res["images"][2]["scores"], scores, atol=1e-6)
    for r in res["images"]:
        assert (r["height"], r["width"]) == sizes[r["image"].split("/")[-1]]
        assert len(r["boxes"]) == len(r["scores"])
        pts = np.array(r["boxes"]).reshape(-1, 2)
        if len(pts):
            assert pts[:, 0].max() < r["width"] and pts[:, 1].max() < r["height"] and pts.min() >= 0
    # PaddleOCR's predicts file: the same boxes and scores, readable by the ICDAR2015 scorer's reader
    from dbnetpp.metrics.rrc_io import read_detections

    lines = (out / "predicts_db.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [r["image"] for r in res["images"]]
    for line, r in zip(lines, res["images"]):
        boxes = json.loads(line.split("\t", 1)[1])
        assert [b["points"] for b in boxes] == r["boxes"] and [b["score"] for b in boxes] == r["scores"]
    dets = read_detections(str(out / "predicts_db.txt"), {"a", "b", "c"}, protocol="paddleocr")
    assert sum(len(d.polys) for d in dets.values()) == summary["boxes"]
    for stem in ("a", "b", "c"):
        png = cv2.imread(str(out / f"{stem}.png"))
        assert png is not None and png.shape[:2] == sizes[[n for n in sizes if n.startswith(stem)][0]]


def test_infer_det_errors(tiny_export, helpers, tmp_path, capsys):
    infer = helpers.load_tool("infer_det.py").main
    assert infer(["--model_dir", str(tiny_export), "--image", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.jpg: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert infer(["--model_dir", str(tiny_export), "--image", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "cannot decode" in capsys.readouterr().err  # an unreadable input: exit 1 (dbnetpp/errors.py)
    assert infer(["--model_dir", str(tmp_path), "--image", str(bad)]) == 2
    assert "inference.yml not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer(["--model_dir", str(tiny_export), "--image", str(bad), "--mkldnn", "maybe"])


def test_infer_det_folder_with_unreadable_and_other_entries(tiny_export, helpers, tmp_path):
    """Images are processed, the rest is counted and named: a truncated image is skipped with its reason,
    other files, sub-folders and broken links are listed, and a.jpg / a.png keep separate pictures."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i, name in enumerate(("a.jpg", "a.png", "b.jpg")):
        assert cv2.imwrite(str(src / name), helpers.synthetic_image(96, 128, seed=i))
    whole = (src / "b.jpg").read_bytes()
    (src / "b.jpg").write_bytes(whole[: len(whole) // 2])  # truncated
    (src / "notes.txt").write_text("not an image")
    (src / "sub").mkdir()
    (src / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    out = tmp_path / "out"
    proc = helpers.run_tool("infer_det.py", "--model_dir", str(tiny_export), "--image", str(src), "--batch", "2",
                            "--out", str(out), "--mkldnn", "off")
    assert proc.returncode == 0, proc.stderr
    summary = helpers.last_json(proc.stdout)
    assert (summary["images"], summary["skipped"], summary["ignored"]) == (2, 1, 3), summary
    res = json.loads((out / "results.json").read_text())
    assert [r["image"].split("/")[-1] for r in res["images"]] == ["a.jpg", "a.png"]
    assert [s["image"].split("/")[-1] for s in res["skipped"]] == ["b.jpg"]
    assert "cannot decode" in res["skipped"][0]["reason"]
    reasons = {i["image"].split("/")[-1]: i["reason"] for i in res["ignored"]}
    assert set(reasons) == {"gone.jpg", "notes.txt", "sub"}
    assert reasons["gone.jpg"].startswith("broken symbolic link")
    assert f"skipped {src / 'b.jpg'}: cannot decode" in proc.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["a_jpg.png", "a_png.png"]
    assert len((out / "predicts_db.txt").read_text().splitlines()) == 2
