"""dbnetpp.checkpoint: pretrained weights (full, backbone-only, PaddleClas names), resume, atomic save."""
from __future__ import annotations

import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import (checkpoint_file, checkpoint_prefix, load_checkpoint, load_params, load_pretrained,
                                save_checkpoint)
from dbnetpp.errors import CheckpointError
from dbnetpp.modeling import build_model

ARCH = {"Backbone": {"name": "MobileNetV3", "scale": 0.35, "model_name": "small"},
        "Neck": {"name": "DBFPN", "out_channels": 32}, "Head": {"name": "DBHead", "k": 50}}


def _model(seed, arch=ARCH):
    paddle.seed(seed)
    return build_model(arch)


def _numpy_state(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _assert_same(state, model, keys=None):
    current = model.state_dict()
    for k in keys if keys is not None else state:
        assert np.array_equal(current[k].numpy(), state[k]), k


def _logs():
    lines = []
    return lines, lines.append


def test_checkpoint_path_with_or_without_pdparams():
    """A checkpoint path is given as PaddleOCR accepts it, ``out/latest`` or ``out/latest.pdparams``."""
    for given in ("out/latest", "out/latest.pdparams", Path("out/latest.pdparams")):
        assert checkpoint_prefix(given) == "out/latest"
        assert checkpoint_file(given) == "out/latest.pdparams"
        assert checkpoint_file(given, ".pdopt") == "out/latest.pdopt"
        assert checkpoint_file(given, ".states") == "out/latest.states"
    assert checkpoint_prefix("out/latest.pdopt") == "out/latest.pdopt"  # only .pdparams is dropped


def test_full_weights_round_trip_with_and_without_suffix(tmp_path):
    src = _model(1)
    paddle.save(src.state_dict(), str(tmp_path / "best.pdparams"))
    for path in (tmp_path / "best", tmp_path / "best.pdparams"):
        dst = _model(2)
        lines, log = _logs()
        report = load_pretrained(dst, str(path), log=log)
        assert len(report.loaded) == report.total == len(src.state_dict())
        assert not (report.missing or report.unexpected or report.mismatched)
        _assert_same(_numpy_state(src), dst)
        assert len(lines) == 1 and "full model" in lines[0] and "0 missing" in lines[0]


def test_backbone_only_weights_without_prefix(tmp_path):
    """PaddleOCR-2.5-style backbone file: names like 'conv.conv.weight' (no 'backbone.')."""
    src = _model(1)
    backbone = {k[len("backbone."):]: v for k, v in src.state_dict().items() if k.startswith("backbone.")}
    backbone["out.weight"] = paddle.ones([4, 2])  # classifier left over from ImageNet training
    paddle.save(backbone, str(tmp_path / "MobileNetV3_small_x0_35_pretrained.pdparams"))
    dst = _model(2)
    before = _numpy_state(dst)
    lines, log = _logs()
    report = load_pretrained(dst, str(tmp_path / "MobileNetV3_small_x0_35_pretrained"), log=log)
    assert "backbone-only" in report.layout
    assert len(report.loaded) == len(backbone) - 1 and report.unexpected == ["out.weight"]
    assert report.missing and all(k.startswith(("neck.", "head.")) for k in report.missing)
    _assert_same(_numpy_state(src), dst, [k for k in before if k.startswith("backbone.")])
    _assert_same(before, dst, [k for k in before if not k.startswith("backbone.")])
    table = lines[0]
    assert "neck.* (" in table and "head.* (" in table and "out.weight" in table and "[4, 2]" in table


def test_paddleocr_named_backbone_file(tmp_path):
    """Backbone weights stored with PaddleOCR's full names ('backbone.*') load as they are."""
    src = _model(1)
    paddle.save({k: v for k, v in src.state_dict().items() if k.startswith("backbone.")}, str(tmp_path / "bb.pdparams"))
    dst = _model(2)
    report = load_pretrained(dst, str(tmp_path / "bb"), log=lambda s: None)
    assert report.layout.startswith("full model")
    assert report.loaded == [k for k in src.state_dict() if k.startswith("backbone.")]
    _assert_same(_numpy_state(src), dst, report.loaded)


MV3_LARGE = {**ARCH, "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "large"}}


@pytest.mark.parametrize("arch,style", [
    (MV3_LARGE, "old"),
    (MV3_LARGE, "new"),
    ({**ARCH, "Backbone": {"name": "ResNet_vd", "layers": 18}}, "new"),
])
def test_paddleclas_imagenet_names(tmp_path, arch, style):
    """PaddleClas classification names (MobileNetV3: conv1/conv{i} or conv/blocks.{i}, and
    last_second_conv; ResNet-vd: stem/blocks) are converted; the classifier is reported as unexpected."""
    src = _model(1, arch)
    bb = src.backbone
    if arch["Backbone"]["name"] == "MobileNetV3":
        blocks = bb.block_names()
        new = style == "new"
        rename = {"conv": "conv" if new else "conv1", blocks[-1]: "last_second_conv",
                  **{b: f"blocks.{i}" if new else f"conv{i + 2}" for i, b in enumerate(blocks[:-1])}}
        classifier = {"last_conv.weight": paddle.ones([8, 480, 1, 1]), ("fc" if new else "out") + ".weight":
                      paddle.ones([8, 10]), ("fc" if new else "out") + ".bias": paddle.ones([10])}
    else:
        rename = {f"conv1_{i + 1}": f"stem.{i}" for i in range(3)}
        rename.update({b: f"blocks.{i}" for i, b in enumerate(bb._block_ids)})
        classifier = {"fc.weight": paddle.ones([512, 10]), "fc.bias": paddle.ones([10])}
    foreign = {}
    for name, value in bb.state_dict().items():
        head = next(p for p in sorted(rename, key=len, reverse=True) if name == p or name.startswith(p + "."))
        new = rename[head] + name[len(head):]
        foreign[new.replace("._conv.", ".conv.").replace("._batch_norm.", ".bn.")] = value
    foreign.update(classifier)
    paddle.save(foreign, str(tmp_path / "imagenet.pdparams"))
    dst = _model(2, arch)
    report = load_pretrained(dst, str(tmp_path / "imagenet.pdparams"), log=lambda s: None)
    assert report.layout.startswith("PaddleClas")
    assert sorted(report.unexpected) == sorted(classifier)
    assert len(report.loaded) == len(bb.state_dict()) and not report.mismatched
    _assert_same({f"backbone.{k}": v.numpy() for k, v in bb.state_dict().items()}, dst)


def test_mismatch_table_lists_every_problem(tmp_path):
    src = _model(1)
    state = dict(src.state_dict())
    state["head.binarize.conv1.weight"] = paddle.ones([3, 32, 3, 3])  # wrong shape
    del state["neck.in2_conv.weight"]  # missing
    state["neck.extra.weight"] = paddle.ones([2])  # unexpected
    paddle.save(state, str(tmp_path / "w.pdparams"))
    dst = _model(2)
    before = dst.state_dict()["head.binarize.conv1.weight"].numpy().copy()
    lines, log = _logs()
    report = load_pretrained(dst, str(tmp_path / "w"), log=log)
    assert report.missing == ["neck.in2_conv.weight"]
    assert report.unexpected == ["neck.extra.weight"]
    assert report.mismatched == [("head.binarize.conv1.weight", [8, 32, 3, 3], [3, 32, 3, 3], "head.binarize.conv1.weight")]
    assert np.array_equal(dst.state_dict()["head.binarize.conv1.weight"].numpy(), before)  # not overwritten
    table = lines[0].splitlines()
    assert "1 missing, 1 unexpected, 1 shape-mismatched" in table[1]
    rows = {line.split()[0]: line for line in table[4:]}
    assert "neck.in2_conv.weight" in rows["missing"] and "[8, 32, 3, 3]" in rows["missing"] + rows["mismatched"]
    assert "[3, 32, 3, 3]" in rows["mismatched"] and "neck.extra.weight" in rows["unexpected"]


def test_nothing_matches_is_an_error(tmp_path):
    paddle.save({"fc_0.w_0": paddle.ones([3]), "conv2d_1.w_0": paddle.ones([2])}, str(tmp_path / "other.pdparams"))
    with pytest.raises(CheckpointError, match=r"other\.pdparams: nothing in the file matches"):
        load_pretrained(_model(1), str(tmp_path / "other"), log=lambda s: None)
    # same names, every shape different (e.g. weights of another width multiplier)
    big = _model(1, {**ARCH, "Backbone": {"name": "MobileNetV3", "scale": 1.0, "model_name": "small"},
                     "Neck": {"name": "DBFPN", "out_channels": 64}})
    only_backbone = {k: v for k, v in big.state_dict().items()
                     if k.startswith("backbone.stage3") and "bn" not in k}
    paddle.save(only_backbone, str(tmp_path / "x1.pdparams"))
    with pytest.raises(CheckpointError, match="other shapes"):
        load_pretrained(_model(2), str(tmp_path / "x1"), log=lambda s: None)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all" * 10, "truncate"])
def test_corrupt_file_error_names_the_file(tmp_path, content):
    path = tmp_path / "bad.pdparams"
    if content == "truncate":
        paddle.save(_model(1).state_dict(), str(path))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.pdparams: cannot read"):
        load_params(str(tmp_path / "bad"))
    with pytest.raises(CheckpointError, match=r"bad\.pdparams"):
        load_checkpoint(str(tmp_path / "bad"), _model(1), log=lambda s: None)


def test_missing_file_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pdparams: file not found"):
        load_pretrained(_model(1), str(tmp_path / "nope"), log=lambda s: None)


def test_checkpoint_round_trip_with_optimizer_and_states(tmp_path):
    model = _model(1)
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    model.train()
    loss = model(paddle.rand([1, 3, 64, 64]))["maps"].mean()
    loss.backward()
    opt.step()
    states = {"epoch": 4, "global_step": 123, "best_model_dict": {"hmean": 0.5}}
    save_checkpoint(str(tmp_path / "out" / "latest"), model, opt, states)
    assert sorted(os.listdir(tmp_path / "out")) == ["latest.pdopt", "latest.pdparams", "latest.states"]
    with open(tmp_path / "out" / "latest.states", "rb") as f:  # plain pickle, as PaddleOCR writes it
        saved = pickle.load(f)
    assert {k: v for k, v in saved.items() if k != "dbnetpp_save@@"} == states

    model2 = _model(2)
    opt2 = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model2.parameters())
    got = load_checkpoint(str(tmp_path / "out" / "latest.pdparams"), model2, opt2, log=lambda s: None)
    assert got == {**states, "start_epoch": 5}
    _assert_same(_numpy_state(model), model2)
    # model2's parameters have other Paddle names (conv2d_N.w_0 counts up in one process): the
    # optimizer state is renamed to them, so the next step restores every moment
    saved_opt = opt.state_dict()
    names1 = {k: v.name for k, v in model.state_dict().items()}
    names2 = {k: v.name for k, v in model2.state_dict().items()}
    assert names1 != names2
    model2.train()
    model2(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    opt2.step()  # would raise "Optimizer set error ... should in state dict" without the renaming
    key = "head.binarize.conv1.weight"
    m1_saved = saved_opt[names1[key] + "_moment1_0"].numpy()
    m1_now = opt2.state_dict()[names2[key] + "_moment1_0"].numpy()
    grad = model2.state_dict()[key].grad.numpy()
    np.testing.assert_allclose(m1_now, 0.9 * m1_saved + 0.1 * grad, rtol=1e-5, atol=1e-8)


def test_checkpoint_without_optimizer_file_or_states(tmp_path):
    model = _model(1)
    save_checkpoint(str(tmp_path / "m"), model)
    assert os.listdir(tmp_path) == ["m.pdparams"]
    lines, log = _logs()
    opt = paddle.optimizer.Adam(parameters=model.parameters())
    # a resume would silently restart at step 0 / with a fresh optimizer: an error naming the file ...
    with pytest.raises(CheckpointError, match=r"m\.states and .*m\.pdopt do not exist: the resume would restart "
                                              r"at epoch 1, step 0"):
        load_checkpoint(str(tmp_path / "m"), _model(2), opt, log=log)
    save_checkpoint(str(tmp_path / "s"), model, states={"epoch": 1})
    with pytest.raises(CheckpointError, match=r"s\.pdopt does not exist: the resume would restart the optimizer"):
        load_checkpoint(str(tmp_path / "s"), _model(2), opt, log=log)
    assert load_checkpoint(str(tmp_path / "s"), _model(2), log=log)["epoch"] == 1  # no optimizer to restore
    # ... unless asked for (Global.allow_partial_resume)
    assert load_checkpoint(str(tmp_path / "m"), _model(2), opt, log=log, partial=True) == {}
    assert any("m.pdopt does not exist" in line for line in lines)
    assert any("m.states does not exist: training counters start from zero" in line for line in lines)


def test_resume_into_another_architecture_is_an_error_unless_partial(tmp_path):
    """A DBNet++ checkpoint resumed under a DBNet config (and the reverse) would drop or randomise the ASF."""
    dbpp = _model(1, {**ARCH, "Neck": {"name": "DBFPN", "out_channels": 32, "use_asf": True}})
    save_checkpoint(str(tmp_path / "pp"), dbpp, states={"epoch": 1})
    with pytest.raises(CheckpointError, match=r"pp\.pdparams does not fit this model: entries 5 unexpected "
                                              r"\(neck\.asf\.conv\.weight"):
        load_checkpoint(str(tmp_path / "pp"), _model(2), log=lambda s: None)
    save_checkpoint(str(tmp_path / "db"), _model(1), states={"epoch": 1})
    with pytest.raises(CheckpointError, match=r"entries 5 missing \(neck\.asf\..*Global\.allow_partial_resume"):
        load_checkpoint(str(tmp_path / "db"), dbpp, log=lambda s: None)
    assert load_checkpoint(str(tmp_path / "pp"), _model(2), log=lambda s: None, partial=True)["epoch"] == 1


def _full_checkpoint(prefix, seed=1, step=1):
    model = _model(seed)
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    save_checkpoint(str(prefix), model, opt, {"epoch": step, "global_step": step})
    return model


@pytest.mark.smoke
def test_states_record_the_files_of_the_same_save(tmp_path):
    import hashlib

    _full_checkpoint(tmp_path / "ck")
    with open(tmp_path / "ck.states", "rb") as f:
        record = pickle.load(f)["dbnetpp_save@@"]
    assert sorted(record) == ["pdopt", "pdparams"]
    for ext, entry in record.items():
        data = (tmp_path / f"ck.{ext}").read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("torn", [("pdparams",), ("pdparams", "pdopt")])
def test_files_from_two_saves_are_refused(tmp_path, torn):
    """What a crash between the renames leaves: the second save's first file(s), the first save's rest."""
    _full_checkpoint(tmp_path / "a", seed=1, step=1)
    _full_checkpoint(tmp_path / "second" / "a", seed=2, step=2)
    for ext in torn:
        shutil.copy(tmp_path / "second" / f"a.{ext}", tmp_path / f"a.{ext}")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(str(tmp_path / "a"), _model(3), log=lambda s: None)
    named = ", ".join(str(tmp_path / f"a.{ext}") for ext in torn)
    assert f"{named}: size or SHA-256 differs from the record in {tmp_path / 'a.states'}" in str(exc.value)
    assert "different saves" in str(exc.value)


def test_a_whole_set_replaced_by_paddleocr_files_loads(tmp_path):
    """PaddleOCR saving into the same folder writes all three files, its .states without our record."""
    _full_checkpoint(tmp_path / "a", seed=1, step=1)
    model = _model(2)
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    opt.step()
    paddle.save(model.state_dict(), str(tmp_path / "a.pdparams"))
    paddle.save(opt.state_dict(), str(tmp_path / "a.pdopt"))
    with open(tmp_path / "a.states", "wb") as f:
        pickle.dump({"epoch": 7, "best_model_dict": {}}, f, protocol=2)
    loaded = _model(3)
    got = load_checkpoint(str(tmp_path / "a"), loaded, log=lambda s: None)
    assert got == {"epoch": 7, "best_model_dict": {}, "start_epoch": 8}
    _assert_same(_numpy_state(model), loaded)


def test_damaged_weights_are_refused_also_as_pretrained_weights(tmp_path):
    _full_checkpoint(tmp_path / "ck")
    blob = bytearray((tmp_path / "ck.pdparams").read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit inside the tensor data: paddle.load reads it without complaint
    (tmp_path / "ck.pdparams").write_bytes(bytes(blob))
    assert load_params(str(tmp_path / "ck"))
    for load in (lambda m: load_checkpoint(str(tmp_path / "ck"), m, log=lambda s: None),
                 lambda m: load_pretrained(m, str(tmp_path / "ck.pdparams"), log=lambda s: None)):
        with pytest.raises(CheckpointError, match=r"ck\.pdparams: size or SHA-256 differs"):
            load(_model(2))


def test_save_without_optimizer_removes_the_older_optimizer_file(tmp_path):
    _full_checkpoint(tmp_path / "ck")
    save_checkpoint(str(tmp_path / "ck"), _model(2), states={"epoch": 3})
    assert sorted(os.listdir(tmp_path)) == ["ck.pdparams", "ck.states"]
    assert load_checkpoint(str(tmp_path / "ck"), _model(3), log=lambda s: None)["epoch"] == 3


def test_leftover_optimizer_file_of_another_save_is_refused(tmp_path):
    _full_checkpoint(tmp_path / "old")
    save_checkpoint(str(tmp_path / "ck"), _model(2), states={"epoch": 3})
    shutil.copy(tmp_path / "old.pdopt", tmp_path / "ck.pdopt")
    with pytest.raises(CheckpointError, match=r"ck\.pdopt: not written by the save recorded in"):
        load_checkpoint(str(tmp_path / "ck"), _model(3), log=lambda s: None)


def test_corrupt_states_file(tmp_path):
    save_checkpoint(str(tmp_path / "m"), _model(1), states={"epoch": 1})
    (tmp_path / "m.states").write_bytes(b"\x80\x02}q")
    with pytest.raises(CheckpointError, match=r"m\.states: cannot read"):
        load_checkpoint(str(tmp_path / "m"), _model(1), log=lambda s: None)


def _snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_save_into_read_only_dir_keeps_old_files(tmp_path):
    euid = os.geteuid()
    # root ignores directory permissions: the failing call then runs with an unprivileged effective
    # uid, in a folder it can reach (pytest's own tmp_path is private to root)
    base = Path(tempfile.mkdtemp(prefix="dbnetpp-ro-")) if euid == 0 else tmp_path
    folder = base / "ro"
    try:
        base.chmod(0o755)
        folder.mkdir()
        save_checkpoint(str(folder / "latest"), _model(1), states={"epoch": 1})
        old = _snapshot(folder)
        folder.chmod(0o555)
        try:
            if euid == 0:
                os.seteuid(65534)
            with pytest.raises(CheckpointError, match=r"latest\.pdparams") as info:
                save_checkpoint(str(folder / "latest"), _model(2), states={"epoch": 2})
        finally:
            if euid == 0:
                os.seteuid(0)
            folder.chmod(0o755)
        assert "ermission denied" in str(info.value)
        assert _snapshot(folder) == old
    finally:
        if euid == 0:
            shutil.rmtree(base)


def test_save_on_full_disk_keeps_old_files(tmp_path):
    """A write that fails half-way (here: the file-size limit, like ENOSPC) leaves the old files."""
    save_checkpoint(str(tmp_path / "latest"), _model(1), states={"epoch": 1})
    old = _snapshot(tmp_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(CheckpointError, match=r"cannot save checkpoint .*latest\.pdparams"):
            save_checkpoint(str(tmp_path / "latest"), _model(2), states={"epoch": 2})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert _snapshot(tmp_path) == old  # no temporary files left either


def test_save_error_when_directory_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="cannot save checkpoint"):
        save_checkpoint(str(tmp_path / "file" / "sub" / "latest"), _model(1))


def test_paddleocr_written_optimizer_file(tmp_path):
    """A .pdopt without our name table (PaddleOCR's, constant learning rate) is matched to the
    model's parameters by layer creation order, and a scheduler keeps its own state."""
    model = _model(1)
    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())  # float lr: no LR_Scheduler
    model.train()
    model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    opt.step()
    paddle.save(model.state_dict(), str(tmp_path / "ppocr.pdparams"))
    paddle.save(opt.state_dict(), str(tmp_path / "ppocr.pdopt"))
    with open(tmp_path / "ppocr.states", "wb") as f:  # PaddleOCR's save_model writes all three files
        pickle.dump({"epoch": 1, "best_model_dict": {}}, f, protocol=2)
    assert "LR_Scheduler" not in opt.state_dict()

    other = _model(2)  # built later in this process: every Paddle parameter name differs
    scheduler = paddle.optimizer.lr.PiecewiseDecay([10], [1e-3, 1e-4])
    opt2 = paddle.optimizer.Adam(learning_rate=scheduler, parameters=other.parameters())
    lines, log = _logs()
    load_checkpoint(str(tmp_path / "ppocr"), other, opt2, log=log)
    assert not [line for line in lines if "WARNING" in line]
    assert [line for line in lines if "no learning-rate schedule" in line]
    other.train()
    other(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    opt2.step()  # the renamed accumulators are consumed (Paddle raises on a missing one)
    key = "neck.p2_conv.weight"
    old_name, new_name = model.state_dict()[key].name, other.state_dict()[key].name
    assert old_name != new_name
    m2_old = opt.state_dict()[old_name + "_moment2_0"].numpy()
    grad = other.state_dict()[key].grad.numpy()
    np.testing.assert_allclose(opt2.state_dict()[new_name + "_moment2_0"].numpy(),
                               0.999 * m2_old + 0.001 * grad * grad, rtol=1e-5, atol=1e-12)


def test_optimizer_file_of_another_architecture_is_reported(tmp_path):
    model = _model(1)
    opt = paddle.optimizer.Adam(parameters=model.parameters())
    model.train()
    model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    opt.step()
    paddle.save(model.state_dict(), str(tmp_path / "a.pdparams"))
    paddle.save(opt.state_dict(), str(tmp_path / "a.pdopt"))
    other = _model(2, {**ARCH, "Neck": {"name": "DBFPN", "out_channels": 32, "use_asf": True}})
    with pytest.raises(CheckpointError, match=r"a\.pdopt: the optimizer state .* does not match"):
        load_checkpoint(str(tmp_path / "a"), other, paddle.optimizer.Adam(parameters=other.parameters()),
                        log=lambda s: None, partial=True)  # even when the weights may load partially


_PADDLEOCR_WAY = """
import sys, paddle
from dbnetpp.checkpoint import save_checkpoint
from dbnetpp.modeling import build_model
paddle.seed(0)
model = build_model({"Backbone": {"name": "MobileNetV3", "scale": 0.35, "model_name": "small"},
                     "Neck": {"name": "DBFPN", "out_channels": 32}, "Head": {"name": "DBHead"}})
opt = paddle.optimizer.Adam(parameters=model.parameters())
if sys.argv[1] == "load":
    opt.set_state_dict(paddle.load(sys.argv[2] + ".pdopt"))
model.train()
model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
opt.step()
if sys.argv[1] == "save":
    save_checkpoint(sys.argv[2], model, opt)
print(float(opt.state_dict()[model.state_dict()["head.thresh.conv3.weight"].name + "_beta1_pow_acc_0"]))
"""


def test_our_optimizer_file_loads_the_paddleocr_way(tmp_path):
    """PaddleOCR restores a .pdopt with plain ``optimizer.set_state_dict(paddle.load(...))`` in a
    fresh process; the extra name table in our file does not disturb that."""
    script = tmp_path / "step.py"
    script.write_text(_PADDLEOCR_WAY)
    outs = []
    for mode in ("save", "load"):
        proc = subprocess.run([sys.executable, str(script), mode, str(tmp_path / "latest")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(float(proc.stdout.strip().splitlines()[-1]))
    assert outs == [pytest.approx(0.9 ** 2), pytest.approx(0.9 ** 3)]  # the second run continued the first


def _trained_optimizer_files(tmp_path, name, make_optimizer, steps=3):
    """``name.pdparams`` + ``name.pdopt`` after ``steps`` updates, no ``.states`` (PaddleOCR's ``latest``)."""
    model = _model(1)
    opt = make_optimizer(model)
    model.train()
    for _ in range(steps):
        model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
        opt.step()
        opt.clear_grad()
    paddle.save(model.state_dict(), str(tmp_path / f"{name}.pdparams"))
    paddle.save(opt.state_dict(), str(tmp_path / f"{name}.pdopt"))
    return opt


@pytest.mark.parametrize("kind", ["schedule", "adam_constant_rate", "momentum_constant_rate"])
def test_paddleocr_latest_without_states_resumes_at_the_step_it_can_recover(tmp_path, kind):
    """PaddleOCR writes no .states for 'latest': the position comes from the schedule's step count, else from
    Adam's bias-correction powers; with neither (Momentum at a constant rate) the optimizer state is still
    restored and a warning says the run counts from step 0, as PaddleOCR itself does."""
    makers = {
        "schedule": lambda m: paddle.optimizer.Adam(learning_rate=paddle.optimizer.lr.CosineAnnealingDecay(1e-3, 10),
                                                     parameters=m.parameters()),
        "adam_constant_rate": lambda m: paddle.optimizer.Adam(learning_rate=1e-3, parameters=m.parameters()),
        "momentum_constant_rate": lambda m: paddle.optimizer.Momentum(learning_rate=1e-3, parameters=m.parameters()),
    }
    saved = _trained_optimizer_files(tmp_path, "latest", makers[kind], steps=3)
    if kind == "schedule":  # the scheduler was never stepped here: give it the 3 steps the loop would have
        saved._learning_rate.last_epoch = 3
        paddle.save(saved.state_dict(), str(tmp_path / "latest.pdopt"))
    other = _model(2)
    lines, log = _logs()
    states = load_checkpoint(str(tmp_path / "latest"), other, makers[kind](other), log=log)
    text = "\n".join(lines)
    if kind == "momentum_constant_rate":
        assert states == {}
        assert "WARNING" in text and "holds no step count" in text and "counts from epoch 1, step 0" in text
    else:
        assert states == {"global_step": 3, "lr_last_epoch": 3}
        source = "the learning-rate schedule's step count" if kind == "schedule" else "Adam's step counter"
        assert f"latest.states does not exist (PaddleOCR writes it for best_accuracy only): resuming at global step " \
               f"3, taken from {source}" in text
        assert "Not recoverable: the best evaluation so far" in text
