"""Backbones (registered in ``BACKBONES``)."""
from .mobilenet_v3 import MobileNetV3
from .resnet_vd import ResNet_vd

__all__ = ["MobileNetV3", "ResNet_vd"]
