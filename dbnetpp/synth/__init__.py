"""Synthetic scene-text images in the ICDAR2015 format, drawn with OpenCV's Hershey fonts
(no downloads), for demos and tests on machines without the real dataset."""
from .icdar_format import format_gt_line, gt_file_bytes
from .preview import draw_gt, montage
from .scene import DONT_CARE, SceneGenerator, SynthConfig, SynthSample, SynthWord

INFO_FILE = "synth_info.json"
"""Written by ``tools/make_synth_dataset.py`` beside the data it makes: its seed and sizes, and the mark that
the folder holds synthetic data (which that tool and ``tools/demo.py`` may replace)."""

__all__ = ["DONT_CARE", "INFO_FILE", "SceneGenerator", "SynthConfig", "SynthSample", "SynthWord", "draw_gt",
           "format_gt_line", "gt_file_bytes", "montage"]
