"""``Global.pretrained_model`` initialises the weights (full or backbone-only files); checkpoints win."""
import numpy as np
import paddle

from dbnetpp.config import load_config
from dbnetpp.dist import unwrap
from dbnetpp.engine.trainer import Trainer
from dbnetpp.modeling import build_model


def _weights_file(cfg, path, seed, backbone_only=False):
    paddle.seed(seed)
    state = build_model(cfg["Architecture"]).state_dict()
    if backbone_only:  # PaddleOCR's *_pretrained backbone files: names without the 'backbone.' prefix
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    paddle.save(state, f"{path}.pdparams")
    return {k: v.numpy() for k, v in state.items()}


def _trainer(cli, data, out, *extra):
    return Trainer(load_config(str(cli.config), cli.overrides(data, out, *extra)))


def test_full_and_backbone_only_pretrained_weights(cli, engine_data, tmp_path):
    cfg = load_config(str(cli.config))
    full = _weights_file(cfg, tmp_path / "full", seed=123)
    trainer = _trainer(cli, engine_data, tmp_path / "a", f"Global.pretrained_model={tmp_path / 'full'}",
                       "Global.max_steps=1", "Global.eval_at_end=false")
    got = {k: v.numpy() for k, v in unwrap(trainer.model).state_dict().items()}
    assert got.keys() == full.keys()
    for k in full:
        np.testing.assert_array_equal(got[k], full[k], err_msg=k)
    log = (tmp_path / "a" / "train.log").read_text()
    assert f"loaded {len(full)} of {len(full)} model entries" in log
    assert trainer.train()["steps"] == 1

    bb = _weights_file(cfg, tmp_path / "bb", seed=321, backbone_only=True)
    trainer = _trainer(cli, engine_data, tmp_path / "b", f"Global.pretrained_model={tmp_path / 'bb'}.pdparams")
    got = {k: v.numpy() for k, v in unwrap(trainer.model).state_dict().items()}
    for k, v in bb.items():
        np.testing.assert_array_equal(got[f"backbone.{k}"], v, err_msg=k)
    # neck and head keep their fresh initialisation (seeded by Global.seed), not the file's seed
    assert not np.array_equal(got["head.binarize.conv1.weight"], full["head.binarize.conv1.weight"])
    log = (tmp_path / "b" / "train.log").read_text()
    assert "backbone-only" in log and f"loaded {len(bb)} of {len(full)} model entries" in log


def test_checkpoints_take_precedence_over_pretrained(cli, engine_data, tmp_path):
    cfg = load_config(str(cli.config))
    _weights_file(cfg, tmp_path / "pre", seed=5)
    first = _trainer(cli, engine_data, tmp_path / "run", "Global.max_steps=2", "Global.eval_at_end=false")
    first.train()
    saved = paddle.load(str(tmp_path / "run" / "latest.pdparams"))
    second = _trainer(cli, engine_data, tmp_path / "run2", f"Global.pretrained_model={tmp_path / 'pre'}",
                      f"Global.checkpoints={tmp_path / 'run' / 'latest'}")
    got = unwrap(second.model).state_dict()
    for k, v in saved.items():
        np.testing.assert_array_equal(got[k].numpy(), v.numpy(), err_msg=k)
    assert second.state.global_step == 2 and second.state.iter_in_epoch == 2
    log = (tmp_path / "run2" / "train.log").read_text()
    assert "Global.pretrained_model" in log and "is not loaded" in log
