"""RRC submission zips: clockwise integer quads, res_img_N.txt names, re-scored identically by the
official-protocol evaluator of files."""
import zipfile

import numpy as np
import pytest

from dbnetpp.errors import DataError
from dbnetpp.evaluation import ImageRecord, sum_record_counts, write_submission
from dbnetpp.evaluation.submission import box_line, submission_entries
from dbnetpp.metrics import Sample, evaluate_paths, evaluate_samples, metrics_from_counts
from dbnetpp.metrics.rrc_io import clockwise_error

CW = np.array([[10, 10], [50, 10], [50, 30], [10, 30]])


def _records(images):
    """images: list of (name, gt [(quad, text)], det [quad]) -> records scored with the official protocol."""
    samples = [Sample(gt=[np.asarray(q, np.float64) for q, _ in gt], gt_dont_care=[t == "###" for _, t in gt],
                      det=[np.asarray(d) for d in det]) for _, gt, det in images]
    out = []
    for i, ((name, gt, det), res) in enumerate(zip(images, evaluate_samples(samples, "official"))):
        out.append(ImageRecord(index=i, image=f"/data/{name}", label=f"label.txt:{i + 1}",
                               gt=[np.asarray(q, np.float64) for q, _ in gt], gt_dont_care=[t == "###" for _, t in gt],
                               det=[np.asarray(d) for d in det], scores=[0.9] * len(det), result=res))
    return out


def test_box_line_is_clockwise_and_reverses_counter_clockwise_boxes():
    assert box_line(CW) == "10,10,50,10,50,30,10,30"
    ccw = CW[::-1]
    assert clockwise_error(ccw)
    line = box_line(ccw)
    assert not clockwise_error(np.array(line.split(","), int).reshape(4, 2))
    assert sorted(map(tuple, np.array(line.split(","), int).reshape(4, 2))) == sorted(map(tuple, CW))
    with pytest.raises(ValueError, match="4-point"):
        box_line(np.zeros((5, 2), int))
    with pytest.raises(ValueError, match="integers"):
        box_line(CW + 0.5)


@pytest.mark.smoke
def test_submission_rescores_identically(tmp_path):
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    images = [
        ("img_1.jpg", [(CW, "hello"), (CW + 100, "###")], [CW + [1, 0], (CW + 100)[::-1], CW + 300]),
        ("img_2.jpg", [(CW + 40, "x"), (CW + 200, "y")], [(CW + 41)[::-1]]),
        ("img_3.jpg", [(CW, "z")], []),
        ("img_10.png", [], [CW]),
    ]
    for name, gt, _ in images:
        key = name.split("_")[1].split(".")[0]
        text = "".join(",".join(map(str, np.asarray(q).reshape(-1))) + f",{t}\r\n" for q, t in gt)
        (gt_dir / f"gt_img_{key}.txt").write_text(text, encoding="utf-8")
    records = _records(images)
    zip_path = tmp_path / "out" / "submit.zip"
    assert write_submission(records, str(zip_path)) == 4
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == ["res_img_1.txt", "res_img_2.txt", "res_img_3.txt", "res_img_10.txt"]
        assert zf.read("res_img_3.txt") == b""
        assert zf.read("res_img_1.txt").decode().splitlines()[0] == "11,10,51,10,51,30,11,30"
    scored = evaluate_paths(str(gt_dir), str(zip_path), "official")
    counts = sum_record_counts(records)
    assert {k: scored["method"][k] for k in counts} == counts
    assert counts["matched"] == 2 and counts["det_care"] == 4  # the don't-care detection is not counted
    for key, name in (("1", "img_1"), ("2", "img_2"), ("3", "img_3"), ("10", "img_10")):
        rec = next(r for r in records if f"/{name}." in r.image)
        assert {k: scored["per_sample"][key][k] for k in ("precision", "recall", "hmean")} == rec.metrics()
    assert scored["method"]["hmean"] == metrics_from_counts(counts)["hmean"]
    # same detections -> same bytes
    again = tmp_path / "again.zip"
    write_submission(records, str(again))
    assert again.read_bytes() == zip_path.read_bytes()


def test_entries_need_img_n_names_and_quads():
    (rec,) = _records([("photo.jpg", [], [CW])])
    with pytest.raises(DataError, match="img_N"):
        submission_entries([rec])
    a, b = _records([("img_4.jpg", [], []), ("img_4.png", [], [])])
    with pytest.raises(DataError, match="both map to res_img_4.txt"):
        submission_entries([a, b])
    (poly,) = _records([("img_5.jpg", [], [np.array([[0, 0], [9, 0], [9, 9], [5, 12], [0, 9]])])])
    with pytest.raises(DataError, match="box_type: quad"):
        submission_entries([poly])
