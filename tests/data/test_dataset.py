"""SimpleDataSet: PaddleOCR ratio sampling, stable indices, bad samples named by file:line, seeded samples."""
import importlib.util
import json
import logging
import random
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from dbnetpp.data.dataset import FailedSample, SimpleDataSet
from dbnetpp.data.transforms.decode_image import DecodeImage
from dbnetpp.data.transforms.det_label_encode import DetLabelEncode
from dbnetpp.errors import ConfigError, DataError
from dbnetpp.ppocr_wheel import ReferenceMissing, wheel_dir
from dbnetpp.registry import DATASETS

BOX = {"transcription": "a,b", "points": [[1, 1], [9, 1], [9, 6], [1, 6]]}
DONT_CARE = {"transcription": "###", "points": [[2, 2], [5, 2], [5, 5], [2, 5]]}


def write_set(root: Path, n: int, name: str = "label.txt", folder: str = "imgs") -> Path:
    """``n`` small PNGs and a label file; image i has i % 3 boxes (+ a ### box when i % 4 == 0)."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rel = f"{folder}/img_{i}.png"
        cv2.imwrite(str(root / rel), np.full((12 + i % 3, 16, 3), i, np.uint8))
        boxes = [BOX] * (i % 3) + ([DONT_CARE] if i % 4 == 0 else [])
        lines.append(f"{rel}\t{json.dumps(boxes)}")
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


class Chain:
    def __init__(self, *fns):
        self.fns = fns

    def __call__(self, data):
        for fn in self.fns:
            data = fn(data)
        return data


def keep_fixed(data):
    """Fixed-size image plus the eval keys and one draw of NumPy's global RNG."""
    return {"image": cv2.resize(data["image"], (16, 16)).astype(np.float32), "polys": data["polys"],
            "ignore_tags": data["ignore_tags"], "img_path": data["img_path"], "rand": np.float32(np.random.rand())}


def det_transforms():
    return Chain(DecodeImage(img_mode="BGR"), DetLabelEncode(), keep_fixed)


def test_sample_is_decoded_and_labelled(tmp_path):
    label = write_set(tmp_path, 5)
    ds = SimpleDataSet(str(tmp_path), [str(label)], transforms=det_transforms(), mode="Eval")
    assert len(ds) == 5 and ds.num_samples == 5
    s = ds[4]
    assert s["img_path"] == str(tmp_path / "imgs" / "img_4.png")
    assert s["image"].shape == (16, 16, 3) and s["image"][0, 0, 0] == 4
    assert s["polys"].shape == (2, 4, 2) and s["ignore_tags"].tolist() == [False, True]
    assert ds.location(4) == (str(label), 5)
    raw = SimpleDataSet(str(tmp_path), str(label))[0]  # no transforms: the loaded record itself
    assert isinstance(raw["image"], bytes) and raw["label"] == json.dumps([DONT_CARE])


def _load_paddleocr_simple_dataset(monkeypatch):
    """PaddleOCR 2.5's SimpleDataSet from the installed wheel, with its transform package stubbed out."""
    try:
        src = wheel_dir() / "ppocr" / "data" / "simple_dataset.py"
    except ReferenceMissing as exc:
        pytest.skip(str(exc))
    package, imaug = types.ModuleType("ppocr.data"), types.ModuleType("ppocr.data.imaug")
    package.__path__ = [str(src.parent)]
    imaug.transform = lambda data, ops=None: data
    imaug.create_operators = lambda op_param_list, global_config=None: []
    monkeypatch.setitem(sys.modules, "ppocr.data", package)
    monkeypatch.setitem(sys.modules, "ppocr.data.imaug", imaug)
    module_spec = importlib.util.spec_from_file_location("ppocr.data.simple_dataset", src)
    module = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "ppocr.data.simple_dataset", module)
    module_spec.loader.exec_module(module)
    return module.SimpleDataSet


@pytest.mark.smoke
@pytest.mark.parametrize("mode, shuffle", [("Train", True), ("Train", False), ("Eval", False)])
def test_ratio_sampling_draws_the_same_lines_as_paddleocr(tmp_path, monkeypatch, mode, shuffle):
    files = []
    for name, n in (("a.txt", 10), ("b.txt", 23)):
        (tmp_path / name).write_text("".join(f"{name[0]}{i}.jpg\t[]\n" for i in range(n)))
        files.append(str(tmp_path / name))
    ratios = [0.5, 0.7]
    reference = _load_paddleocr_simple_dataset(monkeypatch)
    ours = SimpleDataSet(str(tmp_path), files, ratios, shuffle=shuffle, mode=mode, seed=0)
    assert ours.num_samples == 5 + 16
    for epoch in (1, 2, 7):  # PaddleOCR rebuilds its dataset with seed=epoch each epoch
        cfg = {"Global": {}, mode: {"dataset": {"data_dir": str(tmp_path), "label_file_list": list(files),
                                                "ratio_list": ratios, "transforms": []},
                                    "loader": {"shuffle": shuffle}}}
        ref = reference(cfg, mode, logging.getLogger("ppocr-reference"), seed=epoch)
        expected = [line.decode().split("\t")[0] for line in ref.data_lines]
        got = [ds_line.split("\t")[0] for ds_line in
               (ours._records[i].raw.decode() for i in ours.epoch_indices(epoch))]
        assert got == expected


def test_epoch_plan_counts_seeds_and_eval_order(tmp_path):
    a = write_set(tmp_path, 10, "a.txt", "a")
    b = write_set(tmp_path, 6, "b.txt", "b")
    train = SimpleDataSet(str(tmp_path), [str(a), str(b)], [0.3, 1.0], shuffle=True, mode="Train", seed=5)
    e1, e1_again, e2 = train.epoch_indices(1), train.epoch_indices(1), train.epoch_indices(2)
    assert len(e1) == train.num_samples == 3 + 6
    assert e1 == e1_again and e1 != e2
    assert sum(i < 10 for i in e1) == 3 and sorted(i for i in e1 if i >= 10) == list(range(10, 16))
    assert len(set(e1)) == len(e1)
    other_seed = SimpleDataSet(str(tmp_path), [str(a), str(b)], [0.3, 1.0], shuffle=True, mode="Train", seed=6)
    assert other_seed.epoch_indices(1) != e1
    evaluation = SimpleDataSet(str(tmp_path), [str(a), str(b)], 1.0, mode="Eval")
    assert evaluation.epoch_indices(3) == list(range(16))


@pytest.mark.parametrize("case, reason", [
    ("missing", "image not found: "),
    ("empty", "image file is empty (0 bytes)"),
    ("truncated", "cannot decode image"),
    ("not_image", "cannot decode image"),
    ("bad_json", "label is not valid JSON"),
    ("escape", "points outside data_dir"),
    ("not_utf8", "not valid UTF-8"),
])
def test_bad_sample_is_named_by_label_file_and_line(tmp_path, case, reason):
    label = write_set(tmp_path, 3)
    lines = label.read_bytes().splitlines()
    img = tmp_path / "imgs" / "bad.jpg"
    ok, jpg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    bad_line = b"imgs/bad.jpg\t[]"
    if case == "empty":
        img.write_bytes(b"")
    elif case == "truncated":
        img.write_bytes(jpg.tobytes()[: len(jpg) // 2])
    elif case == "not_image":
        img.write_text("this is not an image\n")
    elif case == "bad_json":
        img.write_bytes(jpg.tobytes())
        bad_line = b"imgs/bad.jpg\t[{\"points\": "
    elif case == "escape":
        bad_line = b"../bad.jpg\t[]"
    elif case == "not_utf8":
        img.write_bytes(jpg.tobytes())
        bad_line = b"imgs/bad.jpg\t[{\"transcription\": \"\xe9\", \"points\": [[0,0],[1,0],[1,1]]}]"
    label.write_bytes(b"\n".join(lines[:2] + [bad_line] + lines[2:]) + b"\n")
    ds = SimpleDataSet(str(tmp_path), [str(label)], transforms=det_transforms())
    with pytest.raises(DataError) as info:
        ds[2]
    assert str(info.value).startswith(f"{label}:3: ") and reason in str(info.value)
    assert (info.value.file, info.value.line) == (str(label), 3)
    ds.capture_errors = True
    failed = ds[(4, 2)]
    assert isinstance(failed, FailedSample) and (failed.file, failed.line) == (str(label), 3)
    assert reason in failed.message
    assert ds[3]["img_path"].endswith("img_2.png")  # neighbours are unaffected, nothing is substituted


def test_check_finds_bad_lines_and_missing_images_without_decoding(tmp_path):
    label = write_set(tmp_path, 4)
    (tmp_path / "imgs" / "img_1.png").unlink()
    with open(label, "ab") as f:
        f.write(b"no-delimiter-here\n")
    ds = SimpleDataSet(str(tmp_path), [str(label)])
    problems = ds.check()
    assert [p.line for p in problems] == [2, 5]
    assert problems[0].raw_message.startswith("image not found: ") and problems[0].file == str(label)
    assert problems[1].raw_message.startswith("no delimiter")
    assert len(ds.check(max_errors=1)) == 1


def test_augmentation_randomness_is_seeded_per_sample_and_epoch(tmp_path):
    label = write_set(tmp_path, 3)
    ds = SimpleDataSet(str(tmp_path), [str(label)], transforms=det_transforms(), seed=11)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    first = ds[(1, 2)]["rand"]
    assert ds[(1, 2)]["rand"] == first
    assert ds[(2, 2)]["rand"] != first and ds[(1, 1)]["rand"] != first
    other = SimpleDataSet(str(tmp_path), [str(label)], transforms=det_transforms(), seed=12)
    assert other[(1, 2)]["rand"] != first
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]


def test_invalid_arguments_are_config_errors(tmp_path):
    label = write_set(tmp_path, 2)
    with pytest.raises(ConfigError, match="ratio_list.*1 file"):
        SimpleDataSet(str(tmp_path), [str(label)], [0.5, 0.5])
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
            SimpleDataSet(str(tmp_path), [str(label)], bad)
    with pytest.raises(ConfigError, match="label_file_list"):
        SimpleDataSet(str(tmp_path), [])
    with pytest.raises(ConfigError, match="unknown key 'ratio' .*Did you mean 'ratio_list'"):
        DATASETS.build({"name": "SimpleDataSet", "data_dir": str(tmp_path), "label_file_list": [str(label)],
                        "ratio": 0.5}, where="Train.dataset", mode="Train", seed=0, transforms=None)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match=r"empty\.txt: label file has no samples"):
        SimpleDataSet(str(tmp_path), [str(tmp_path / "empty.txt")])
    with pytest.raises(DataError, match=r"nope\.txt: label file not found"):
        SimpleDataSet(str(tmp_path), [str(tmp_path / "nope.txt")])
