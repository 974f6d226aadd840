"""Heads (registered in ``HEADS``)."""
from .db_head import DBHead

__all__ = ["DBHead"]
