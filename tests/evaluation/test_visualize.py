"""Pictures: GT green over detections red, don't-care grey, header band, unreadable images, worst-first order;
records survive the JSON round trip the ranks use."""
import json

import cv2
import numpy as np
import pytest

from dbnetpp.evaluation import ImageRecord, render, select, sum_record_counts, write_visualisations
from dbnetpp.evaluation.visualize import DET_COLOR, DONT_CARE_COLOR, GT_COLOR, HEADER_HEIGHT
from dbnetpp.metrics import Sample, evaluate_samples

GT = np.array([[10, 12], [60, 12], [60, 40], [10, 40]], np.float64)
DONT_CARE = np.array([[70, 60], [110, 60], [110, 80], [70, 80]], np.float64)


def _record(index, image, gt, dont_care, det):
    (res,) = evaluate_samples([Sample(gt=gt, gt_dont_care=dont_care, det=det)], "official")
    return ImageRecord(index=index, image=str(image), label=f"l.txt:{index + 1}", gt=list(gt),
                       gt_dont_care=list(dont_care), det=list(det), scores=[0.8] * len(det), result=res)


@pytest.mark.smoke
def test_colours_at_corners_and_header(tmp_path):
    image = np.full((100, 128, 3), 200, np.uint8)
    path = tmp_path / "img_1.png"
    cv2.imwrite(str(path), image)
    det = np.array([[10, 12], [60, 12], [60, 41], [10, 41]])  # shares GT corners: GT is drawn on top
    far = np.array([[80, 5], [120, 5], [120, 20], [80, 20]])
    rec = _record(0, path, [GT, DONT_CARE], [False, True], [det, far])
    out = write_visualisations([rec], str(tmp_path / "vis"), 5, "first")
    assert [p.rsplit("/", 1)[-1] for p in out] == ["000_img_1.png"]
    pic = cv2.imread(out[0])
    assert pic.shape[0] == 100 + HEADER_HEIGHT and pic.shape[1] >= 128
    for x, y in GT.astype(int):
        assert tuple(pic[y + HEADER_HEIGHT, x]) == GT_COLOR
    for x, y in DONT_CARE.astype(int):
        assert tuple(pic[y + HEADER_HEIGHT, x]) == DONT_CARE_COLOR
    assert tuple(pic[5 + HEADER_HEIGHT, 100]) == DET_COLOR  # top edge of the unmatched detection
    assert tuple(pic[HEADER_HEIGHT + 70, 20]) == (200, 200, 200)  # untouched image pixel
    header = pic[:HEADER_HEIGHT]
    assert (header.max(axis=2) > 200).sum() > 50  # white header text
    assert rec.metrics() == {"precision": 0.5, "recall": 1.0, "hmean": pytest.approx(2 / 3)}


def test_unreadable_image_gets_a_canvas_with_its_boxes(tmp_path):
    rec = _record(0, tmp_path / "missing.jpg", [GT], [False], [])
    rec.skipped = "cannot decode image"
    pic = render(rec, None)
    assert pic.shape[0] >= HEADER_HEIGHT + 48 and pic.shape[1] >= 68
    assert tuple(pic[12 + HEADER_HEIGHT, 10]) == GT_COLOR


def test_worst_selection_orders_by_hmean_then_errors():
    perfect = _record(0, "a.jpg", [GT], [False], [GT.astype(int)])
    one_miss = _record(1, "b.jpg", [GT], [False], [])
    two_miss = _record(2, "c.jpg", [GT, GT + 50], [False, False], [])
    half = _record(3, "d.jpg", [GT, GT + 50], [False, False], [GT.astype(int)])
    records = [perfect, one_miss, two_miss, half]
    assert [r.index for r in select(records, 3, "worst")] == [2, 1, 3]
    assert [r.index for r in select(records, 2, "first")] == [0, 1]
    with pytest.raises(ValueError):
        select(records, 2, "best")


def test_record_json_round_trip():
    rec = _record(4, "/d/img_5.jpg", [GT, DONT_CARE], [False, True], [GT.astype(int) + 1])
    rec.skipped = None
    data = json.loads(json.dumps(rec.to_json()))
    back = ImageRecord.from_json(data)
    assert back.to_json() == rec.to_json()
    assert data["matched"] == 1 and data["gt_dont_care"] == [1] and data["gt_is_dont_care"] == [False, True]
    assert data["detections"] == [(GT.astype(int) + 1).tolist()] and data["hmean"] == 1.0
    assert sum_record_counts([rec, back]) == {"gt_care": 2, "det_care": 2, "matched": 2, "images": 2}
