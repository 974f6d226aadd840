"""tools/prepare_icdar2015.py: official ICDAR2015 folders or zips -> PaddleOCR label files + image folders."""
import importlib.util
import json
import os
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from dbnetpp.data.dataset import SimpleDataSet
from dbnetpp.data.icdar_gt import read_gt_file

from testutil import last_line_json

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = {"train": ("ch4_training_images", "ch4_training_localization_transcription_gt"),
            "test": ("ch4_test_images", "Challenge4_Test_Task1_GT")}


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("prepare_icdar2015", ROOT / "tools" / "prepare_icdar2015.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(tool, capsys, *args):
    """Run the CLI in-process: (exit code, stdout lines, stderr)."""
    code = tool.main([*map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err


def gt_lines(k: int):
    return ["1,2,30,2,30,20,1,20,Hello, world", "5,5,9,5,9,9,5,9,###", f"0,0,4,0,4,4,0,4,caf\u00e9 {k}"]


def expected_entries(k: int):
    return [{"transcription": "Hello, world", "points": [[1, 2], [30, 2], [30, 20], [1, 20]]},
            {"transcription": "###", "points": [[5, 5], [9, 5], [9, 9], [5, 9]]},
            {"transcription": f"caf\u00e9 {k}", "points": [[0, 0], [4, 0], [4, 4], [0, 4]]}]


def make_synthetic(src: Path, n_train: int = 3, n_test: int = 2, as_zip: bool = False, member_dir: str = ""):
    """Official layout with synthetic images: train GT with BOM + LF, test GT with CRLF (as released)."""
    files = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img_dir, gt_dir = OFFICIAL[split]
        for k in range(1, n + 1):
            ok, jpg = cv2.imencode(".jpg", np.full((24, 32, 3), 10 * k, np.uint8))
            files.setdefault(img_dir, {})[f"img_{k}.jpg"] = jpg.tobytes()
            text = "\r\n".join(gt_lines(k)) + "\r\n" if split == "test" else "\n".join(gt_lines(k)) + "\n"
            raw = text.encode("utf-8")
            files.setdefault(gt_dir, {})[f"gt_img_{k}.txt"] = (b"\xef\xbb\xbf" + raw) if split == "train" else raw
    write_layout(src, files, as_zip, member_dir)
    return files


def write_layout(src: Path, files, as_zip: bool, member_dir: str = ""):
    src.mkdir(parents=True, exist_ok=True)
    for folder, content in files.items():
        if as_zip:
            with zipfile.ZipFile(src / f"{folder}.zip", "w") as zf:
                for name, raw in content.items():
                    zf.writestr(member_dir + name, raw)
        else:
            (src / folder).mkdir(exist_ok=True)
            for name, raw in content.items():
                (src / folder / name).write_bytes(raw)


@pytest.mark.shared
def test_real_icdar2015_counts_through_the_shell_wrapper(icdar_dir, tmp_path):
    dst = tmp_path / "text_localization"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "prepare_icdar2015.sh"), "--src", str(icdar_dir),
                           "--dst", str(dst), "--symlink"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = last_line_json(proc.stdout)
    assert summary == {"train": {"images": 1000, "boxes": 11886, "care": 4468, "dont_care": 7418, "skipped_lines": 0},
                       "test": {"images": 500, "boxes": 5230, "care": 2077, "dont_care": 3153, "skipped_lines": 0}}
    train = (dst / "train_icdar2015_label.txt").read_text(encoding="utf-8").splitlines()
    test = (dst / "test_icdar2015_label.txt").read_text(encoding="utf-8").splitlines()
    assert len(train) == 1000 and len(test) == 500
    assert train[0].startswith('icdar_c4_train_imgs/img_1.jpg\t[{"transcription": "Genaxis Theatre", '
                               '"points": [[377, 117], [463, 117], [465, 130], [378, 130]]}')
    assert test[0].startswith("ch4_test_images/img_1.jpg\t")
    for line in train + test:
        path, label = line.split("\t")
        assert (dst / path).is_symlink() and (dst / path).exists()
        assert all(len(box["points"]) == 4 for box in json.loads(label))
    # transcriptions with commas survive whole
    with_comma = [box["transcription"] for line in train for box in json.loads(line.split("\t")[1])
                  if "," in box["transcription"]]
    assert len(with_comma) == 18
    dataset = SimpleDataSet(str(dst), [str(dst / "test_icdar2015_label.txt")], mode="Eval")
    assert len(dataset) == 500 and dataset.check() == []  # every path resolves inside data_dir


@pytest.mark.shared
def test_official_zips_built_from_real_files(icdar_dir, tmp_path, tool, capsys):
    picked = {"train": [1, 2, 10], "test": [7, 100]}
    files = {}
    for split, ids in picked.items():
        img_dir, gt_dir = OFFICIAL[split]
        files[img_dir] = {f"img_{k}.jpg": (icdar_dir / img_dir / f"img_{k}.jpg").read_bytes() for k in ids}
        files[gt_dir] = {f"gt_img_{k}.txt": (icdar_dir / gt_dir / f"gt_img_{k}.txt").read_bytes() for k in ids}
    write_layout(tmp_path / "zips", files, as_zip=True)
    code, out, err = run(tool, capsys, "--src", tmp_path / "zips", "--dst", tmp_path / "out")
    assert code == 0, err
    summary = json.loads(out[-1])
    for split, ids in picked.items():
        img_dir, gt_dir = OFFICIAL[split]
        boxes = [read_gt_file(str(icdar_dir / gt_dir / f"gt_img_{k}.txt")) for k in ids]
        assert summary[split]["images"] == len(ids)
        assert summary[split]["boxes"] == sum(len(b) for b in boxes)
        assert summary[split]["care"] == sum(not x.ignore for b in boxes for x in b)
        out_dir, label = ("icdar_c4_train_imgs", "train_icdar2015_label.txt") if split == "train" else \
            ("ch4_test_images", "test_icdar2015_label.txt")
        lines = (tmp_path / "out" / label).read_text(encoding="utf-8").splitlines()
        assert [line.split("\t")[0] for line in lines] == [f"{out_dir}/img_{k}.jpg" for k in ids]  # numeric order
        for k, line, gt in zip(ids, lines, boxes):
            assert json.loads(line.split("\t")[1]) == [{"transcription": b.transcription, "points": b.points}
                                                       for b in gt]
            assert (tmp_path / "out" / out_dir / f"img_{k}.jpg").read_bytes() == files[img_dir][f"img_{k}.jpg"]


@pytest.mark.smoke
@pytest.mark.parametrize("as_zip, member_dir", [(False, ""), (True, ""), (True, "nested/")])
def test_synthetic_release_bom_crlf_commas_dont_care(tmp_path, tool, capsys, as_zip, member_dir):
    files = make_synthetic(tmp_path / "src", as_zip=as_zip, member_dir=member_dir)
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 0, err
    assert json.loads(out[-1]) == {"train": {"images": 3, "boxes": 9, "care": 6, "dont_care": 3, "skipped_lines": 0},
                                   "test": {"images": 2, "boxes": 6, "care": 4, "dont_care": 2, "skipped_lines": 0}}
    raw = (tmp_path / "dst" / "train_icdar2015_label.txt").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
    train = raw.decode("utf-8").splitlines()
    assert train[1] == "icdar_c4_train_imgs/img_2.jpg\t" + json.dumps(expected_entries(2), ensure_ascii=False)
    assert "caf\u00e9 2" in train[1]  # ensure_ascii=False: no \\u escapes
    test = (tmp_path / "dst" / "test_icdar2015_label.txt").read_text(encoding="utf-8").splitlines()
    assert [json.loads(t.split("\t")[1]) for t in test] == [expected_entries(1), expected_entries(2)]
    for name, data in files["ch4_test_images"].items():
        assert (tmp_path / "dst" / "ch4_test_images" / name).read_bytes() == data
    assert not [p for p in os.listdir(tmp_path / "dst") if p.startswith(".")]  # staging folder removed


def test_images_are_hard_linked_and_splits_can_be_chosen(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src")
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst", "--splits", "train")
    assert code == 0, err
    assert list(json.loads(out[-1])) == ["train"]
    src_img, dst_img = tmp_path / "src" / "ch4_training_images" / "img_1.jpg", tmp_path / "dst" / "icdar_c4_train_imgs" / "img_1.jpg"
    assert os.stat(src_img).st_ino == os.stat(dst_img).st_ino and not dst_img.is_symlink()
    assert sorted(os.listdir(tmp_path / "dst")) == ["icdar_c4_train_imgs", "train_icdar2015_label.txt"]
    with pytest.raises(SystemExit):
        tool.main(["--src", str(tmp_path / "src"), "--dst", str(tmp_path / "x"), "--splits", "train,val"])
    assert "expected a comma-separated subset of train, test" in capsys.readouterr().err


def test_bad_line_is_an_error_naming_file_and_line_unless_skipped(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src")
    gt = tmp_path / "src" / "Challenge4_Test_Task1_GT" / "gt_img_2.txt"
    gt.write_bytes(gt.read_bytes() + b"1,2,3,oops,5,6,7,8,text\r\n")
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1
    assert f"{gt}:4: coordinate 4 is not a number: 'oops'" in err
    assert not (tmp_path / "dst").exists()  # nothing written, not even the folder

    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst", "--skip-bad-lines")
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary["test"] == {"images": 2, "boxes": 6, "care": 4, "dont_care": 2, "skipped_lines": 1}
    assert summary["train"]["skipped_lines"] == 0
    assert "test: 2 images, 6 boxes (4 care, 2 don't care), 1 bad line(s) skipped" in out
    assert f"skipped bad line: {gt}:4:" in err


def test_unmatched_images_and_gt_files_are_errors(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src")
    extra = tmp_path / "src" / "ch4_training_images" / "img_9.jpg"
    extra.write_bytes((tmp_path / "src" / "ch4_training_images" / "img_1.jpg").read_bytes())
    code, _, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1 and f"{extra}: image has no GT file gt_img_9.txt" in err
    extra.unlink()
    orphan = tmp_path / "src" / "Challenge4_Test_Task1_GT" / "gt_img_5.txt"
    orphan.write_text("1,2,3,4,5,6,7,8,x\n")
    code, _, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1 and f"{orphan}: GT file has no image img_5.*" in err
    orphan.unlink()
    (tmp_path / "src" / "ch4_test_images" / "img_2.jpg").write_bytes(b"")
    code, _, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1 and "img_2.jpg: image file is empty" in err
    (tmp_path / "src" / "ch4_test_images" / "img_2.jpg").write_text("not a picture")
    code, _, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1 and "img_2.jpg: not an image file" in err
    for p in (tmp_path / "src" / "ch4_test_images").iterdir():
        p.unlink()
    (tmp_path / "src" / "ch4_test_images").rmdir()
    code, _, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "dst")
    assert code == 1 and "missing ch4_test_images/ (or ch4_test_images.zip)" in err


def test_existing_output_needs_force_and_a_failed_force_run_keeps_it(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src")
    args = ["--src", tmp_path / "src", "--dst", tmp_path / "dst"]
    assert run(tool, capsys, *args)[0] == 0
    label = tmp_path / "dst" / "train_icdar2015_label.txt"
    before = label.read_bytes()
    code, _, err = run(tool, capsys, *args)
    assert code == 2 and "refusing to overwrite existing output(s)" in err and "--force" in err
    assert label.read_bytes() == before

    gt = tmp_path / "src" / "ch4_training_localization_transcription_gt" / "gt_img_3.txt"
    gt.write_bytes(gt.read_bytes() + b"1,2\n")
    code, _, err = run(tool, capsys, *args, "--force")
    assert code == 1 and f"{gt}:4:" in err
    assert label.read_bytes() == before and len(os.listdir(tmp_path / "dst" / "icdar_c4_train_imgs")) == 3

    gt.write_bytes(b"7,7,8,7,8,8,7,8,new\n")
    (tmp_path / "src" / "ch4_training_images" / "img_1.jpg").unlink()
    (tmp_path / "src" / "ch4_training_localization_transcription_gt" / "gt_img_1.txt").unlink()
    code, out, err = run(tool, capsys, *args, "--force")
    assert code == 0, err
    assert json.loads(out[-1])["train"] == {"images": 2, "boxes": 4, "care": 3, "dont_care": 1, "skipped_lines": 0}
    assert sorted(os.listdir(tmp_path / "dst" / "icdar_c4_train_imgs")) == ["img_2.jpg", "img_3.jpg"]
    assert label.read_text(encoding="utf-8").splitlines()[1].endswith('[{"transcription": "new", "points": '
                                                                      '[[7, 7], [8, 7], [8, 8], [7, 8]]}]')
    assert not [p for p in os.listdir(tmp_path / "dst") if p.startswith(".")]


def test_prepared_output_feeds_the_shipped_config(tmp_path, tool, capsys):
    """prepare -> configs/det/det_mv3_db.yml (real transforms) -> Train and Eval batches."""
    from dbnetpp.config import load_config
    from dbnetpp.data import build_dataloader

    files = {}
    for split, n in (("train", 3), ("test", 2)):
        img_dir, gt_dir = OFFICIAL[split]
        for k in range(1, n + 1):
            img = np.full((96, 128, 3), 200, np.uint8)
            cv2.putText(img, "Hello", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
            files.setdefault(img_dir, {})[f"img_{k}.jpg"] = cv2.imencode(".jpg", img)[1].tobytes()
            files.setdefault(gt_dir, {})[f"gt_img_{k}.txt"] = (
                "8,15,100,15,100,48,8,48,Hello\r\n60,60,90,60,90,80,60,80,###\r\n").encode()
    write_layout(tmp_path / "src", files, as_zip=True)
    dst = tmp_path / "train_data"
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", dst)
    assert code == 0, err
    summary = json.loads(out[-1])
    cfg = load_config(str(ROOT / "configs" / "det" / "det_mv3_db.yml"), [
        f"Train.dataset.data_dir={dst}", f"Train.dataset.label_file_list=[{dst / 'train_icdar2015_label.txt'}]",
        "Train.dataset.transforms.3.EastRandomCropData.size=[64,64]", "Train.loader.batch_size_per_card=2",
        "Train.loader.num_workers=0",
        f"Eval.dataset.data_dir={dst}", f"Eval.dataset.label_file_list=[{dst / 'test_icdar2015_label.txt'}]",
        "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[64,96]", "Eval.loader.num_workers=0"])
    train = build_dataloader(cfg, "Train", seed=1)
    batches = list(train)
    assert [b["image"].shape for b in batches] == [[2, 3, 64, 64], [1, 3, 64, 64]]
    assert list(batches[0]) == ["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"]
    assert batches[0]["shrink_map"].shape == [2, 64, 64]
    evaluation = build_dataloader(cfg, "Eval")
    batches = list(evaluation)
    assert len(batches) == summary["test"]["images"]
    assert batches[0]["image"].shape == [1, 3, 64, 96] and batches[0]["shape"].shape == [1, 4]
    assert sum(len(p) for b in batches for p in b["polys"]) == summary["test"]["boxes"]
    assert sum(int(t.sum()) for b in batches for t in b["ignore_tags"]) == summary["test"]["dont_care"]


def _label_names(path: Path):
    return [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()]


def test_validation_split_is_disjoint_deterministic_and_counted(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src", n_train=12, n_test=2)
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "a", "--val", 4)
    assert code == 0, err
    summary = json.loads(out[-1])
    assert list(summary) == ["train", "val", "test"]
    assert summary["val"] == {"images": 4, "boxes": 12, "care": 8, "dont_care": 4, "skipped_lines": 0, "seed": 0}
    assert summary["train"]["images"] == 8 and summary["train"]["boxes"] == 24
    assert any("4 training images (random.Random(0).sample) held out" in line for line in out)
    train, val = _label_names(tmp_path / "a" / "train_icdar2015_label.txt"), _label_names(
        tmp_path / "a" / "val_icdar2015_label.txt")
    assert not set(train) & set(val) and len(set(train) | set(val)) == 12
    numbers = [int(n.split("_")[-1].split(".")[0]) for n in val]
    assert numbers == sorted(numbers) and all(n.startswith("icdar_c4_train_imgs/") for n in val)
    assert all((tmp_path / "a" / n).is_file() for n in val)  # the images stay in the training folder
    # the same release, N and seed: the same split; another seed: another one
    assert run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "b", "--val", 4)[0] == 0
    assert _label_names(tmp_path / "b" / "val_icdar2015_label.txt") == val
    assert run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "c", "--val", 4, "--val-seed", 5)[0] == 0
    assert _label_names(tmp_path / "c" / "val_icdar2015_label.txt") != val
    # it is an output like the others: not replaced without --force; re-preparing without --val removes it
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "a", "--val", 3)
    assert code == 2 and "val_icdar2015_label.txt" in err and "--force" in err
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "a", "--force")
    assert code == 0, err
    assert not (tmp_path / "a" / "val_icdar2015_label.txt").exists() and "val" not in json.loads(out[-1])
    assert any("val_icdar2015_label.txt removed" in line for line in out)
    assert len(_label_names(tmp_path / "a" / "train_icdar2015_label.txt")) == 12


def test_validation_split_refuses_impossible_sizes(tmp_path, tool, capsys):
    make_synthetic(tmp_path / "src", n_train=3, n_test=1)
    for n in (3, 7):
        code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / f"o{n}", "--val", n)
        assert code == 1 and f"--val {n}: must be between 1 and 2 (the training split has 3 images)" in err
        assert not (tmp_path / f"o{n}").exists()  # nothing written
    code, out, err = run(tool, capsys, "--src", tmp_path / "src", "--dst", tmp_path / "t", "--splits", "test",
                         "--val", 1)
    assert code == 1 and "--val holds out training images: it needs the train split" in err
    with pytest.raises(SystemExit):
        tool.main(["--src", str(tmp_path / "src"), "--dst", str(tmp_path / "n"), "--val", "-1"])


@pytest.mark.shared
def test_real_icdar2015_validation_split(icdar_dir, tmp_path, tool, capsys):
    """``--val 100`` on the real release: 900 + 100 training images, every box kept, the test split unchanged."""
    code, out, err = run(tool, capsys, "--src", icdar_dir, "--dst", tmp_path / "v", "--symlink", "--val", 100)
    assert code == 0, err
    summary = json.loads(out[-1])
    assert summary["train"]["images"] == 900 and summary["val"]["images"] == 100
    for key in ("boxes", "care", "dont_care"):
        assert summary["train"][key] + summary["val"][key] == {"boxes": 11886, "care": 4468, "dont_care": 7418}[key]
    assert summary["test"]["images"] == 500
    val = _label_names(tmp_path / "v" / "val_icdar2015_label.txt")
    assert len(val) == 100 and not set(val) & set(_label_names(tmp_path / "v" / "train_icdar2015_label.txt"))
