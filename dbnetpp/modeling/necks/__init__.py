"""Necks (registered in ``NECKS``)."""
from .asf import ASFBlock
from .db_fpn import DBFPN

__all__ = ["ASFBlock", "DBFPN"]
