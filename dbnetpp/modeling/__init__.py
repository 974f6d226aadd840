"""Detection model: backbone -> neck -> head, built from the YAML ``Architecture`` section."""
from . import backbones, heads, necks  # noqa: F401  (registers the modules)
from .detector import DetModel, build_model

__all__ = ["DetModel", "build_model"]
