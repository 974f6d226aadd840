"""Optimizer state that survives a change of engine (``Global.checkpoints`` resume).

Paddle keys an optimizer's state by parameter *variable* names (``conv2d_12.w_0_moment1_0``), which
depend on how many layers the process created before the model, so a ``.pdopt`` written by
dbnetpp generally names none of upstream's parameters, and Paddle then stops the resumed run with
"Optimizer set error, conv2d_0.w_0_moment1_0 should in state dict".  dbnetpp stores, next to the
state, a table ``{structured name: variable name}`` under the key ``dbnetpp_parameter_names@@``
(``backbone.conv.conv.weight`` -> ``conv2d_0.w_0``); Paddle ignores that entry.

After ``ppocr.utils.save_load`` is imported the shim wraps its two functions:

* ``save_model``: once upstream has written ``PREFIX.pdopt``, it is rewritten with the same table
  added, so dbnetpp (or this shim) can resume from it in any process;
* ``load_model``: with ``Global.checkpoints`` and an optimizer, upstream loads weights and
  counters as before, then the optimizer state is loaded by the shim, renaming entries through
  the table when the file has one (files without it load exactly as upstream would).
"""
from __future__ import annotations

import os
from typing import Dict, List

from .base import Expect

MODULE = "ppocr.utils.save_load"
NAMES_KEY = "dbnetpp_parameter_names@@"

EXPECTS = (
    Expect("ppocr/utils/save_load.py", r"^def load_model\(config, model, optimizer=None, model_type='det'\):",
           "the function the shim wraps"),
    Expect("ppocr/utils/save_load.py", r"^def save_model\(model,\s+optimizer,\s+model_path,\s+logger,\s+config,"
           r"\s+is_best=False,\s+prefix='ppocr',\s+\*\*kwargs\):", "the function the shim wraps"),
    Expect("ppocr/utils/save_load.py", r"paddle\.save\(optimizer\.state_dict\(\), model_prefix \+ '\.pdopt'\)",
           "save_model writes PREFIX.pdopt, which the shim rewrites"),
    Expect("tools/program.py", r"^from ppocr\.utils\.save_load import save_model$",
           "the trainer must take save_model from the module (after the shim wrapped it)"),
)


def parameter_names(model) -> Dict[str, str]:
    """``{structured name: variable name}`` of ``model`` (unwrapping ``paddle.DataParallel``)."""
    layer = getattr(model, "_layers", model)
    return {k: v.name for k, v in layer.state_dict().items()}


def rename_state(state: dict, model) -> dict:
    """``state`` with entries renamed from the saved variable names to ``model``'s (via the table)."""
    state = dict(state)
    saved = state.pop(NAMES_KEY, None)
    if not isinstance(saved, dict):
        return state
    current = parameter_names(model)
    rename = {old: current[k] for k, old in saved.items() if k in current}
    olds = sorted(rename, key=len, reverse=True)

    def new_key(key: str) -> str:
        for old in olds:
            if key == old or key.startswith(old + "_"):
                return rename[old] + key[len(old):]
        return key

    out = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            out[key] = {new_key(k): v for k, v in value.items()}
        elif key == "LR_Scheduler":
            out[key] = value
        else:
            out[new_key(key)] = value
    return out


def wrap(module) -> None:
    import paddle

    upstream_save, upstream_load = module.save_model, module.load_model

    def save_model(model, optimizer, model_path, logger, config, is_best=False, prefix="ppocr", **kwargs):
        upstream_save(model, optimizer, model_path, logger, config, is_best=is_best, prefix=prefix, **kwargs)
        if config["Architecture"]["model_type"] != "vqa":
            state = optimizer.state_dict()
            state[NAMES_KEY] = parameter_names(model)
            paddle.save(state, os.path.join(model_path, prefix) + ".pdopt")

    def load_model(config, model, optimizer=None, model_type="det"):
        checkpoints = config["Global"].get("checkpoints")
        if optimizer is None or model_type == "vqa" or not checkpoints:
            return upstream_load(config, model, optimizer, model_type)
        result = upstream_load(config, model, None, model_type)
        prefix = checkpoints[: -len(".pdparams")] if checkpoints.endswith(".pdparams") else checkpoints
        if os.path.exists(prefix + ".pdopt"):
            from dbnetpp.checkpoint import read_paddle_file  # refuses a pickle that asks for code

            optimizer.set_state_dict(rename_state(read_paddle_file(prefix + ".pdopt"), model))
        else:
            module.get_logger().warning(f"{prefix}.pdopt is not exists, params of optimizer is not loaded")
        return result

    save_model.__doc__, load_model.__doc__ = upstream_save.__doc__, upstream_load.__doc__
    module.save_model, module.load_model = save_model, load_model


def install(finder) -> List[str]:
    finder.after(MODULE, wrap)
    return [f"{MODULE}.save_model/load_model (optimizer names table)"]
