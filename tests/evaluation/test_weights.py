"""Which weights an evaluation loads (PaddleOCR semantics) and that they must cover the whole model."""
import paddle
import pytest

from dbnetpp.checkpoint import load_params
from dbnetpp.config import load_config
from dbnetpp.errors import CheckpointError, ConfigError
from dbnetpp.evaluation import load_eval_weights, resolve_weights
from dbnetpp.modeling import build_model


def test_checkpoints_win_and_suffix_is_optional(eval_case):
    prefix = str(eval_case.checkpoint)
    cfg = {"Global": {"checkpoints": prefix, "pretrained_model": "/nowhere/x"}}
    assert resolve_weights(cfg) == (prefix, "Global.checkpoints")
    cfg = {"Global": {"checkpoints": None, "pretrained_model": prefix + ".pdparams"}}
    assert resolve_weights(cfg) == (prefix + ".pdparams", "Global.pretrained_model")


def test_missing_or_absent_weights_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"best_accuracy\.pdparams: file not found"):
        resolve_weights({"Global": {"checkpoints": str(tmp_path / "best_accuracy")}})
    with pytest.raises(ConfigError, match="Global.checkpoints=PATH"):
        resolve_weights({"Global": {"checkpoints": None}, "__file__": "c.yml"})


def test_partial_weights_are_rejected(eval_case, eval_case_module, tmp_path):
    cfg = load_config(str(eval_case_module.CONFIG))
    model = build_model(cfg["Architecture"])
    params = load_params(str(eval_case.checkpoint))
    backbone = {k: v for k, v in params.items() if k.startswith("backbone.")}
    paddle.save(backbone, str(tmp_path / "backbone.pdparams"))
    with pytest.raises(CheckpointError, match="does not hold the whole model"):
        load_eval_weights(model, str(tmp_path / "backbone"), log=lambda m: None)
    logged = []
    report = load_eval_weights(model, str(eval_case.checkpoint), log=logged.append)
    assert not report.missing and len(report.loaded) == len(model.state_dict())
    assert "0 missing" in logged[0]


def test_weights_of_another_architecture_are_rejected(eval_case, eval_case_module, tmp_path):
    """A file with entries the model has no place for (DBNet++'s neck.asf.* under a DBNet config) is an error:
    evaluating or exporting would silently drop them."""
    cfg = load_config(str(eval_case_module.CONFIG))
    model = build_model(cfg["Architecture"])
    params = dict(load_params(str(eval_case.checkpoint)))
    params["neck.asf.conv.weight"] = paddle.zeros([4, 4, 3, 3])
    paddle.save(params, str(tmp_path / "extra.pdparams"))
    with pytest.raises(CheckpointError, match=r"1 entries of the file have no place in this model \(neck\.asf\.conv"):
        load_eval_weights(model, str(tmp_path / "extra"), log=lambda m: None)


def test_threshold_branch_may_be_absent(eval_case, eval_case_module, tmp_path):
    """Inference exports hold no threshold branch (training-only): evaluation accepts weights without it."""
    cfg = load_config(str(eval_case_module.CONFIG))
    model = build_model(cfg["Architecture"])
    params = {k: v for k, v in load_params(str(eval_case.checkpoint)).items() if not k.startswith("head.thresh.")}
    paddle.save(params, str(tmp_path / "nothresh.pdparams"))
    report = load_eval_weights(model, str(tmp_path / "nothresh"), log=lambda m: None)
    assert report.missing and all(k.startswith("head.thresh.") for k in report.missing)
