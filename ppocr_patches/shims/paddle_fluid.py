"""Paddle 2.6 removed ``paddle.fluid``.  release/2.5 imports it at module level in
``ppocr/losses/table_att_loss.py`` (``from paddle import fluid``), and ``ppocr/losses/__init__.py``
imports every loss, so even a det run fails at ``import ppocr.losses``; ``tools/train.py`` also
calls ``paddle.fluid.set_flags`` when ``Global.use_amp`` is on (flags unknown to the installed
build, e.g. cuDNN flags on CPU, are skipped with a warning instead of raising).

When the installed Paddle has no ``paddle.fluid``, a small stand-in module is registered that maps
the twelve names release/2.5 uses to their Paddle 2.x/3.x equivalents.  Any other attribute raises
an AttributeError that says so, instead of a bare "no module named paddle.fluid".
"""
from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from typing import List

from .base import Expect

EXPECTS = (
    Expect("ppocr/losses/table_att_loss.py", r"^from paddle import fluid",
           "imported by ppocr/losses/__init__.py on every run"),
)


class _Namespace(types.ModuleType):
    """A module whose unknown attributes raise a message naming the shim."""

    def __getattr__(self, attr):
        import paddle

        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(
            f"{self.__name__}.{attr}: paddle.fluid no longer exists in paddle {paddle.__version__}; "
            f"the ppocr_patches stand-in only maps the names PaddleOCR release/2.5 uses "
            f"({', '.join(sorted(n for n in vars(self) if not n.startswith('_')))})")


def _set_flags(flags):
    """``paddle.set_flags``, skipping flags this Paddle build does not define (``tools/train.py``
    sets two cuDNN/AMP tuning flags under ``Global.use_amp``, absent from CPU builds)."""
    import paddle

    known = {}
    for name, value in flags.items():
        try:
            paddle.get_flags([name])
        except ValueError:
            warnings.warn(f"paddle.fluid.set_flags: {name} does not exist in this paddle build "
                          f"({paddle.__version__}); not set", stacklevel=2)
            continue
        known[name] = value
    if known:
        paddle.set_flags(known)


def _roi_align(*args, **kwargs):
    raise NotImplementedError(
        "paddle.fluid.layers.roi_align (KIE SDMGR backbone) is not mapped by the ppocr_patches "
        "stand-in: its signature differs from paddle.vision.ops.roi_align")


def _module(name: str, **attrs) -> _Namespace:
    mod = _Namespace(name)
    mod.__dict__.update(attrs)
    return mod


def build() -> _Namespace:
    import paddle
    from paddle.base import core, framework  # paddle >= 2.6 (and 3.x) home of the fluid internals

    layers = _module(
        "paddle.fluid.layers",
        elementwise_max=paddle.maximum,
        elementwise_min=paddle.minimum,
        clip=paddle.clip,
        reduce_sum=paddle.sum,
        reduce_mean=paddle.mean,
        cast=paddle.cast,
        roi_align=_roi_align,
    )
    initializer = _module("paddle.fluid.initializer", Constant=paddle.nn.initializer.Constant)
    return _module(
        "paddle.fluid",
        layers=layers,
        initializer=initializer,
        ParamAttr=paddle.ParamAttr,
        set_flags=_set_flags,
        core=core,
        framework=framework,
    )


def install(finder) -> List[str]:
    import paddle

    if importlib.util.find_spec("paddle.fluid") is not None:
        return []
    fluid = build()
    sys.modules["paddle.fluid"] = fluid
    for sub in ("layers", "initializer", "core", "framework"):
        sys.modules[f"paddle.fluid.{sub}"] = getattr(fluid, sub)
    paddle.fluid = fluid
    return ["paddle.fluid"]
