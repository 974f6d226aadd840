"""Print a detection model's size: parameter counts and FLOPs, or its state-dict listing.

    python tools/model_info.py -c configs/det/det_mv3_db.yml [--input 640x640] [-o KEY=VALUE ...]
    python tools/model_info.py -c configs/det/det_mv3_db.yml --state-dict

Default output: human-readable lines, then one JSON line
``{"params": trainable, "bn_stats": ..., "flops": ..., "input": [1, 3, H, W], ...}``.
FLOPs follow ``paddle.flops``' rules (eval mode, conv multiply-accumulates, BN/avg-pool
element ops, functional ops not counted; see ``dbnetpp.modeling.complexity``).

``--state-dict`` prints instead one line per state-dict entry, ``name<TAB>shape as JSON
list<TAB>dtype``, the format of PaddleOCR reference listings (compare them with ``diff``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys

from dbnetpp.cli import add_config_args, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.errors import ConfigError
from dbnetpp.modeling import build_model
from dbnetpp.modeling.complexity import count_flops, count_params


MAX_SIDE = 8192


def parse_size(text: str):
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--input must look like HxW (e.g. 640x640), got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"--input {h}x{w}: height and width must be positive multiples of 32")
    if max(h, w) > MAX_SIDE:  # the FLOPs are counted by a forward pass, whose activations would not fit
        raise argparse.ArgumentTypeError(f"--input {h}x{w}: at most {MAX_SIDE} per side")
    return h, w


def state_dict_lines(model):
    for name, value in model.state_dict().items():
        dtype = str(value.dtype).replace("paddle.", "")
        yield f"{name}\t{json.dumps([int(d) for d in value.shape])}\t{dtype}"


def main(argv=None) -> int:
    parser = tool_parser(__doc__)
    add_config_args(parser, example="Architecture.Backbone.scale=1.0")
    parser.add_argument("--input", type=parse_size, default=(640, 640), help="input HxW for FLOPs (default 640x640)")
    parser.add_argument("--state-dict", action="store_true", help="print the state-dict listing instead")
    args = parser.parse_args(argv)
    return run_tool("model_info", lambda: report(args))


def report(args: argparse.Namespace) -> int:
    # Only the Architecture matters here, so the other sections are not validated.
    cfg = load_config(args.config, args.opt, validate=False)
    if not isinstance(cfg.get("Architecture"), dict):
        raise ConfigError("missing section 'Architecture'", key="Architecture", file=args.config)
    try:
        model = build_model(cfg["Architecture"])
    except ConfigError as exc:
        raise exc.with_context(file=args.config) from None

    if args.state_dict:
        for line in state_dict_lines(model):
            print(line)
        return 0

    h, w = args.input
    params = count_params(model)
    flops = count_flops(model, [1, 3, h, w])
    entries = len(model.state_dict())
    arch = cfg["Architecture"]
    print(f"config: {args.config}")
    print(f"model: {arch['Backbone']['name']} -> {(arch.get('Neck') or {}).get('name', '(no neck)')} -> "
          f"{arch['Head']['name']}; backbone out_channels {model.backbone.out_channels}")
    print(f"trainable parameters: {params['trainable']:,}")
    print(f"BN running-stat values (not trainable): {params['non_trainable']:,}")
    print(f"state-dict entries: {entries} ({params['trainable'] + params['non_trainable']:,} values)")
    print(f"FLOPs at 1x3x{h}x{w}, eval mode (paddle.flops rules: conv MACs, BN 2/elem, avg-pool; "
          f"functional ops not counted): {flops:,}")
    print(json.dumps({"params": params["trainable"], "bn_stats": params["non_trainable"], "flops": flops,
                      "input": [1, 3, h, w], "state_dict_entries": entries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
