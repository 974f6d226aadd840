"""Fixtures for transform tests: the PaddleOCR 2.5 reference ops and real ICDAR2015 samples.

The reference is the ``ppocr/data/imaug`` folder of the PyPI ``paddleocr==2.5.0.3`` wheel
(installed with --no-deps).  Its modules are loaded one by one from their files (the package's
``__init__`` pulls in lmdb, imgaug, ...); the wheel folder is put on ``sys.path`` only while
loading (``label_ops`` imports ``ppocr.utils.logging``).  NumPy aliases removed in 1.24
(``np.bool``, ...) are restored by the ``ref`` fixture for the duration of a test only; a
stand-in ``six`` (``operators`` reads ``six.PY2``) is used when six is not installed.
imgaug (``iaa_augment``) is optional: ``ref.iaa`` is ``None`` when it is not installed.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from dbnetpp.ppocr_wheel import NP_ALIASES, ReferenceMissing, wheel_dir

def _wheel_dir() -> Path:
    try:
        return wheel_dir()
    except ReferenceMissing as exc:
        pytest.skip(str(exc))


def _set_aliases(setter) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, value in NP_ALIASES.items():
            setter(np, name, value)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def _ref_modules():
    wheel = _wheel_dir()
    imaug = wheel / "ppocr" / "data" / "imaug"
    ns = types.SimpleNamespace()
    saved = {n: np.__dict__.get(n) for n in NP_ALIASES}
    _set_aliases(setattr)
    sys.path.insert(0, str(wheel))
    try:
        import six  # noqa: F401
        six_stub = False
    except ImportError:  # operators.py only reads six.PY2
        six_stub, sys.modules["six"] = True, types.SimpleNamespace(PY2=False, PY3=True)
    try:
        for mod in ("operators", "label_ops", "random_crop_data", "make_border_map", "make_shrink_map"):
            setattr(ns, mod, _load(imaug / f"{mod}.py", f"_ppocr25_ref_{mod}"))
        try:
            import imgaug  # noqa: F401
        except ImportError:
            ns.iaa = None
        else:
            ns.iaa = _load(imaug / "iaa_augment.py", "_ppocr25_ref_iaa_augment")
    finally:
        sys.path.remove(str(wheel))
        if six_stub:
            sys.modules.pop("six", None)
        for n, v in saved.items():
            if v is None:
                np.__dict__.pop(n, None)
            else:
                setattr(np, n, v)
    return ns


@pytest.fixture
def ref(_ref_modules, monkeypatch):
    """Reference modules, with NumPy's removed aliases restored for this test only."""
    _set_aliases(lambda mod, name, value: monkeypatch.setattr(mod, name, value, raising=False))
    return _ref_modules


@pytest.fixture(scope="session")
def icdar_samples(icdar_dir):
    """The first 30 ICDAR2015 training images: list of (name, jpeg bytes, PaddleOCR label JSON)."""
    from dbnetpp.data.icdar_gt import read_gt_file

    out = []
    for i in range(1, 31):
        img = icdar_dir / "ch4_training_images" / f"img_{i}.jpg"
        gt = icdar_dir / "ch4_training_localization_transcription_gt" / f"gt_img_{i}.txt"
        boxes = read_gt_file(str(gt))
        label = json.dumps([{"transcription": b.transcription, "points": b.points} for b in boxes])
        out.append((img.name, img.read_bytes(), label))
    return out


@pytest.fixture(scope="session")
def decoded_samples(icdar_samples):
    """(name, BGR image, polys float32 [N,4,2], ignore_tags bool [N], texts) per sample."""
    from dbnetpp.data.transforms import DecodeImage, DetLabelEncode

    dec, enc = DecodeImage(img_mode="BGR"), DetLabelEncode()
    out = []
    for name, raw, label in icdar_samples:
        d = enc(dec({"image": raw, "label": label}))
        out.append((name, d["image"], d["polys"], d["ignore_tags"], d["texts"]))
    return out
