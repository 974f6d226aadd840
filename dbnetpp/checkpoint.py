"""Weights and checkpoints with PaddleOCR's file layout and semantics.

* ``Global.pretrained_model`` -> :func:`load_pretrained`.  Accepted layouts: full-model
  weights; backbone-only weights whose names lack the ``backbone.`` prefix
  (``ResNet50_vd_pretrained`` style; PaddleOCR 2.5 matches names exactly, so these load nothing
  there and only print warnings); PaddleClas ImageNet names, converted by the backbone's
  ``from_paddleclas_name`` (MobileNetV3 ``conv1`` / ``conv{i}`` / ``blocks.{i}``, ResNet-vd
  ``stem`` / ``blocks``).  One table lists every missing / unexpected / shape-mismatched entry;
  a file that matches nothing raises :class:`CheckpointError`.
* ``Global.checkpoints`` -> :func:`load_checkpoint`: ``prefix.pdparams`` + ``prefix.pdopt`` +
  ``prefix.states`` (a pickled dict, e.g. ``epoch``, ``global_step``, ``best_model_dict``).
* :func:`save_checkpoint` writes the same three files, each atomically, ``.states`` last; it
  records size and SHA-256 of the ``.pdparams`` and ``.pdopt`` it belongs to in ``.states``
  (key ``dbnetpp_save@@``, ignored by PaddleOCR).  Loading verifies the files against that record:
  a damaged file, or a mix of files from two saves (a crash between the renames), is a
  :class:`CheckpointError`.  Files without the record (PaddleOCR's) load unverified.

Paths may be given with or without ``.pdparams``, as in PaddleOCR.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import paddle

from .errors import CheckpointError
from .safe_pickle import load as safe_load, load_paddle_file

__all__ = ["LoadReport", "load_params", "load_pretrained", "load_checkpoint", "save_checkpoint",
           "read_states", "verify_checkpoint"]

_PADDLE_NAME_MAP_KEY = "StructuredToParameterName@@"
# Extra entry of our .pdopt files: {structured name: parameter name} of the saved model.  Paddle keys
# optimizer state by parameter names (``conv2d_12.w_0_moment1_0``), which depend on how many layers
# the process created before the model; with this table a resume remaps them to the current names.
# Paddle and PaddleOCR ignore the entry.
_OPT_NAMES_KEY = "dbnetpp_parameter_names@@"
_OPT_SPECIAL_KEYS = ("LR_Scheduler", "master_weights", _OPT_NAMES_KEY)


def checkpoint_prefix(path: str) -> str:
    """``out/latest`` for ``out/latest`` or ``out/latest.pdparams`` (PaddleOCR accepts both)."""
    path = os.fspath(path)
    return path[: -len(".pdparams")] if path.endswith(".pdparams") else path


def checkpoint_file(path: str, ext: str = ".pdparams") -> str:
    """The ``ext`` file (``.pdparams``, ``.pdopt`` or ``.states``) of the checkpoint ``path``, which is
    given as PaddleOCR accepts it: ``out/latest`` or ``out/latest.pdparams``."""
    return checkpoint_prefix(path) + ext


def read_paddle_file(path: str) -> Any:
    """A ``paddle.save`` file as ``paddle.load`` returns it (arrays as tensors), read without running code
    from it (:mod:`dbnetpp.safe_pickle`: a file asking for anything but tensor data is refused)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: file not found")
    return _tensors(load_paddle_file(path))


def _tensors(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _tensors(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_tensors(v) for v in obj]
    return obj


def load_params(path: str) -> Dict[str, Any]:
    """Read ``path`` (with or without ``.pdparams``) into ``{name: array}``.

    Raises :class:`CheckpointError` naming the file if it is missing, unreadable or not a
    mapping of names to arrays.
    """
    if not path:
        raise CheckpointError("no weights path given")
    file = checkpoint_file(path)
    params = read_paddle_file(file)
    if not isinstance(params, Mapping):
        raise CheckpointError(f"{file}: expected a mapping of parameter names to arrays, "
                              f"got {type(params).__name__}")
    out = {k: v for k, v in params.items() if k != _PADDLE_NAME_MAP_KEY}
    if not out:
        raise CheckpointError(f"{file}: the file holds no parameters")
    return out


def _as_array(value: Any) -> Optional[np.ndarray]:
    if isinstance(value, paddle.Tensor):
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    return None


@dataclass
class LoadReport:
    """What :func:`load_pretrained` / :func:`load_checkpoint` did (names are model names unless noted)."""

    path: str
    layout: str
    total: int
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    """file names that map to no model entry"""
    mismatched: List[Tuple[str, List[int], List[int], str]] = field(default_factory=list)
    """``(model name, model shape, file shape, file name)``"""
    model_shapes: Dict[str, List[int]] = field(default_factory=dict, repr=False)
    file_shapes: Dict[str, List[int]] = field(default_factory=dict, repr=False)

    MAX_ROWS_PER_STATUS = 25

    def rows(self) -> List[Tuple[str, str, str, str]]:
        """``(status, name, model shape, file shape)``.  Missing entries of a top-level module that
        got nothing at all (``neck``, ``head`` for backbone weights) collapse into one row; each
        status shows at most ``MAX_ROWS_PER_STATUS`` rows plus a "... more" row."""
        loaded_tops = {name.split(".", 1)[0] for name in self.loaded}
        grouped: Dict[str, int] = {}
        missing = []
        for name in self.missing:
            top = name.split(".", 1)[0]
            if top in loaded_tops:
                missing.append(("missing", name, str(self.model_shapes.get(name, "")), "-"))
            else:
                grouped[top] = grouped.get(top, 0) + 1
        missing = [("missing", f"{top}.* ({n} entries, none in the file)", "-", "-")
                   for top, n in grouped.items()] + missing
        mismatched = [("mismatched", name if fname in (name, name[len("backbone."):]) else f"{name} (file: {fname})",
                       str(m), str(f)) for name, m, f, fname in self.mismatched]
        unexpected = [("unexpected", name, "-", str(self.file_shapes.get(name, "-"))) for name in self.unexpected]
        rows = []
        for part in (missing, mismatched, unexpected):
            rows += part[: self.MAX_ROWS_PER_STATUS]
            if len(part) > self.MAX_ROWS_PER_STATUS:
                rows.append((part[0][0], f"... and {len(part) - self.MAX_ROWS_PER_STATUS} more", "", ""))
        return rows

    def table(self) -> str:
        head = [f"weights {self.path} ({self.layout})",
                f"  loaded {len(self.loaded)} of {self.total} model entries; {len(self.missing)} missing, "
                f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape-mismatched"]
        if len(self.mismatched) > len(self.loaded):
            head.append("  WARNING: most entries with matching names have other shapes; is this the right "
                        "file for this Architecture (model_name / scale / layers)?")
        rows = self.rows()
        if not rows:
            return "\n".join(head)
        cols = [("status", "name", "model shape", "file shape")] + rows
        widths = [max(len(r[i]) for r in cols) for i in range(4)]
        lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cols]
        lines.insert(1, "  " + "  ".join("-" * w for w in widths))
        return "\n".join(head + lines)


def _unwrap(model: paddle.nn.Layer) -> paddle.nn.Layer:
    return model._layers if isinstance(model, paddle.DataParallel) else model


def _layouts(model: paddle.nn.Layer, allow_backbone: bool):
    """Candidate ``(description, file name -> model name or None)`` mappings."""
    yield "full model, names as stored", lambda n: n
    if not allow_backbone:
        return
    yield "backbone-only, 'backbone.' prefix added", lambda n: f"backbone.{n}"
    backbone = getattr(_unwrap(model), "backbone", None)
    convert = getattr(backbone, "from_paddleclas_name", None)
    if convert is not None:
        def mapped(n):
            m = convert(n)
            return None if m is None else f"backbone.{m}"
        yield "PaddleClas ImageNet backbone, names converted", mapped


def _apply(model: paddle.nn.Layer, params: Mapping[str, Any], file: str, allow_backbone: bool) -> LoadReport:
    state = model.state_dict()
    names = list(params)
    layout, mapping = max(_layouts(model, allow_backbone),
                          key=lambda lm: sum(lm[1](n) in state for n in names))
    report = LoadReport(path=file, layout=layout, total=len(state),
                        model_shapes={k: list(v.shape) for k, v in state.items()})
    values = {}
    for name in names:
        target = mapping(name)
        array = _as_array(params[name])
        if array is not None:
            report.file_shapes[name] = list(array.shape)
        if target not in state or array is None:
            report.unexpected.append(name if array is not None else f"{name} (not an array)")
            continue
        want = list(state[target].shape)
        if list(array.shape) != want:
            report.mismatched.append((target, want, list(array.shape), name))
            continue
        values[target] = array
    _refuse_non_finite(values, file)
    report.loaded = [n for n in state if n in values]
    mismatched_targets = {m[0] for m in report.mismatched}
    report.missing = [n for n in state if n not in values and n not in mismatched_targets]
    if not values:
        why = (f"all {len(report.mismatched)} entries with matching names have other shapes"
               if report.mismatched else
               f"no name matches (file: {', '.join(names[:3])}, ...; model: {', '.join(list(state)[:3])}, ...)")
        raise CheckpointError(f"{file}: nothing in the file matches the model: {why}")
    for target, array in values.items():
        param = state[target]
        if str(array.dtype) != str(param.dtype).replace("paddle.", ""):
            array = array.astype(str(param.dtype).replace("paddle.", ""))
        param.set_value(array)
    return report


def _refuse_non_finite(values: Mapping[str, np.ndarray], file: str) -> None:
    """Weights holding NaN or infinity are never loaded: a model built from them scores 0 or predicts
    nothing, silently.  :class:`CheckpointError` naming the tensors and how many values are bad."""
    bad = []
    for name, array in values.items():
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad.append(f"{name} ({int((~np.isfinite(array)).sum())} of {array.size} values)")
    if bad:
        raise CheckpointError(f"{file}: {len(bad)} tensor(s) hold NaN or infinity: {', '.join(bad[:6])}"
                              f"{' ...' if len(bad) > 6 else ''}. The weights are broken (a training that diverged); "
                              f"use an earlier checkpoint")


# Entry of our .states files: {"pdparams": {"size", "sha256"}, "pdopt": {...} or None} of the files
# written by the same save.  PaddleOCR reads only the keys it knows from .states.
_SAVE_KEY = "dbnetpp_save@@"
_VERIFIED_EXTS = (".pdparams", ".pdopt")
_HASH_CHUNK = 1 << 22


def _digest(data: bytes) -> Dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _file_digest(path: str) -> Dict[str, Any]:
    h, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return {"size": size, "sha256": h.hexdigest()}


def read_states(prefix: str) -> Optional[Dict[str, Any]]:
    """The dict pickled in ``prefix.states`` (None if absent), our save record included."""
    states_file = checkpoint_file(prefix, ".states")
    if not os.path.exists(states_file):
        return None
    states = safe_load(states_file)  # only plain data: no code runs from the file
    if not isinstance(states, dict):
        raise CheckpointError(f"{states_file}: expected a pickled dict, got {type(states).__name__}")
    return states


def verify_checkpoint(prefix: str, states: Optional[Mapping[str, Any]] = None,
                      exts: Sequence[str] = _VERIFIED_EXTS) -> bool:
    """Check ``prefix.pdparams`` / ``.pdopt`` (``exts``) against the save record in ``prefix.states``.

    ``states``: that file's dict when already read.  Returns False when there is no record
    (PaddleOCR's files, or a save without ``.states``).  Raises :class:`CheckpointError` naming
    the files when one differs in size or SHA-256 from the record (damaged bytes, or files from
    two saves after a crash between the renames), or when a ``.pdopt`` exists that the save
    did not write.
    """
    prefix = checkpoint_prefix(prefix)
    states_file = prefix + ".states"
    if states is None:
        states = read_states(prefix)
    record = (states or {}).get(_SAVE_KEY)
    if record is None:
        return False
    if not isinstance(record, Mapping):
        raise CheckpointError(f"{states_file}: damaged save record ({_SAVE_KEY})")
    bad = []
    for ext in exts:
        path, want = prefix + ext, record.get(ext.lstrip("."))
        if want is None:
            if os.path.exists(path):
                raise CheckpointError(f"{path}: not written by the save recorded in {states_file} (left from an "
                                      "older save?); move it away")
            continue
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: file not found, but {states_file} records it as part of the checkpoint")
        if os.path.getsize(path) != want.get("size") or _file_digest(path) != dict(want):
            bad.append(path)
    if bad:
        raise CheckpointError(
            f"{', '.join(bad)}: size or SHA-256 differs from the record in {states_file}: the file was damaged, "
            "or the files come from different saves (a crash while saving?); resume from another checkpoint "
            "(e.g. iter_epoch_N or best_accuracy)")
    return True


def load_pretrained(model: paddle.nn.Layer, path: str, log: Callable[[str], Any] = print) -> LoadReport:
    """Initialise ``model`` from ``path`` (``Global.pretrained_model``) and log one report table.

    Entries are matched by name and shape; the file layout (full model, backbone-only names,
    PaddleClas MobileNetV3 names) is the one that matches most names.  Raises
    :class:`CheckpointError` if the file is missing, corrupt, or nothing in it matches.
    """
    if path:
        verify_checkpoint(path, exts=(".pdparams",))
    params = load_params(path)
    report = _apply(model, params, checkpoint_file(path), allow_backbone=True)
    log(report.table())
    return report


def load_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer=None,
                    log: Callable[[str], Any] = print, partial: bool = False) -> Dict[str, Any]:
    """Resume from ``prefix`` (``Global.checkpoints``, with or without ``.pdparams``).

    Loads the model weights (names as stored; same report table as :func:`load_pretrained`),
    the optimizer state from ``prefix.pdopt`` when ``optimizer`` is given, and returns the dict
    pickled in ``prefix.states``, with ``start_epoch = epoch + 1`` added when it holds ``epoch``.
    Files written by :func:`save_checkpoint` are first verified as one set (:func:`verify_checkpoint`).

    A resume continues the same run, so by default anything that would silently change it is a
    :class:`CheckpointError`: model entries missing from the file, file entries the model has no
    place for (another Architecture), other shapes, a missing ``.pdopt`` (when ``optimizer`` is
    given) or ``.states`` (the run would restart at step 0).  ``partial`` (``Global.allow_partial_resume``)
    loads what fits and logs the rest, as PaddleOCR does; to start a new run from weights, use
    ``Global.pretrained_model`` (:func:`load_pretrained`).
    """
    prefix = checkpoint_prefix(prefix)
    saved_states = read_states(prefix)
    verify_checkpoint(prefix, saved_states)
    params = load_params(prefix)
    report = _apply(model, params, prefix + ".pdparams", allow_backbone=False)
    log(report.table())
    remedy = ("Resume with the config the checkpoint was trained with; to start a new run from these weights "
              "use Global.pretrained_model, or set Global.allow_partial_resume=true to load what fits")
    if not partial and (report.missing or report.unexpected or report.mismatched):
        parts = [f"{len(names)} {what} ({', '.join(names[:6])}{' ...' if len(names) > 6 else ''})"
                 for what, names in (("missing", report.missing), ("unexpected", report.unexpected),
                                     ("with other shapes", [m[0] for m in report.mismatched])) if names]
        raise CheckpointError(f"{prefix}.pdparams does not fit this model: entries {'; '.join(parts)}. {remedy}")
    opt_file = prefix + ".pdopt"
    opt_state = _read_optimizer_state(opt_file) if optimizer is not None and os.path.exists(opt_file) else None
    if optimizer is not None:
        if not partial and saved_states is None and opt_state is None:
            raise CheckpointError(f"{prefix}.states and {opt_file} do not exist: the resume would restart at epoch 1, "
                                  f"step 0, with the optimizer (Adam moments, schedule) from zero. {remedy}")
        if not partial and opt_state is None:
            raise CheckpointError(f"{opt_file} does not exist: the resume would restart the optimizer (Adam "
                                  f"moments, schedule state) from zero. {remedy}")
    states = _training_position(prefix, saved_states, opt_state, optimizer, log)  # before the optimizer takes it
    if optimizer is not None:
        if opt_state is not None:
            _restore_optimizer(optimizer, opt_state, model, opt_file, log)
        else:
            log(f"{opt_file} does not exist: optimizer state not restored")
    log(f"resumed from {prefix}")
    return states


def _training_position(prefix: str, saved_states: Optional[Mapping[str, Any]], opt_state: Optional[Mapping[str, Any]],
                       optimizer, log: Callable[[str], Any]) -> Dict[str, Any]:
    """The states :func:`load_checkpoint` returns: ``.states`` (without our save record, with ``start_epoch``),
    else what ``.pdopt`` tells of the position, said in one line."""
    if saved_states is not None:
        states = {k: v for k, v in saved_states.items() if k != _SAVE_KEY}
        if "epoch" in states and "start_epoch" not in states:
            states["start_epoch"] = states["epoch"] + 1
        return states
    if opt_state is None:
        log(f"{prefix}.states does not exist: training counters start from zero")
        return {}
    # PaddleOCR release/2.5 writes .states for best_accuracy only: its 'latest' and 'iter_epoch_N' carry their
    # position at most as a step count in .pdopt
    lost = ("the best evaluation so far (best_accuracy is kept from the next evaluation on) and the "
            "random-generator states (augmentation and sample order continue from fresh draws)")
    recovered = _steps_taken(opt_state, optimizer)
    if recovered is None:
        log(f"WARNING: {prefix}.states does not exist (PaddleOCR writes it for best_accuracy only) and "
            f"{prefix}.pdopt holds no step count (no learning-rate schedule, no Adam step counter): the optimizer "
            f"state is restored but the run counts from epoch 1, step 0 (as PaddleOCR does). Not recoverable "
            f"either: {lost}")
        return {}
    steps, source = recovered
    log(f"{prefix}.states does not exist (PaddleOCR writes it for best_accuracy only): resuming at global step "
        f"{steps}, taken from {source} in {prefix}.pdopt. Not recoverable: {lost}")
    return {"global_step": steps, "lr_last_epoch": steps}


def _read_optimizer_state(opt_file: str) -> Dict[str, Any]:
    opt_state = read_paddle_file(opt_file)
    if not isinstance(opt_state, Mapping):
        raise CheckpointError(f"{opt_file}: expected an optimizer state dict, got {type(opt_state).__name__}")
    return dict(opt_state)


def _steps_taken(opt_state: Mapping[str, Any], optimizer) -> Optional[Tuple[int, str]]:
    """Optimizer steps an optimizer state had taken, and where that was read: the learning-rate schedule's
    step count, else Adam's bias-correction powers (``beta1_pow_acc`` = beta1^(t+1), exact while it is a
    normal float32, t < ~650 for beta1 0.9; then ``beta2_pow_acc``, within a step up to ~8000 steps for
    0.999).  None when neither is there (e.g. Momentum at a constant rate)."""
    sched = opt_state.get("LR_Scheduler")
    steps = sched.get("last_epoch") if isinstance(sched, Mapping) else None
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 0:
        return int(steps), "the learning-rate schedule's step count"
    for acc, attr in (("beta1_pow_acc", "_beta1"), ("beta2_pow_acc", "_beta2")):
        beta = getattr(optimizer, attr, None)
        values = {float(a.reshape(-1)[0]) for k, v in opt_state.items() if acc in k
                  for a in [_as_array(v)] if a is not None and a.size}
        if len(values) != 1 or not isinstance(beta, float) or not 0.0 < beta < 1.0:
            continue
        value = values.pop()
        if value > 1e-30:  # a normal float32: not yet underflowed
            steps = int(round(math.log(value) / math.log(beta))) - 1
            if steps >= 0:
                return steps, f"Adam's step counter ({acc})"
    return None


def _restore_optimizer(optimizer, opt_state: Dict[str, Any], model: paddle.nn.Layer, opt_file: str,
                       log: Callable[[str], Any]) -> None:
    """Load ``opt_state`` (renamed to this process's parameter names) into ``optimizer``."""
    opt_state = _remap_optimizer_state(opt_state, model, opt_file)
    scheduler = getattr(optimizer, "_learning_rate", None)
    if isinstance(scheduler, paddle.optimizer.lr.LRScheduler) and "LR_Scheduler" not in opt_state:
        opt_state["LR_Scheduler"] = scheduler.state_dict()
        log(f"{opt_file} holds no learning-rate schedule (saved with a constant learning rate): "
            "the schedule continues from its current state")
    try:
        optimizer.set_state_dict(opt_state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{opt_file}: optimizer state does not fit this optimizer: {exc}") from exc


_ACC_KEY = re.compile(r"^(?P<layer>(?P<type>[A-Za-z0-9_]+?)_(?P<n>\d+))\.(?P<param>[wb]_\d+)_(?P<acc>.+)$")


def _remap_optimizer_state(state: Dict[str, Any], model: paddle.nn.Layer, file: str) -> Dict[str, Any]:
    """Rename optimizer entries from the saved parameter names to the current model's ones.

    With our name table (written by :func:`save_checkpoint`) the mapping is exact.  Without it
    (a PaddleOCR ``.pdopt``), Paddle's names ``<layer type>_<counter>.<w|b>_<k>`` of the same
    architecture differ only by a per-type counter offset, so the i-th saved layer of each type
    is matched with the i-th layer of that type here.  The result must give every entry a
    parameter of this model with a compatible shape, else :class:`CheckpointError` (Paddle
    itself would only fail at the first optimizer step).
    """
    saved = state.pop(_OPT_NAMES_KEY, None)
    entries = [k for k in state if k not in _OPT_SPECIAL_KEYS]
    if not entries:
        return state
    params = {p.name: p for p in model.parameters() if not p.stop_gradient}
    if isinstance(saved, Mapping):
        new_key = _rename_by_table(saved, {k: v.name for k, v in model.state_dict().items()})
    else:
        new_key = _rename_by_creation_order(entries, params)
    out = {new_key(k) if k in entries else k: v for k, v in state.items()}
    for old in entries:
        match = _ACC_KEY.match(new_key(old))
        param = params.get(f"{match['layer']}.{match['param']}") if match else None
        value = _as_array(state[old])
        if param is None or value is None or (list(value.shape) != list(param.shape) and value.size != 1):
            raise CheckpointError(
                f"{file}: the optimizer state ({old}, ...) does not match this model's parameters "
                "(another architecture?); move the .pdopt file away to resume the weights with a fresh optimizer")
    if isinstance(out.get("master_weights"), Mapping):
        out["master_weights"] = {new_key(k): v for k, v in out["master_weights"].items()}
    return out


def _rename_by_table(saved: Mapping[str, str], current: Mapping[str, str]) -> Callable[[str], str]:
    rename = {name: current[k] for k, name in saved.items() if k in current}
    by_length = sorted(saved.values(), key=len, reverse=True)

    def new_key(key: str) -> str:
        for old in by_length:
            if key == old or key.startswith(old + "_"):
                return rename.get(old, old) + key[len(old):]
        return key

    return new_key


def _rename_by_creation_order(entries: List[str], params: Mapping[str, Any]) -> Callable[[str], str]:
    parsed = [_ACC_KEY.match(k) for k in entries]
    if any(m is None for m in parsed) or all(f"{m['layer']}.{m['param']}" in params for m in parsed):
        return lambda key: key  # not Paddle names (checked by the caller), or names that already agree

    def layers_by_type(layer_names):
        out: Dict[str, List[int]] = {}
        for name in layer_names:
            layer_type, _, n = name.rpartition("_")
            out.setdefault(layer_type, []).append(int(n))
        return {t: sorted(set(ns)) for t, ns in out.items()}

    old_layers = layers_by_type(m["layer"] for m in parsed)
    new_layers = layers_by_type(name.split(".")[0] for name in params)
    layer_map = {f"{t}_{o}": f"{t}_{n}" for t, ns in old_layers.items()
                 if len(ns) == len(new_layers.get(t, [])) for o, n in zip(ns, new_layers[t])}

    def new_key(key: str) -> str:
        m = _ACC_KEY.match(key)
        if m is None or m["layer"] not in layer_map:
            return key
        return f"{layer_map[m['layer']]}.{m['param']}_{m['acc']}"

    return new_key


def _paddle_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    paddle.save(obj, buf)
    return buf.getvalue()


def _write_synced(path: str, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(directory: str):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the renames are still atomic
    finally:
        os.close(fd)


def save_checkpoint(prefix: str, model: paddle.nn.Layer, optimizer=None, states: Optional[Mapping[str, Any]] = None):
    """Write ``prefix.pdparams`` (+ ``.pdopt`` if ``optimizer``, + ``.states`` if ``states``).

    Every file is first written in full to a temporary file in the same directory and fsync-ed;
    only when all of them are written are they renamed over the old ones, ``.states`` last.
    ``.states`` also records size and SHA-256 of the ``.pdparams`` and ``.pdopt`` of this save,
    so a crash between the renames (new weights, old ``.states``) or a damaged file is refused
    by :func:`load_checkpoint`.  A ``.pdopt`` of an earlier save is removed when this save writes
    none but writes ``.states``.  Any failure (read-only directory, full disk, ...) raises
    :class:`CheckpointError` naming the path, removes the temporary files and leaves existing
    files untouched.
    """
    prefix = checkpoint_prefix(prefix)
    try:
        payload = [(prefix + ".pdparams", _paddle_bytes(model.state_dict()))]
        if optimizer is not None:
            opt_state = dict(optimizer.state_dict())
            opt_state[_OPT_NAMES_KEY] = {k: v.name for k, v in model.state_dict().items()}
            payload.append((prefix + ".pdopt", _paddle_bytes(opt_state)))
        if states is not None:
            record = {"pdparams": _digest(payload[0][1]),
                      "pdopt": _digest(payload[1][1]) if optimizer is not None else None}
            payload.append((prefix + ".states", pickle.dumps({**dict(states), _SAVE_KEY: record}, protocol=2)))
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"{prefix}: cannot serialise checkpoint: {exc}") from exc

    directory = os.path.dirname(os.path.abspath(prefix))
    written: List[Tuple[str, str]] = []
    current = directory
    try:
        os.makedirs(directory, exist_ok=True)
        for final, data in payload:
            current = final
            tmp = f"{final}.{os.getpid()}.tmp"
            written.append((tmp, final))
            _write_synced(tmp, data)
        if states is not None and optimizer is None and os.path.exists(prefix + ".pdopt"):
            current = prefix + ".pdopt"
            os.remove(current)  # not part of this save; its .states would refuse it
        for tmp, final in written:  # .states, the record of the set, last
            current = final
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _ in written:
            if os.path.exists(tmp):
                try:
                    os.remove(tmp)
                except OSError:
                    pass
        raise CheckpointError(f"cannot save checkpoint {current}: {exc.strerror or exc}") from exc
    _fsync_dir(directory)
