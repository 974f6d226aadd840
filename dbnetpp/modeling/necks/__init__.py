"""Necks (registered in ``NECKS``)."""
from .asf import ASFBlock
from .db_fpn import DBFPN
from .rse_fpn import RSEFPN, RSELayer

__all__ = ["ASFBlock", "DBFPN", "RSEFPN", "RSELayer"]
