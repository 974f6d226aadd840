"""Name -> class registries used to build modules from YAML ``name:`` entries.

Every buildable role (backbone, neck, head, loss, transform, ...) has one
:class:`Registry`.  A class registers itself with a decorator::

    @BACKBONES.register()
    class MobileNetV3(nn.Layer):
        ...

and a config section such as ``{"name": "MobileNetV3", "scale": 0.5}`` is turned
into an instance with :meth:`Registry.build`.  Unknown names and unknown keyword
arguments raise :class:`~dbnetpp.errors.ConfigError` naming the offending key,
where it came from and the valid choices.  Names are never ``eval()``-ed.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from .errors import ConfigError


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def accepted_kwargs(cls: Callable) -> Optional[set]:
    """Keyword names accepted by ``cls.__init__`` (``None`` if it takes ``**kwargs``)."""
    sig = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls)
    names = set()
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.name == "self" or p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        names.add(p.name)
    return names


def required_kwargs(cls: Callable) -> set:
    sig = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls)
    return {
        p.name
        for p in sig.parameters.values()
        if p.name != "self"
        and p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


class Registry:
    """A named mapping from YAML ``name`` strings to classes (or factories)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable] = {}

    # -- registration -------------------------------------------------------
    def register(self, name: Optional[str] = None, aliases: Iterable[str] = ()):
        def deco(obj):
            for key in [name or obj.__name__, *aliases]:
                if key in self._items and self._items[key] is not obj:
                    raise ValueError(f"{self.kind} '{key}' registered twice")
                self._items[key] = obj
            return obj

        return deco

    # -- lookup --------------------------------------------------------------
    def names(self):
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def get(self, name: Any, where: str = "") -> Callable:
        if not isinstance(name, str) or name not in self._items:
            hint = _suggest(str(name), self._items)
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{hint} Valid choices: {', '.join(self.names())}",
                key=where,
            )
        return self._items[name]

    # -- validation / building ---------------------------------------------
    def check_kwargs(self, name: str, kwargs: Mapping[str, Any], where: str = "",
                     injected: Iterable[str] = ()) -> Callable:
        """Validate ``kwargs`` against the class signature without building it."""
        cls = self.get(name, where=f"{where}.name" if where else "name")
        accepted = accepted_kwargs(cls)
        if accepted is not None:
            for key in kwargs:
                if key not in accepted:
                    valid = sorted(accepted - set(injected))
                    raise ConfigError(
                        f"unknown key '{key}' for {self.kind} '{name}'.{_suggest(key, valid)} "
                        f"Valid keys: {', '.join(valid) if valid else '(none)'}",
                        key=f"{where}.{key}" if where else key,
                    )
        missing = required_kwargs(cls) - set(kwargs) - set(injected)
        if missing:
            raise ConfigError(
                f"{self.kind} '{name}' needs key(s) {', '.join(sorted(missing))}",
                key=where,
            )
        return cls

    def build(self, cfg: Mapping[str, Any], where: str = "", **injected):
        """Build from a ``{"name": ..., **kwargs}`` mapping; ``injected`` adds kwargs."""
        if not isinstance(cfg, Mapping) or "name" not in cfg:
            raise ConfigError(f"{self.kind} section needs a 'name' key", key=where)
        kwargs = {k: v for k, v in cfg.items() if k != "name"}
        cls = self.check_kwargs(cfg["name"], kwargs, where, injected=injected)
        kwargs.update(injected)
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            arg = str(exc).split(" ", 1)[0].rstrip(":")  # messages of the form "box_thresh must be ..."
            key = f"{where}.{arg}" if where and arg in cfg and arg != "name" else where  # a key the user gave
            raise ConfigError(f"cannot build {self.kind} '{cfg['name']}': {exc}", key=key) from exc


BACKBONES = Registry("backbone")
NECKS = Registry("neck")
HEADS = Registry("head")
LOSSES = Registry("loss")
TRANSFORMS = Registry("transform")
DATASETS = Registry("dataset")
POSTPROCESSES = Registry("post-process")
METRICS = Registry("metric")
OPTIMIZERS = Registry("optimizer")
LR_SCHEDULERS = Registry("lr schedule")
