"""dbnetpp: DBNet / DBNet++ text detection on PaddlePaddle with PaddleOCR-compatible configs."""
__version__ = "0.1.0"
