"""Import-time hooks: run a function right after a module is imported, or serve a module of ours
in place of one.

The overlay never edits upstream files.  Instead, before upstream's entry point runs, a
:class:`HookFinder` is put first on ``sys.meta_path``.  For the few module names it knows it
either

* ``after(name, fn)``: lets the normal finders load the upstream module, then calls ``fn(module)``
  (used to swap one class for a compatible subclass, or to replace one function), or
* ``replace(name, factory)``: builds the module from ``factory(name)`` instead of executing the
  upstream file (used where merely executing the upstream file fails, e.g. a module that imports
  an unmaintained package at its top).

Every other import is left to Python's normal machinery.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Callable, Dict, List, Optional


class _AfterLoader(importlib.abc.Loader):
    """Wraps the real loader; runs the hooks once the module has executed."""

    def __init__(self, real: importlib.abc.Loader, hooks: List[Callable[[types.ModuleType], None]]):
        self.real = real
        self.hooks = hooks

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        self.real.exec_module(module)
        for fn in self.hooks:
            fn(module)


class _ReplaceLoader(importlib.abc.Loader):
    def __init__(self, factory: Callable[[str], types.ModuleType]):
        self.factory = factory

    def create_module(self, spec):
        return self.factory(spec.name)

    def exec_module(self, module):
        """The factory already filled the module."""


class HookFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder that only answers for registered module names."""

    def __init__(self):
        self._after: Dict[str, List[Callable[[types.ModuleType], None]]] = {}
        self._replace: Dict[str, Callable[[str], types.ModuleType]] = {}
        self._replace_tree: Dict[str, Callable[[str], types.ModuleType]] = {}

    def after(self, name: str, fn: Callable[[types.ModuleType], None]) -> None:
        if name in sys.modules:
            raise RuntimeError(f"cannot hook {name}: it was imported before the overlay was installed")
        self._after.setdefault(name, []).append(fn)

    def replace(self, name: str, factory: Callable[[str], types.ModuleType]) -> None:
        if name in sys.modules:
            raise RuntimeError(f"cannot replace {name}: it was imported before the overlay was installed")
        self._replace[name] = factory

    def replace_tree(self, name: str, factory: Callable[[str], types.ModuleType]) -> None:
        """Like :meth:`replace`, for ``name`` and every ``name.sub.module`` below it."""
        self.replace(name, factory)
        self._replace_tree[name] = factory

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".", 1)[0]
        factory = self._replace.get(fullname) or self._replace_tree.get(top)
        if factory is not None:
            return importlib.machinery.ModuleSpec(fullname, _ReplaceLoader(factory),
                                                  is_package=top in self._replace_tree)
        hooks = self._after.get(fullname)
        if not hooks:
            return None
        spec = self._real_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _AfterLoader(spec.loader, hooks)
        return spec

    def _real_spec(self, fullname, path, target) -> Optional[importlib.machinery.ModuleSpec]:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


def new_module(name: str, doc: str, **attrs) -> types.ModuleType:
    """A module object named ``name`` holding ``attrs`` (for :meth:`HookFinder.replace`)."""
    mod = types.ModuleType(name, doc)
    mod.__dict__.update(attrs)
    return mod
