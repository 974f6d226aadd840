"""Detection model: backbone -> neck -> head, built from the YAML ``Architecture`` section."""
from . import backbones, heads, necks  # noqa: F401  (registers the modules)
from .detector import TRAINING_ONLY_PREFIXES, DetModel, build_model, static_graph, training_only

__all__ = ["DetModel", "build_model", "TRAINING_ONLY_PREFIXES", "training_only", "static_graph"]
