"""DBNet++ for release/2.5: ``DBFPN(..., use_asf=True)``.

release/2.5's ``DBFPN.__init__(in_channels, out_channels, **kwargs)`` swallows unknown keys, so a
DBNet++ config (``Neck: {name: DBFPN, use_asf: True}``) would silently train a plain DBNet.  Right after
``ppocr.modeling.necks.db_fpn`` is imported, the shim wraps ``DBFPN.__init__``/``forward`` so that
``use_asf`` is a real argument: when true, ``self.asf =
dbnetpp.modeling.necks.asf.ASFBlock(out_channels, out_channels // 4)`` is added after the upstream
layers and receives the fused map and its four levels (upstream's output, re-split).  Parameter names (``neck.asf.conv.*``,
``neck.asf.spatial_scale.*``, ``neck.asf.channel_scale.*``) and order are those of PaddleOCR >= 2.6,
so DBNet++ weights move freely between upstream and dbnetpp.  ``use_asf: False`` (or absent)
builds upstream's DBFPN unchanged.
"""
from __future__ import annotations

from typing import List

from .base import Expect

MODULE = "ppocr.modeling.necks.db_fpn"

EXPECTS = (
    Expect("ppocr/modeling/necks/db_fpn.py", r"^class DBFPN\(nn\.Layer\):",
           "the class the shim extends"),
    Expect("ppocr/modeling/necks/db_fpn.py", r"def __init__\(self, in_channels, out_channels, \*\*kwargs\)",
           "release/2.5 signature (PaddleOCR >= 2.6 has its own use_asf)"),
    Expect("ppocr/modeling/necks/db_fpn.py", r"fuse = paddle\.concat\(\[p5, p4, p3, p2\], axis=1\)\s+return fuse",
           "DBFPN.forward must return concat([p5, p4, p3, p2]): the ASF block re-splits it into the four levels"),
    Expect("ppocr/modeling/necks/db_fpn.py", r"self\.asf\b", "the checkout already has an ASF block", absent=True),
)


def _init(self, in_channels, out_channels, use_asf=False, **kwargs):
    self._upstream_init(in_channels, out_channels, **kwargs)
    self.use_asf = bool(use_asf)
    if self.use_asf:
        from dbnetpp.modeling.necks.asf import ASFBlock

        self.asf = ASFBlock(self.out_channels, self.out_channels // 4)


def _forward(self, x):
    fuse = self._upstream_forward(x)
    if not self.use_asf:
        return fuse
    levels = fuse.split(num_or_sections=4, axis=1)  # [p5, p4, p3, p2]
    return self.asf(fuse, levels)


def add_use_asf(cls) -> None:
    """Give ``cls`` (upstream's DBFPN) a ``use_asf`` argument, in place.

    The methods are replaced rather than subclassed because upstream's ``__init__`` calls
    ``super(DBFPN, self)`` with the module-level name, which a subclass bound to that name would
    break; they are module-level functions (no closures) so that ``paddle.jit.to_static`` can
    convert ``forward`` for export."""
    if "_upstream_forward" in vars(cls):
        return
    cls._upstream_init, cls._upstream_forward = cls.__init__, cls.forward
    cls.__init__, cls.forward = _init, _forward


def _patch(module) -> None:
    add_use_asf(module.DBFPN)


def install(finder) -> List[str]:
    finder.after(MODULE, _patch)
    return [f"{MODULE}.DBFPN(use_asf)"]
