"""Post-processors turning network outputs into boxes (registered in POSTPROCESSES)."""
from .db_postprocess import DBPostProcess

__all__ = ["DBPostProcess"]
