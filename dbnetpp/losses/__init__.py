"""Losses (``DBLoss`` is registered in ``LOSSES``)."""
from .basic import BalanceLoss, BCELoss, DiceLoss, MaskL1Loss
from .db_loss import DBLoss

__all__ = ["BalanceLoss", "BCELoss", "DBLoss", "DiceLoss", "MaskL1Loss"]
