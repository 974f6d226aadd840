"""Lossless batch compaction between loader workers and the main process: the batches the
trainer sees are bit-, dtype- and shape-identical with and without ``compact_batches``."""
import json
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from dbnetpp.config import LOADER_KEYS
from dbnetpp.data.compact import (BINARY, NORMALIZE, DeferredImage, _gather_normalize, binary_as_uint8,
                                  compact_key, defer_normalisation, normalize_tensor)
from dbnetpp.data.loader import SKIPPED_KEY, build_dataloader, collate_samples, num_samples
from dbnetpp.data.transforms import NormalizeImage, create_transforms
from dbnetpp.errors import ConfigError

NORM = {"scale": "1./255.", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": "hwc"}
TRAIN_TRANSFORMS = [
    {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
    {"DetLabelEncode": None},
    {"IaaAugment": {"augmenter_args": [{"type": "Fliplr", "args": {"p": 0.5}},
                                       {"type": "Affine", "args": {"rotate": [-10, 10]}},
                                       {"type": "Resize", "args": {"size": [0.5, 3]}}]}},
    {"EastRandomCropData": {"size": [96, 96], "max_tries": 50, "keep_ratio": True}},
    {"MakeBorderMap": {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7}},
    {"MakeShrinkMap": {"shrink_ratio": 0.4, "min_text_size": 8}},
    {"NormalizeImage": NORM},
    {"ToCHWImage": None},
    {"KeepKeys": {"keep_keys": ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]}},
]
EVAL_TRANSFORMS = [
    {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
    {"DetLabelEncode": None},
    {"DetResizeForTest": {"image_shape": [64, 96]}},
    {"NormalizeImage": NORM},
    {"ToCHWImage": None},
    {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
]


def write_scenes(root: Path, n: int, bad: int = -1) -> Path:
    """``n`` noisy JPEG scenes with 1-3 drawn words each (image ``bad`` is an empty file)."""
    rng = np.random.RandomState(0)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        h, w = 90 + 10 * (i % 3), 120
        img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
        boxes = []
        for k in range(1 + i % 3):
            x, y = 8 + 35 * k, 15 + 25 * k
            cv2.putText(img, "ab", (x, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            boxes.append({"transcription": "ab" if k else "###",
                          "points": [[x, y], [x + 28, y], [x + 28, y + 16], [x, y + 16]]})
        path = root / "imgs" / f"img_{i}.jpg"
        if i == bad:
            path.write_bytes(b"")
        else:
            cv2.imwrite(str(path), img)
        lines.append(f"imgs/img_{i}.jpg\t{json.dumps(boxes)}")
    (root / "label.txt").write_text("\n".join(lines) + "\n")
    return root / "label.txt"


def config(root: Path, label: Path, mode: str, transforms, batch_size: int, **loader):
    return {mode: {"dataset": {"name": "SimpleDataSet", "data_dir": str(root), "label_file_list": [str(label)],
                               "transforms": transforms},
                   "loader": {"batch_size_per_card": batch_size, "num_workers": 2, "shuffle": mode == "Train",
                              "drop_last": False, **loader}}}


def assert_batches_identical(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert list(a.keys()) == list(b.keys())
        for key in a:
            x, y = a[key], b[key]
            if isinstance(y, paddle.Tensor):
                assert isinstance(x, paddle.Tensor), key
                assert x.dtype == y.dtype and x.shape == y.shape and x.stop_gradient == y.stop_gradient, key
                xa, ya = x.numpy(), y.numpy()
                assert np.array_equal(xa.view(np.uint8), ya.view(np.uint8)), f"{key} differs bitwise"
            elif isinstance(y, list) and y and isinstance(y[0], np.ndarray):
                assert all(p.dtype == q.dtype and np.array_equal(p, q) for p, q in zip(x, y)), key
            else:
                assert x == y, key


@pytest.mark.smoke
def test_binary_maps_are_packed_only_when_exactly_zero_or_one():
    maps = [np.array([[0, 1], [1, 0]], np.float32), np.zeros((2, 2), np.float32)]
    packed = binary_as_uint8(maps)
    assert packed.dtype == np.uint8 and packed.shape == (2, 2, 2)
    np.testing.assert_array_equal(packed.astype(np.float32), np.stack(maps))
    for odd in (-0.0, 0.5, 2.0, np.nan, 1.0 + 2 ** -23):
        assert binary_as_uint8([maps[0], np.array([[0, 1], [odd, 0]], np.float32)]) is None, odd
    assert binary_as_uint8([np.zeros(3, np.float64)]) is None  # only float32 keys are packed
    assert compact_key([np.float32(1.0), np.float32(0.0)]) == (None, [1.0, 0.0])  # scalars stay


@pytest.mark.smoke
def test_deferred_normalisation_is_bit_identical_on_cpu_and_device_paths():
    norm = NormalizeImage(**NORM)
    images = np.random.RandomState(1).randint(0, 256, (3, 7, 5, 3)).astype(np.uint8)
    images[0, 0, :, :] = np.arange(5)[:, None] * 60  # include 0 and 240
    images[1, 0, 0] = 255
    want = np.stack([norm.to_chw({"image": img})["image"] for img in images])
    for fn in (normalize_tensor, _gather_normalize):
        got = fn(paddle.to_tensor(images), norm)
        assert got.dtype == paddle.float32 and got.shape == [3, 3, 7, 5]
        assert np.array_equal(got.numpy().view(np.uint32), want.view(np.uint32)), fn.__name__


def test_only_a_final_normalize_to_chw_step_is_deferred():
    deferred, norm = defer_normalisation(create_transforms(TRAIN_TRANSFORMS))
    assert deferred.steps[-2][0].endswith("(deferred)") and isinstance(norm, NormalizeImage)
    assert defer_normalisation(create_transforms(TRAIN_TRANSFORMS, fuse=False)) is None
    assert defer_normalisation(create_transforms(TRAIN_TRANSFORMS[:-1])) is not None
    no_image = TRAIN_TRANSFORMS[:-1] + [{"KeepKeys": {"keep_keys": ["shrink_map"]}}]
    assert defer_normalisation(create_transforms(no_image)) is None
    assert defer_normalisation(lambda data: data) is None
    step = deferred.steps[-2][1]
    img = np.full((4, 6, 3), 7, np.uint8)
    assert isinstance(step({"image": img})["image"], DeferredImage)
    as_float = step({"image": img.astype(np.float32)})["image"]  # not uint8: the real step runs
    assert as_float.dtype == np.float32 and as_float.shape == (3, 4, 6)
    # a batch mixing shapes (or kinds) is materialised in the worker: same values as without deferral
    mixed = [DeferredImage(img, norm), DeferredImage(img[:3], norm)]
    enc, values = compact_key(mixed)
    assert enc is None and [v.shape for v in values] == [(3, 4, 6), (3, 3, 6)]
    np.testing.assert_array_equal(values[0], norm.to_chw({"image": img})["image"])


def test_train_batches_identical_with_and_without_compaction(tmp_path):
    label = write_scenes(tmp_path, 10)
    batches = {}
    for compact in (True, False):
        loader = build_dataloader(config(tmp_path, label, "Train", TRAIN_TRANSFORMS, 4, compact_batches=compact,
                                         use_shared_memory=False), "Train", seed=5)
        assert loader.compact_batches is compact and (loader._normalize is not None) is compact
        loader.batch_sampler.set_epoch(2)
        batches[compact] = list(loader)
    assert [num_samples(b) for b in batches[True]] == [4, 4, 2]
    first = batches[True][0]
    assert first["image"].shape == [4, 3, 96, 96] and first["image"].dtype == paddle.float32
    assert float(first["shrink_map"].sum()) > 0  # the maps hold text, not just zeros
    assert_batches_identical(batches[True], batches[False])

    # what actually travels: uint8 HWC images and uint8 masks, float32 threshold maps
    loader = build_dataloader(config(tmp_path, label, "Train", TRAIN_TRANSFORMS, 4), "Train", seed=5)
    raw = collate_samples([loader.dataset[(2, i)] for i in range(4)], compact=True)
    assert raw["_compact"].value == {"image": NORMALIZE, "threshold_mask": BINARY, "shrink_map": BINARY,
                                     "shrink_mask": BINARY}
    assert raw["image"].dtype == np.uint8 and raw["image"].shape == (4, 96, 96, 3)
    assert raw["threshold_map"].dtype == np.float32
    assert build_dataloader(config(tmp_path, label, "Train", TRAIN_TRANSFORMS, 4, num_workers=0),
                            "Train").compact_batches is False  # nothing to move without workers


def test_eval_and_skip_batches_identical_with_and_without_compaction(tmp_path):
    label = write_scenes(tmp_path, 5, bad=3)
    for mode, transforms, batch_size in (("Eval", EVAL_TRANSFORMS, 1), ("Train", TRAIN_TRANSFORMS, 2)):
        runs = []
        for compact in (True, False):
            loader = build_dataloader(config(tmp_path, label, mode, transforms, batch_size,
                                             compact_batches=compact), mode, seed=1, policy="skip")
            runs.append(list(loader))
        assert_batches_identical(*runs)
        skipped = [s for b in runs[0] for s in b[SKIPPED_KEY]]
        assert len(skipped) == 1 and "label.txt:4" in skipped[0]
        assert sum(num_samples(b) for b in runs[0]) == 4


def test_compact_batches_key_is_validated(tmp_path):
    assert "compact_batches" in LOADER_KEYS
    label = write_scenes(tmp_path, 2)
    with pytest.raises(ConfigError, match="Train.loader.compact_batches"):
        build_dataloader(config(tmp_path, label, "Train", TRAIN_TRANSFORMS, 2, compact_batches="yes"), "Train")
