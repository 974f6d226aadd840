"""Runs PaddleOCR release/2.5's own det trainer, evaluator and exporter on Paddle 2.6/3.x and
NumPy >= 1.24, with DBNet++ (``DBFPN(use_asf=True)``) backed by ``dbnetpp``'s ASF block.

Nothing in the upstream checkout is edited: ``python -m ppocr_patches.run train|eval|export``
installs runtime shims (see ``ppocr_patches/shims``) and then runs upstream's entry point.
See ``ppocr_patches/README.md``.
"""
OVERLAY_VERSION = "1"
