"""The ``Global`` section: every key's type, default, rule and one-line doc, in one place.

PaddleOCR's keys are all accepted so that its configs load (those that mean nothing for detection
are documented as ignored); ours follow.  PaddleOCR ignores unknown ``Global`` keys, so configs that
use ours stay loadable upstream.  Readers take values through :func:`global_value` or
:func:`with_defaults` (never ``g.get(key) or <default>``), and :func:`check_global_values` enforces
the rules; :func:`dbnetpp.config.validate_config` checks names and types with :data:`GLOBAL_KEYS`.
``None`` (an empty YAML value) always means "the default".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .errors import ConfigError

__all__ = ["GlobalKey", "GLOBAL_KEYS", "OWN_GLOBAL_KEYS", "global_value", "with_defaults", "check_global_values"]

Rule = Callable[[Any], Optional[str]]  # value -> None when valid, else what is wrong


@dataclass(frozen=True)
class GlobalKey:
    types: Tuple[type, ...]
    doc: str
    default: Any = None
    rule: Optional[Rule] = None


def _positive(v) -> Optional[str]:
    return None if v > 0 else f"must be > 0, got {v!r}"


def _unit_interval(v) -> Optional[str]:
    return None if 0 < v < 1 else f"must be in (0, 1), got {v!r}"


def _choice(*options: str) -> Rule:
    def rule(v) -> Optional[str]:
        return None if v in options else f"must be {' or '.join(repr(o) for o in options)}, got {v!r}"
    return rule


def _eval_step(v) -> Optional[str]:
    if isinstance(v, list):
        ok = len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v) and v[1] > 0
        return None if ok else f"must be [start_step, every_n_steps] with every_n_steps > 0, got {v!r}"
    return _positive(v)


def _seed(v) -> Optional[str]:
    return None if 0 <= v < 2 ** 63 else f"must be an integer in [0, 2**63), got {v!r}"


def _not_blank(v) -> Optional[str]:
    return None if str(v).strip() else "is empty: name the folder for checkpoints and logs"


def _demo_dataset(v) -> Optional[str]:
    keys = ("train", "test", "size")
    if set(v) != set(keys) or not all(isinstance(v[k], int) and not isinstance(v[k], bool) and v[k] > 0 for k in keys):
        return f"must be {{train: N, test: M, size: S}} with positive integers, got {v!r}"
    return None


_NUM = (int, float)
_IGNORED = "PaddleOCR key, accepted and ignored"

_PADDLEOCR_KEYS: Dict[str, GlobalKey] = {
    "use_gpu": GlobalKey((bool,), "train on GPU when the Paddle build has CUDA", False),
    "use_xpu": GlobalKey((bool,), _IGNORED),
    "use_npu": GlobalKey((bool,), _IGNORED),
    "use_mlu": GlobalKey((bool,), _IGNORED),
    "epoch_num": GlobalKey((int,), "number of epochs (required to train)", None, _positive),
    "log_smooth_window": GlobalKey((int,), "moving-average window of logged losses", 20, _positive),
    "print_batch_step": GlobalKey((int,), "log every N iterations", 10, _positive),
    "save_model_dir": GlobalKey((str,), "output directory", "./output/", _not_blank),
    "save_epoch_step": GlobalKey((int,), "save iter_epoch_N every N epochs", 1, _positive),
    "eval_batch_step": GlobalKey((list, int), "[start, every]: evaluate every N global steps after start", None,
                                 _eval_step),
    "cal_metric_during_train": GlobalKey((bool,), "PaddleOCR key, accepted and ignored for detection"),
    "pretrained_model": GlobalKey((str,), "weights to initialise from (backbone-only or full)"),
    "checkpoints": GlobalKey((str,), "checkpoint to resume from"),
    "save_inference_dir": GlobalKey((str,), "export directory"),
    "use_visualdl": GlobalKey((bool,), "write VisualDL scalars", False),
    "infer_img": GlobalKey((str,), "image or folder for inference tools"),
    "save_res_path": GlobalKey((str,), "where inference results are written"),
    "distributed": GlobalKey((bool,), "PaddleOCR key; set automatically"),
    "seed": GlobalKey((int,), "random seed", 1024, _seed),
    "use_amp": GlobalKey((bool,), "automatic mixed precision", False),
    "amp_level": GlobalKey((str,), "O1 or O2", "O2", _choice("O1", "O2")),
    "amp_dtype": GlobalKey((str,), "float16 or bfloat16", "float16", _choice("float16", "bfloat16")),
    "scale_loss": GlobalKey(_NUM, "initial loss scale for AMP", 1.0, _positive),
    "use_dynamic_loss_scaling": GlobalKey((bool,), "dynamic loss scaling for AMP", False),
    "amp_custom_black_list": GlobalKey((list,), "ops kept in float32 under AMP", []),
    "amp_custom_white_list": GlobalKey((list,), "ops run in low precision under AMP", []),
    "to_static": GlobalKey((bool,), "train the model's forward and backward as a static graph "
                           "(paddle.jit.to_static, AST mode); checkpoints are unchanged", False),
    "d2s_train_image_shape": GlobalKey((list,), _IGNORED),
    "debug": GlobalKey((bool,), _IGNORED),
    "model_name": GlobalKey((str,), "model name written to the export's inference.yml (PaddleX / PaddleOCR 3.x load "
                            "a registered detection name, e.g. PP-OCRv3_mobile_det; default: chosen from the "
                            "backbone)"),
    "use_ema": GlobalKey((bool,), "evaluate and keep as best_accuracy an exponential moving average of the "
                         "weights (dbnetpp.engine.ema)", False),
    "ema_decay": GlobalKey(_NUM, "decay of the weight average", 0.9998, _unit_interval),
    "ema_decay_type": GlobalKey((str,), "how the decay warms up: threshold, exponential or normal", "threshold",
                                _choice("threshold", "exponential", "normal")),
    "character_dict_path": GlobalKey((str,), _IGNORED),
    "max_text_length": GlobalKey((int,), _IGNORED),
    "use_space_char": GlobalKey((bool,), _IGNORED),
    "uniform_output_enabled": GlobalKey((bool,), _IGNORED),
    "profiler_options": GlobalKey((str,), _IGNORED),
}

_OWN_KEYS: Dict[str, GlobalKey] = {
    "bad_sample_policy": GlobalKey((str,), "'fail' or 'skip': what a sample that fails to load does", "fail",
                                   _choice("fail", "skip")),
    "max_bad_steps": GlobalKey((int,), "stop after this many consecutive bad steps (non-finite loss, or a batch "
                               "left empty by skipped samples)", 5, _positive),
    "deterministic": GlobalKey((bool,), "deterministic kernels and single-threaded loading for exact resume", False),
    "max_steps": GlobalKey((int,), "stop after this many global steps (for smoke runs)", None, _positive),
    "log_dir": GlobalKey((str,), "VisualDL directory (default <save_model_dir>/vdl)"),
    "eval_at_end": GlobalKey((bool,), "evaluate once more after the last epoch", True),
    "allow_partial_resume": GlobalKey((bool,), "resume from Global.checkpoints even if entries are missing or "
                                      "unexpected, or the .pdopt / .states file is absent", False),
    "overwrite": GlobalKey((bool,), "train into a save_model_dir that holds a finished run", False),
    "reference_cards": GlobalKey((int,), "cards (processes) the recipe's batch and learning rate were set for; "
                                 "scripts/train.sh --scale-lr scales the rate to the cards used", None, _positive),
    "demo_dataset": GlobalKey((dict,), "{train: N, test: M, size: S}: the synthetic dataset scripts/train.sh "
                              "generates for this config when no data is given (tools/demo.py)", None,
                              _demo_dataset),
}

GLOBAL_KEYS: Dict[str, GlobalKey] = {**_PADDLEOCR_KEYS, **_OWN_KEYS}
#: the keys PaddleOCR does not have (``ppocr_patches.config.paddleocr_config`` drops them)
OWN_GLOBAL_KEYS = frozenset(_OWN_KEYS)


def global_value(g: Optional[Mapping[str, Any]], key: str) -> Any:
    """``Global.<key>`` of ``g``, or its default when absent or empty."""
    spec = GLOBAL_KEYS[key]
    value = (g or {}).get(key)
    return spec.default if value is None else value


def with_defaults(g: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of ``g`` with every key that has a default filled in (``None`` values replaced)."""
    out = {k: spec.default for k, spec in GLOBAL_KEYS.items() if spec.default is not None}
    out.update({k: v for k, v in (g or {}).items() if v is not None})
    return out


def check_global_values(g: Optional[Mapping[str, Any]], file: Optional[str] = None) -> None:
    """Apply each key's rule (types are checked first by :func:`dbnetpp.config.validate_config`)."""
    for key, value in (g or {}).items():
        spec = GLOBAL_KEYS.get(key)
        if value is None or spec is None or spec.rule is None:
            continue
        problem = spec.rule(value)
        if problem:
            raise ConfigError(problem, key=f"Global.{key}", file=file)
