"""PaddleOCR-schema YAML configs: loading, ``-o`` overrides and validation.

The schema is PaddleOCR's (sections Global / Architecture / Loss / Optimizer /
PostProcess / Metric / Train / Eval).  Overrides follow PaddleOCR's ``-o``::

    -o Global.epoch_num=10 Train.loader.batch_size_per_card=8 \
       Train.dataset.transforms.3.EastRandomCropData.size=[320,320]

Values are parsed as YAML (``8`` -> int, ``true`` -> bool, ``[1,2]`` -> list).
Integers index into lists, a small extension over PaddleOCR.

Validation rejects unknown sections and keys, unknown module names and unknown
module arguments with a :class:`ConfigError` naming the file, the dotted key and
the valid choices.  It runs before anything is built, so a typo never costs a
training run.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import yaml

from .engine.optim import check_optimizer_config
from .errors import ConfigError, cwd_hint
from .global_schema import GLOBAL_KEYS, check_global_values
from .modeling.detector import check_architecture
from .registry import (DATASETS, LOSSES, METRICS, POSTPROCESSES,
                       TRANSFORMS, _suggest)
from .values import non_finite_entries

SECTIONS = ("Global", "Architecture", "Loss", "Optimizer", "PostProcess", "Metric", "Train", "Eval")

LOADER_KEYS = ("shuffle", "drop_last", "batch_size_per_card", "num_workers", "use_shared_memory",
               "persistent_workers", "prefetch_factor", "collate_fn", "compact_batches")
DATASET_SECTION_KEYS = ("dataset", "loader", "sampler")


# ---------------------------------------------------------------------------
# loading and overrides
# ---------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` / ``5E4`` as floats (PyYAML's YAML 1.1 rule wants ``1.0e-3``)
    and rejects a key given twice in one mapping (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # ``<<: *anchor`` entries may be overridden on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the base constructor reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key '{key}' (first given at line {first.line + 1}); "
                        f"YAML would silently keep the last value", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text):
    return yaml.load(text, Loader=_Loader)


def load_yaml(path: str) -> Dict[str, Any]:
    if os.path.isdir(path):
        ymls = sorted(f for f in os.listdir(path) if f.endswith((".yml", ".yaml")))
        shown = ", ".join(ymls[:5]) + (" ..." if len(ymls) > 5 else "")
        raise ConfigError(f"-c names a folder, not a config file: {path}"
                          + (f" (it holds {shown})" if ymls else ""))
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}{cwd_hint(path)}")
    if os.path.splitext(path)[1] not in (".yml", ".yaml"):
        raise ConfigError("config must be a .yml or .yaml file", file=path)
    try:
        with open(path, "rb") as f:
            cfg = yaml_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"invalid YAML{line}: {getattr(exc, 'problem', exc)}", file=path) from exc
    if not isinstance(cfg, dict):
        raise ConfigError("top level must be a mapping of sections", file=path)
    return cfg


def parse_overrides(opts: Optional[Iterable[str]]) -> List[tuple]:
    """``["A.b=1", ...]`` -> ``[("A.b", 1), ...]`` with YAML-typed values."""
    out = []
    for raw in opts or []:
        s = raw.strip()
        if "=" not in s:
            raise ConfigError(f"override '{raw}' must look like Section.key=value")
        key, value = s.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{raw}' has an empty key")
        try:
            parsed = yaml_load(value) if value.strip() != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override value '{value}' is not valid YAML: {exc}", key=key) from exc
        out.append((key, parsed))
    return out


def apply_overrides(cfg: Dict[str, Any], opts: Optional[Iterable[str]], file: Optional[str] = None):
    """Apply ``-o`` overrides in place (PaddleOCR ``merge_config`` semantics) and return cfg."""
    for key, value in parse_overrides(opts):
        parts = key.split(".")
        if len(parts) == 1:
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key].update(value)
            else:
                cfg[key] = value
            continue
        if parts[0] not in cfg:
            raise ConfigError(
                f"override '{key}': section '{parts[0]}' is not in the config.{_suggest(parts[0], cfg)} "
                f"Sections: {', '.join(cfg)}", key=key, file=file)
        cur: Any = cfg
        for depth, part in enumerate(parts[:-1]):
            cur = _descend(cur, part, ".".join(parts[: depth + 1]), key, file)
        last = parts[-1]
        if isinstance(cur, list):
            idx = _list_index(cur, last, key, file)
            cur[idx] = value
        elif isinstance(cur, dict):
            cur[last] = value
        else:
            raise ConfigError(f"override '{key}': '{'.'.join(parts[:-1])}' is a value, not a section",
                              key=key, file=file)
    return cfg


def _list_index(cur: list, part: str, key: str, file):
    try:
        idx = int(part)
    except ValueError:
        raise ConfigError(f"override '{key}': '{part}' must be a list index", key=key, file=file)
    if not -len(cur) <= idx < len(cur):
        raise ConfigError(f"override '{key}': index {idx} out of range (list has {len(cur)} items)",
                          key=key, file=file)
    return idx


def _descend(cur: Any, part: str, path: str, key: str, file):
    if isinstance(cur, list):
        nxt = cur[_list_index(cur, part, key, file)]
    elif isinstance(cur, dict):
        if part not in cur:
            raise ConfigError(f"override '{key}': '{path}' does not exist.{_suggest(part, cur)} "
                              f"Keys there: {', '.join(map(str, cur))}", key=key, file=file)
        nxt = cur[part]
        if nxt is None:
            nxt = cur[part] = {}
    else:
        raise ConfigError(f"override '{key}': '{path}' is a value, not a section", key=key, file=file)
    return nxt


def load_config(path: str, overrides: Optional[Iterable[str]] = None, validate: bool = True) -> Dict[str, Any]:
    """Load ``path``, apply overrides, validate; returns a plain dict.

    The file's absolute path is kept under the private key ``__file__`` (see
    :func:`config_file_of`) so later errors can still name it.
    """
    cfg = load_yaml(path)
    apply_overrides(cfg, overrides, file=path)
    if validate:
        validate_config(cfg, path)
    cfg.setdefault("Global", {})
    cfg["__file__"] = os.path.abspath(path)
    return cfg


def config_file_of(cfg: Mapping[str, Any]) -> Optional[str]:
    return cfg.get("__file__")


def clean_for_dump(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A deep copy without private keys, fit for ``yaml.safe_dump``."""
    return {k: copy.deepcopy(v) for k, v in cfg.items() if not k.startswith("__")}


RESOLVED_HEADER = "# resolved config of the run in this folder (config file + -o overrides), written by tools/train.py\n"


def _written_by_an_older_run(text: str, path: str) -> bool:
    """A config.yml without the header, beside a train.log, whose save_model_dir is its own folder: the
    resolved config of a run made before configs carried :data:`RESOLVED_HEADER`."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(folder, "train.log")):
        return False
    try:
        saved = ((yaml_load(text) or {}).get("Global") or {}).get("save_model_dir")
    except (yaml.YAMLError, AttributeError, ConfigError):
        return False
    return bool(saved) and os.path.abspath(str(saved)) == folder


def check_resolved_target(cfg: Mapping[str, Any], path: str) -> None:
    """:class:`ConfigError` when writing the resolved config to ``path`` would replace the user's own config
    file (``-c exp/config.yml -o Global.save_model_dir=exp``); a ``config.yml`` a run wrote there (resuming
    from it) may be replaced."""
    source = config_file_of(cfg)
    if not (source and os.path.exists(path) and os.path.samefile(source, path)):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.startswith(RESOLVED_HEADER) or _written_by_an_older_run(text, path):
        return
    raise ConfigError(f"the run would replace the config file {source} itself with its resolved copy (the output "
                      f"folder's config.yml). Copy it out of the folder and pass that copy with -c, or choose "
                      f"another Global.save_model_dir", key="Global.save_model_dir", file=source)


def save_config(cfg: Mapping[str, Any], path: str):
    """Write the resolved ``cfg`` to ``path`` (atomically), under :data:`RESOLVED_HEADER`.  A config file the
    user wrote is never replaced: when ``cfg`` came from ``path`` itself and the file lacks that header,
    :class:`ConfigError` says how to keep it."""
    check_resolved_target(cfg, path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(RESOLVED_HEADER)
        yaml.safe_dump(clean_for_dump(cfg), f, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def _ensure_registered():
    from . import registered  # noqa: F401  (imports every module that registers names)


def _check_keys(section: Mapping, allowed: Sequence[str], where: str, file):
    if section is None:
        return
    if not isinstance(section, Mapping):
        raise ConfigError(f"must be a mapping, got {type(section).__name__}", key=where, file=file)
    for k in section:
        if k not in allowed:
            raise ConfigError(f"unknown key '{k}'.{_suggest(str(k), allowed)} Valid keys: {', '.join(allowed)}",
                              key=f"{where}.{k}", file=file)


def _check_type(value, types, key, file):
    if value is None:
        return
    if bool in types or not isinstance(value, bool):
        if isinstance(value, types):
            return
    names = " or ".join(t.__name__ for t in types)
    raise ConfigError(f"must be {names}, got {type(value).__name__} {value!r}", key=key, file=file)


def _check_module(registry, section, where, file, injected=(), build=False):
    """Keys of a module section against its class; ``build``: the module is cheap to build, so its
    values (ranges) are checked by building it once."""
    if section is None:
        return
    if not isinstance(section, Mapping) or "name" not in section:
        raise ConfigError(f"needs a 'name' key (one of: {', '.join(registry.names())})", key=where, file=file)
    try:
        registry.check_kwargs(section["name"], {k: v for k, v in section.items() if k != "name"},
                              where=where, injected=injected)
        if build:
            registry.build(section, where=where)
    except ConfigError as exc:
        raise exc.with_context(file=file) from None


def transform_items(transforms: Any, where: str, file) -> List[tuple]:
    """``[{Name: args}, ...]`` -> ``[(Name, args_dict), ...]`` with shape checks."""
    if not isinstance(transforms, list):
        raise ConfigError("must be a list of {TransformName: {args}} items", key=where, file=file)
    items = []
    for i, item in enumerate(transforms):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfigError("each transform must be a one-key mapping {TransformName: {args}}",
                              key=f"{where}.{i}", file=file)
        (name, args), = item.items()
        if args is not None and not isinstance(args, Mapping):
            raise ConfigError(f"arguments of {name} must be a mapping", key=f"{where}.{i}.{name}", file=file)
        items.append((name, dict(args or {})))
    return items


def validate_config(cfg: Mapping[str, Any], file: Optional[str] = None):
    """Raise :class:`ConfigError` on the first invalid entry of ``cfg``."""
    _ensure_registered()
    for sec in cfg:
        if sec.startswith("__"):
            continue
        if sec not in SECTIONS:
            raise ConfigError(f"unknown section '{sec}'.{_suggest(sec, SECTIONS)} Valid sections: {', '.join(SECTIONS)}",
                              key=sec, file=file)
    for key, value in non_finite_entries(cfg):  # every number of every section and module argument
        raise ConfigError(f"must be a finite number, got {value!r} (NaN and infinity are never valid settings)",
                          key=key, file=file)
    g = cfg.get("Global") or {}
    _check_keys(g, tuple(GLOBAL_KEYS), "Global", file)
    for k, v in g.items():
        _check_type(v, GLOBAL_KEYS[k].types, f"Global.{k}", file)
    check_global_values(g, file)

    if cfg.get("Architecture") is None:
        raise ConfigError("missing section 'Architecture'", key="Architecture", file=file)
    try:  # each section's rules live with its builder
        check_architecture(cfg["Architecture"])
        if cfg.get("Optimizer") is not None:
            check_optimizer_config(cfg["Optimizer"])
    except ConfigError as exc:
        raise exc.with_context(file=file) from None

    _check_module(LOSSES, cfg.get("Loss"), "Loss", file, build=True)
    _check_module(POSTPROCESSES, cfg.get("PostProcess"), "PostProcess", file, build=True)
    _check_module(METRICS, cfg.get("Metric"), "Metric", file, build=True)

    for split in ("Train", "Eval"):
        sec = cfg.get(split)
        if sec is None:
            continue
        _check_keys(sec, DATASET_SECTION_KEYS, split, file)
        ds = sec.get("dataset")
        if ds is None:
            raise ConfigError("missing 'dataset'", key=f"{split}.dataset", file=file)
        ds_args = {k: v for k, v in ds.items() if k != "transforms"}
        _check_module(DATASETS, ds_args, f"{split}.dataset", file, injected=("transforms", "mode", "seed"))
        _check_transforms(ds.get("transforms"), split, file)
        loader = sec.get("loader") or {}
        _check_keys(loader, LOADER_KEYS, f"{split}.loader", file)
        bs = loader.get("batch_size_per_card")
        if bs is not None and (not isinstance(bs, int) or isinstance(bs, bool) or bs < 1):
            raise ConfigError(f"must be a positive integer, got {bs!r}", key=f"{split}.loader.batch_size_per_card", file=file)
        nw = loader.get("num_workers")
        if nw is not None and (not isinstance(nw, int) or isinstance(nw, bool) or nw < 0):
            raise ConfigError(f"must be an integer >= 0, got {nw!r}", key=f"{split}.loader.num_workers", file=file)
        if bs is not None and bs > 1:
            _check_batchable(ds.get("transforms"), split, bs, file)


def _check_transforms(transforms: Any, split: str, file) -> None:
    """Each transform's arguments (and its ``check_config`` hook), then what the pipeline must make."""
    where = f"{split}.dataset.transforms"
    items = transform_items(transforms if transforms is not None else [], where, file)
    for i, (name, args) in enumerate(items):
        try:
            cls = TRANSFORMS.check_kwargs(name, args, where=f"{where}.{i}.{name}")
            hook = getattr(cls, "check_config", None)
            if callable(hook):
                try:
                    hook(args, split)
                except ConfigError as exc:
                    raise exc.with_context(prefix=f"{where}.{i}.{name}") from None
        except ConfigError as exc:
            raise exc.with_context(file=file) from None
    _check_pipeline(items, split, file)


def _check_batchable(transforms: Any, split: str, batch_size: int, file) -> None:
    """Samples of one batch are stacked, so a batch of several images needs a resize whose output
    size does not depend on the image (otherwise the loader would stop on the first mixed batch)."""
    for i, (name, args) in enumerate(transform_items(transforms or [], f"{split}.dataset.transforms", file)):
        cls = TRANSFORMS.get(name)
        varies = getattr(cls, "output_size_varies", None)
        if callable(varies) and varies(args):
            raise ConfigError(
                f"is {batch_size}, but {split}.dataset.transforms.{i}.{name} keeps each image's aspect ratio, so "
                f"images of different sizes cannot be stacked into one batch: set batch_size_per_card to 1 "
                f"(PaddleOCR's evaluation setting) or give {name} a fixed image_shape [H, W] without keep_ratio",
                key=f"{split}.loader.batch_size_per_card", file=file)


# Keys the trainer (loss) and the evaluator (post-process, metric) read from a batch.
REQUIRED_KEEP_KEYS = {
    "Train": ("image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"),
    "Eval": ("image", "shape", "polys", "ignore_tags"),
}


def _check_pipeline(items: List[tuple], split: str, file) -> None:
    """The transforms decode the image and end in ``KeepKeys`` keeping what ``split`` needs,
    all of which earlier transforms make."""
    from .data.transforms.keep_keys import KeepKeys

    where = f"{split}.dataset.transforms"
    needed = REQUIRED_KEEP_KEYS[split]
    usage = (f"{split} needs at least DecodeImage, DetLabelEncode, "
             + ("MakeBorderMap, MakeShrinkMap, " if split == "Train" else "DetResizeForTest, ")
             + f"NormalizeImage, ToCHWImage and KeepKeys with keep_keys {list(needed)}")
    if not items:
        raise ConfigError(f"is empty: {usage}", key=where, file=file)
    names = [name for name, _ in items]
    if "DecodeImage" not in names:
        raise ConfigError(f"has no DecodeImage (images stay undecoded bytes): {usage}", key=where, file=file)
    keep_at = [i for i, name in enumerate(names) if name == "KeepKeys"]
    if not keep_at:
        raise ConfigError(f"has no KeepKeys: {usage}", key=where, file=file)
    last = keep_at[-1]
    keep_keys = list(items[last][1].get("keep_keys") or [])
    key = f"{where}.{last}.KeepKeys.keep_keys"
    available = KeepKeys.available_keys(items[:last])
    if available is not None:
        unknown = [k for k in keep_keys if k not in available]
        if unknown:
            raise ConfigError(
                f"KeepKeys asks for {', '.join(repr(k) for k in unknown)}, which no transform before it makes "
                f"(available: {', '.join(sorted(available))})", key=key, file=file)
    missing = [k for k in needed if k not in keep_keys]
    if missing:
        raise ConfigError(f"KeepKeys must keep {', '.join(repr(k) for k in missing)} ({split} reads "
                          f"{', '.join(needed)}); got {keep_keys}", key=key, file=file)
