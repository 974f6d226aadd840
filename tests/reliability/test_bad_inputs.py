"""The bad-input corpus (``tests/fixtures/bad_inputs/make_corpus.py``) through the real dataset,
loader, ``tools/train.py`` and ``tools/eval.py``: every entry is either an error naming
``label_file:line`` (policy fail), a counted and reported skip (policy skip) or a valid sample;
training never crashes on them under skip and evaluation never drops an image silently."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dbnetpp.config import load_config
from dbnetpp.data import SKIPPED_KEY, build_dataloader, num_samples
from dbnetpp.data.transforms import DecodeImage
from dbnetpp.errors import DataError


def _config(rel, data_dir, label, mode_overrides=()):
    return load_config(str(rel.CONFIG), [
        f"Train.dataset.data_dir={data_dir}", f"Train.dataset.label_file_list=[{label}]",
        f"Eval.dataset.data_dir={data_dir}", f"Eval.dataset.label_file_list=[{label}]", *mode_overrides])


def _one_pass(loader):
    samples, skipped = 0, []
    for batch in loader:
        samples += num_samples(batch)
        skipped += batch.get(SKIPPED_KEY, [])
    return samples, skipped


@pytest.mark.parametrize("mode", ["Train", "Eval"])
@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_corpus_case_through_the_loader(corpus_case, corpus_mod, rel, tmp_path, policy, mode):
    corpus = corpus_mod.write_corpus(tmp_path, [corpus_case.id], n_good=2)
    where = corpus.location(corpus_case.id)
    cfg = _config(rel, corpus.data_dir, corpus.label_file)
    if corpus_case.outcome == "error":
        if policy == "fail":
            with pytest.raises(DataError) as exc:
                _one_pass(build_dataloader(cfg, mode, policy="fail"))
            assert f"{where}:" in str(exc.value) or f"{where} " in str(exc.value), str(exc.value)
            assert corpus_case.matches(str(exc.value)), str(exc.value)
        else:
            samples, skipped = _one_pass(build_dataloader(cfg, mode, policy="skip"))
            assert samples == 2
            assert len(skipped) == 1 and skipped[0].startswith(f"{where}: "), skipped
            assert corpus_case.matches(skipped[0]), skipped[0]
    else:
        samples, skipped = _one_pass(build_dataloader(cfg, mode, policy=policy))
        assert (samples, skipped) == (3, [])


DECODE_TOLERANCE = {"png_16bit": 0, "png_16bit_gray": 0, "grayscale_png": 0, "rgba_png": 0, "grayscale_jpeg": 3,
                    "palette_png": 25, "cmyk_jpeg": 6}


@pytest.mark.parametrize("case_id", sorted(DECODE_TOLERANCE))
def test_unusual_images_decode_to_3_channel_8_bit_bgr(corpus_mod, case_id):
    import cv2

    img = corpus_mod.good_image()
    raw = corpus_mod.IMAGE_BYTES[case_id](img)
    out = DecodeImage(img_mode="BGR")({"image": raw})["image"]
    assert out.dtype == np.uint8 and out.shape == img.shape
    expected = img
    if "gray" in case_id:
        expected = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    diff = np.abs(out.astype(int) - expected.astype(int)).mean()
    assert diff <= DECODE_TOLERANCE[case_id], f"{case_id}: mean abs difference {diff:.2f}"
    if case_id != "palette_png":  # channel order: the dark bar is (20, 20, 20), the background varies per channel
        assert np.abs(out.astype(int) - expected.astype(int)).mean(axis=(0, 1)).max() <= DECODE_TOLERANCE[case_id] + 1


_HUGE_PROBE = r"""
import json, resource, sys, importlib.util
spec = importlib.util.spec_from_file_location("mc", sys.argv[1]); mc = importlib.util.module_from_spec(spec)
sys.modules["mc"] = mc; spec.loader.exec_module(mc)
import cv2  # before paddle
from dbnetpp.config import load_config
from dbnetpp.data.dataset import SimpleDataSet
corpus = mc.write_corpus(sys.argv[3], ["huge_image"], n_good=0)
cfg = load_config(sys.argv[2], sys.argv[4:])
out = {}
for mode in ("Train", "Eval"):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ds = SimpleDataSet(str(corpus.data_dir), [str(corpus.label_file)], transforms=cfg[mode]["dataset"]["transforms"],
                       mode=mode)
    sample = ds[0]
    out[mode] = {"shape": list(sample["image"].shape), "rss_growth_mb": (resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss - before) / 1024}
    if mode == "Eval":
        out[mode]["polys"] = sample["polys"].tolist()
        out[mode]["src_shape"] = sample["shape"].tolist()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_huge_image_is_processed_in_bounded_memory(rel, tmp_path):
    """Refused by default (above DecodeImage max_pixels); with the limit raised, processed in bounded memory."""
    refused = subprocess.run([sys.executable, "-c", _HUGE_PROBE, str(rel.CORPUS_SCRIPT), str(rel.CONFIG),
                              str(tmp_path / "default")], cwd=str(rel.ROOT), env=rel.env(), capture_output=True,
                             text=True, timeout=180)
    assert refused.returncode != 0 and "10000 x 10000 pixels (100 Mpx) is larger than DecodeImage max_pixels (50 " \
        "Mpx)" in refused.stderr, refused.stderr[-2000:]
    raised = [f"{split}.dataset.transforms.0.DecodeImage.max_pixels=100000000" for split in ("Train", "Eval")]
    r = subprocess.run([sys.executable, "-c", _HUGE_PROBE, str(rel.CORPUS_SCRIPT), str(rel.CONFIG), str(tmp_path),
                        *raised], cwd=str(rel.ROOT), env=rel.env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    res = rel.last_json(r.stdout)
    assert res["Train"]["shape"] == [3, 64, 64] and res["Eval"]["shape"] == [3, 64, 64]
    assert res["Eval"]["src_shape"][:2] == [10000, 10000]
    # the band of the huge image, scaled to the 64 x 64 evaluation input, is still the GT box
    assert np.allclose(np.array(res["Eval"]["polys"])[0], [[2496, 3333], [7496, 3333], [7496, 3833], [2496, 3833]])
    # decoding needs 100 MB (grey) + 300 MB (BGR); nothing in the pipeline makes full-size float copies
    assert res["Train"]["rss_growth_mb"] < 1024, res
    print(f"huge image: peak RSS growth train {res['Train']['rss_growth_mb']:.0f} MB")


# ---------------------------------------------------------------------------------------------
# real training runs over the whole corpus
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def train_corpus(corpus_mod, clean_data, tmp_path_factory):
    return corpus_mod.write_corpus(tmp_path_factory.mktemp("train_corpus"), n_good=8)


def test_training_run_skips_and_counts_every_bad_sample(rel, corpus_mod, train_corpus, clean_data, tmp_path):
    out = tmp_path / "out"
    opts = rel.overrides(clean_data, out, "Global.bad_sample_policy=skip", "Global.epoch_num=2",
                         "Train.loader.num_workers=2", "Train.loader.batch_size_per_card=4",
                         train_label=train_corpus.label_file)
    opts[0] = f"Train.dataset.data_dir={train_corpus.data_dir}"
    r = rel.run(rel.train_cmd(opts), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    errors = [c for c in train_corpus.lines if corpus_mod.CASE_BY_ID[c].outcome == "error"]
    ev = rel.events(out / "metrics.jsonl")
    assert [e["skipped"] for e in ev if e["event"] == "epoch"] == [len(errors)] * 2
    summary = rel.last_json(r.stdout)
    assert summary["epochs"] == 2
    # every step trained on something: no all-skipped batch with 8 good + valid samples spread over the file
    log = (out / "train.log").read_text()
    assert f"{len(errors)} sample(s) skipped" in log
    assert rel.check_all_checkpoints(out)


def test_every_skipped_sample_is_named_somewhere(rel, corpus_mod, train_corpus, clean_data, tmp_path):
    out = tmp_path / "out"
    opts = rel.overrides(clean_data, out, "Global.bad_sample_policy=skip", "Global.epoch_num=1",
                         "Train.loader.batch_size_per_card=8", train_label=train_corpus.label_file)
    opts[0] = f"Train.dataset.data_dir={train_corpus.data_dir}"
    r = rel.run(rel.train_cmd(opts), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    reported = (out / "train.log").read_text() + (out / "metrics.jsonl").read_text()
    missing = [c for c in train_corpus.lines if corpus_mod.CASE_BY_ID[c].outcome == "error"
               and f"{train_corpus.location(c)}:" not in reported]
    assert not missing, f"skipped but never named: {missing}"


def test_training_run_fail_policy_names_the_bad_line(rel, corpus_mod, train_corpus, clean_data, tmp_path):
    out = tmp_path / "out"
    opts = rel.overrides(clean_data, out, train_label=train_corpus.label_file)
    opts[0] = f"Train.dataset.data_dir={train_corpus.data_dir}"
    r = rel.run(rel.train_cmd(opts), timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    named = [c for c in train_corpus.lines if f"{train_corpus.location(c)}:" in r.stderr]
    assert named and all(corpus_mod.CASE_BY_ID[c].outcome == "error" for c in named), r.stderr[-2000:]
    assert "global_step: 1," not in r.stdout
    assert not (out / "latest.pdparams").exists()


def test_skip_policy_with_nothing_loadable_fails(rel, clean_data, tmp_path):
    out = tmp_path / "out"
    opts = rel.overrides(clean_data, out, "Global.bad_sample_policy=skip", "Global.max_steps=3")
    opts[0] = f"Train.dataset.data_dir={tmp_path / 'wrong_dir'}"
    r = rel.run(rel.train_cmd(opts), timeout=120)
    assert r.returncode != 0, r.stdout[-2000:]
    assert "wrong_dir" in r.stderr


_UNEXPECTED_PROBE = r"""
import sys
import cv2  # before paddle
from dbnetpp.config import load_config
from dbnetpp.data import build_dataloader


class RaisesMemoryError:
    # a transform failing in an unforeseen way (e.g. an allocation)
    def __call__(self, data):
        raise MemoryError("simulated: cannot allocate 28 GiB")


data = sys.argv[2]
cfg = load_config(sys.argv[1], [f"Train.dataset.data_dir={data}", f"Train.dataset.label_file_list=[{data}/train.txt]"])
loader = build_dataloader(cfg, "Train", policy=sys.argv[3])
loader.dataset.transforms = RaisesMemoryError()
for batch in loader:
    pass
print("finished without error")
"""


@pytest.mark.slow
def test_unexpected_sample_exception_does_not_hang(rel, clean_data):
    try:
        r = subprocess.run([sys.executable, "-c", _UNEXPECTED_PROBE, str(rel.CONFIG), str(clean_data), "skip"],
                           cwd=str(rel.ROOT), env=rel.env(), capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the data loader hangs after the exception (killed after 15 s)")
    assert r.returncode != 0 and "28 GiB" in r.stderr, r.stdout + r.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# evaluation never drops an image
# ---------------------------------------------------------------------------------------------
EVAL_BAD = ("zero_byte_image", "truncated_jpeg", "not_an_image", "missing_image")


@pytest.fixture(scope="module")
def eval_setup(rel, corpus_mod, tmp_path_factory):
    """An Eval label file with 4 good images and 4 unloadable ones, and the weights of a fresh model."""
    import paddle

    from dbnetpp.checkpoint import save_checkpoint
    from dbnetpp.modeling import build_model

    base = tmp_path_factory.mktemp("eval_corpus")
    corpus = corpus_mod.write_corpus(base, list(EVAL_BAD), n_good=4)
    paddle.seed(3)
    model = build_model(load_config(str(rel.CONFIG))["Architecture"])
    save_checkpoint(str(base / "weights"), model)
    return corpus, base / "weights"


def _eval(rel, corpus, weights, policy, out_json=None):
    args = ["-o", *rel.overrides(corpus.data_dir, corpus.base / "unused", eval_label=corpus.label_file),
            f"Global.checkpoints={weights}", f"Global.bad_sample_policy={policy}", "--no-progress"]
    if out_json:
        args += ["--json", str(out_json)]
    return rel.run(rel.tool_cmd(rel.EVAL, args), timeout=180)


def test_eval_tool_never_drops_an_image(rel, eval_setup, tmp_path):
    corpus, weights = eval_setup
    r = _eval(rel, corpus, weights, "skip", tmp_path / "report.json")
    assert r.returncode == 0, r.stderr[-3000:]
    res = rel.last_json(r.stdout)
    n_lines = len(corpus.good_lines) + len(EVAL_BAD)
    assert res["images"] == n_lines and res["skipped"] == len(EVAL_BAD) and res["unscored"] == 0
    assert res["gt_care"] == n_lines  # one care box per line, the unloadable images' boxes included
    for case in EVAL_BAD:
        assert corpus.location(case) in r.stderr, r.stderr[-2000:]

    r = _eval(rel, corpus, weights, "fail")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert any(f"{corpus.location(c)}:" in r.stderr for c in EVAL_BAD), r.stderr[-2000:]


def test_training_evaluation_never_drops_an_image(rel, eval_setup, clean_data, tmp_path):
    corpus, _ = eval_setup
    out = tmp_path / "out"
    opts = rel.overrides(corpus.data_dir, out, "Global.bad_sample_policy=skip", "Global.max_steps=1",
                         "Global.eval_at_end=true", train_label=clean_data / "train.txt", eval_label=corpus.label_file)
    opts[0] = f"Train.dataset.data_dir={clean_data}"
    r = rel.run(rel.train_cmd(opts), timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    evals = [e for e in rel.events(out / "metrics.jsonl") if e["event"] == "eval"]
    n_lines = len(corpus.good_lines) + len(EVAL_BAD)
    assert evals and evals[-1]["images"] == n_lines and evals[-1]["gt_care"] == n_lines, evals


def test_missing_prediction_counts_as_no_detections(rel, tmp_path):
    from dbnetpp.metrics import DetMetric

    box = np.array([[[10, 10], [60, 10], [60, 30], [10, 30]]], dtype=np.float32)
    metric = DetMetric()
    metric([{"points": box}, {"points": []}], {"polys": [box, box], "ignore_tags": [[False], [False]]})
    counts = metric.get_counts()
    assert counts == {"gt_care": 2, "det_care": 1, "matched": 1, "images": 2}
    m = metric.get_metric()
    assert (m["precision"], m["recall"]) == (1.0, 0.5)

    # the file-based evaluator: image 2 has a GT file but no result file
    gt, det = tmp_path / "gt", tmp_path / "det"
    gt.mkdir()
    det.mkdir()
    quad = "10,10,60,10,60,30,10,30"
    for k in (1, 2):
        (gt / f"gt_img_{k}.txt").write_text(f"{quad},WORD\n", encoding="utf-8")
    (det / "res_img_1.txt").write_text(f"{quad}\n", encoding="utf-8")
    r = rel.run([sys.executable, str(rel.ROOT / "tools" / "eval_icdar2015.py"), "--gt", str(gt), "--det", str(det),
                 "--json", str(tmp_path / "per_image.json")], timeout=120)
    assert r.returncode == 0, r.stderr
    res = rel.last_json(r.stdout)
    assert (res["precision"], res["recall"]) == (1.0, 0.5), res
    per_image = json.loads((tmp_path / "per_image.json").read_text())["per_sample"]
    assert set(per_image) == {"1", "2"} and per_image["2"]["gt_care"] == 1 and per_image["2"]["det_file"] is None


@pytest.mark.slow
def test_data_error_during_training_saves_latest_first(rel, clean_data, tmp_path):
    """A sample that fails only when decoded (policy fail) stops the run naming its line, after saving the
    steps done so far as 'latest' (the loader may reach the bad sample a batch early: it reads ahead)."""
    data = tmp_path / "data"
    import shutil

    shutil.copytree(clean_data, data)
    lines = (data / "train.txt").read_text().splitlines()
    bad = lines[4].split("\t")[0]  # the 5th sample: batch 3 (batch 2, no shuffling)
    (data / bad).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, then garbage
    out = tmp_path / "out"
    r = rel.run(rel.train_cmd(rel.overrides(data, out, "Train.loader.shuffle=false", "Global.eval_at_end=false")),
                timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert f"{data / 'train.txt'}:5:" in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    states = rel.check_checkpoint(out / "latest")
    steps = [e["global_step"] for e in rel.events(out / "metrics.jsonl") if e.get("event") == "train"]
    assert states["global_step"] >= 1 and states["global_step"] == max(steps), (states, steps)  # every step done
    stops = [e for e in rel.events(out / "metrics.jsonl") if e.get("event") == "stop"]
    assert stops and stops[-1]["reason"] == "data_error" and stops[-1]["global_step"] == states["global_step"], stops
