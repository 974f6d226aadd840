"""Synthetic scene-text images in the ICDAR2015 format, drawn with OpenCV's Hershey fonts
(no downloads), for demos and tests on machines without the real dataset."""
from .icdar_format import format_gt_line, gt_file_bytes
from .preview import draw_gt, montage
from .scene import DONT_CARE, SceneGenerator, SynthConfig, SynthSample, SynthWord

__all__ = ["DONT_CARE", "SceneGenerator", "SynthConfig", "SynthSample", "SynthWord", "draw_gt",
           "format_gt_line", "gt_file_bytes", "montage"]
