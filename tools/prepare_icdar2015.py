"""Convert the official ICDAR2015 text-localisation release into PaddleOCR's detection layout.

Source (``--src``): a folder holding either the four official zips

    ch4_training_images.zip  ch4_training_localization_transcription_gt.zip
    ch4_test_images.zip      Challenge4_Test_Task1_GT.zip

or the folders they extract to (same names without ``.zip``; a folder wins over a zip).
Output (``--dst``), the layout PaddleOCR documents under
``train_data/icdar2015/text_localization/``::

    train_icdar2015_label.txt   icdar_c4_train_imgs/img_1.jpg<TAB>[{"transcription": ..., "points": [[x, y], ...]}, ...]
    test_icdar2015_label.txt    ch4_test_images/img_1.jpg<TAB>[...]
    icdar_c4_train_imgs/        ch4_test_images/

``--val N`` holds out ``N`` training images as a validation set: ``val_icdar2015_label.txt`` lists them
(their images stay in ``icdar_c4_train_imgs/``) and ``train_icdar2015_label.txt`` then lacks them.  The
images are ``random.Random(--val-seed).sample`` (default seed 0) of the training images in numeric order,
listed in that order, so the same release, ``N`` and seed always give the same split.  Preparing the
training split without ``--val`` removes a validation file left by an earlier run (its images are
training images again).

Images are hard-linked (copied when the link fails, e.g. across file systems), or
symlinked with ``--symlink``; zips are extracted.  GT files may carry a UTF-8 BOM
and CRLF line ends, transcriptions may contain commas, ``###`` marks don't-care
boxes.  Every GT line is validated: a bad line is an error naming ``file:line``
(``--skip-bad-lines`` drops and counts it instead); an image without GT file or a GT
file without image is an error.  Existing outputs are only replaced with ``--force``;
everything is written to a staging folder inside ``--dst`` first and moved into
place at the end, so a failed run changes nothing.

The last line printed is one JSON object:
``{"train": {"images", "boxes", "care", "dont_care", "skipped_lines"}, "test": {...}}``, with ``"val"``
(the same counts, plus ``"seed"``) when ``--val`` is given.  Exit codes (dbnetpp/errors.py; one line
``prepare_icdar2015: error: MESSAGE``): 0 done; 1 invalid source data (named ``file:line``) or a file-system
error; 2 a bad command line or existing outputs without ``--force``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import zipfile
from typing import Dict, List, NamedTuple, Optional, Tuple

from tqdm import tqdm

from dbnetpp.data.icdar_gt import DONT_CARE, image_id, parse_gt_bytes
from dbnetpp.cli import run_tool
from dbnetpp.errors import DataError, UsageError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")


class SplitSpec(NamedTuple):
    images: str  # official image folder / zip stem
    gt: str  # official GT folder / zip stem
    label_file: str  # output label file name
    image_dir: str  # output image folder name (also the label-file path prefix)


VAL_LABEL_FILE = "val_icdar2015_label.txt"

SPLITS: Dict[str, SplitSpec] = {
    "train": SplitSpec("ch4_training_images", "ch4_training_localization_transcription_gt",
                       "train_icdar2015_label.txt", "icdar_c4_train_imgs"),
    "test": SplitSpec("ch4_test_images", "Challenge4_Test_Task1_GT", "test_icdar2015_label.txt", "ch4_test_images"),
}


class Source:
    """The files of one official folder or zip, by base name."""

    def __init__(self, src: str, stem: str):
        folder, archive = os.path.join(src, stem), os.path.join(src, stem + ".zip")
        self.zip: Optional[zipfile.ZipFile] = None
        self.files: Dict[str, str] = {}  # base name -> path (folder) or member name (zip)
        if os.path.isdir(folder):
            self.where = folder
            for name in sorted(os.listdir(folder)):
                if not name.startswith(".") and os.path.isfile(os.path.join(folder, name)):
                    self.files[name] = os.path.join(folder, name)
        elif os.path.isfile(archive):
            self.where = archive
            try:
                self.zip = zipfile.ZipFile(archive)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"not a readable zip file ({exc})", archive) from None
            for info in self.zip.infolist():
                name = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
                if info.is_dir() or not name or name.startswith(".") or info.filename.startswith("__MACOSX/"):
                    continue
                if name in self.files:
                    raise DataError(f"two members named {name!r}: {self.files[name]!r} and {info.filename!r}", archive)
                self.files[name] = info.filename
        else:
            raise DataError(f"missing {stem}/ (or {stem}.zip)", src)

    def label(self, name: str) -> str:
        """How errors name a file: ``folder/name`` or ``archive.zip/member``."""
        return os.path.join(self.where, self.files[name]) if self.zip else self.files[name]

    def read(self, name: str) -> bytes:
        try:
            if self.zip:
                return self.zip.read(self.files[name])
            with open(self.files[name], "rb") as f:
                return f.read()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"cannot read ({exc})", self.label(name)) from None

    def head(self, name: str, n: int = 16) -> Tuple[bytes, int]:
        """First ``n`` bytes and the size of a file."""
        if self.zip:
            info = self.zip.getinfo(self.files[name])
            with self.zip.open(info) as f:
                return f.read(n), info.file_size
        with open(self.files[name], "rb") as f:
            return f.read(n), os.fstat(f.fileno()).st_size

    def place(self, name: str, dst: str, symlink: bool) -> str:
        """Put file ``name`` at ``dst``; returns how: extracted / symlinked / hard-linked / copied."""
        if self.zip:
            with open(dst, "wb") as f:
                f.write(self.read(name))
            return "extracted"
        src = self.files[name]
        if symlink:
            os.symlink(os.path.abspath(src), dst)
            return "symlinked"
        try:
            os.link(src, dst)
            return "hard-linked"
        except OSError:
            shutil.copy2(src, dst)
            return "copied"

    def close(self) -> None:
        if self.zip:
            self.zip.close()


def _sort_key(name: str):
    stem = os.path.splitext(name)[0]
    num = image_id(stem + ".txt")
    return (num is None, num if num is not None else 0, name)


def check_image(src: Source, name: str) -> None:
    head, size = src.head(name)
    if size == 0:
        raise DataError("image file is empty (0 bytes)", src.label(name))
    if not (head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        raise DataError(f"not an image file (unrecognised header {head[:8]!r})", src.label(name))


class SplitResult(NamedTuple):
    lines: List[str]  # label-file lines
    images: List[str]  # image base names, in label-file order
    stats: Dict[str, int]
    skipped: List[int]  # bad GT lines skipped, per image


def match_files(images: Source, gts: Source) -> List[Tuple[str, str]]:
    """``(image name, GT name)`` pairs; an image without GT or a GT without image raises."""
    by_stem: Dict[str, str] = {}
    for name in images.files:
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTS:
            print(f"prepare_icdar2015: warning: ignoring {images.label(name)} (not an image)", file=sys.stderr)
            continue
        if stem in by_stem:
            raise DataError(f"two images for one GT file: {by_stem[stem]} and {name}", images.where)
        by_stem[stem] = name
    gt_names = set()
    for name in gts.files:
        if name.startswith("gt_") and name.endswith(".txt"):
            gt_names.add(name)
        else:
            print(f"prepare_icdar2015: warning: ignoring {gts.label(name)} (not a gt_*.txt file)", file=sys.stderr)
    pairs, missing_gt = [], []
    for stem, name in by_stem.items():
        gt = f"gt_{stem}.txt"
        if gt in gt_names:
            pairs.append((name, gt))
        else:
            missing_gt.append(name)
    if missing_gt:
        missing_gt.sort(key=_sort_key)
        more = f" (and {len(missing_gt) - 1} more image(s) without GT)" if len(missing_gt) > 1 else ""
        raise DataError(f"image has no GT file gt_{os.path.splitext(missing_gt[0])[0]}.txt in {gts.where}{more}",
                        images.label(missing_gt[0]))
    orphans = sorted(gt_names - {gt for _, gt in pairs}, key=lambda n: _sort_key(n[3:]))
    if orphans:
        more = f" (and {len(orphans) - 1} more GT file(s) without image)" if len(orphans) > 1 else ""
        raise DataError(f"GT file has no image {orphans[0][3:-4]}.* in {images.where}{more}", gts.label(orphans[0]))
    if not pairs:
        raise DataError("no images found", images.where)
    return sorted(pairs, key=lambda p: _sort_key(p[0]))


def convert_split(spec: SplitSpec, images: Source, gts: Source, skip_bad_lines: bool, progress: bool) -> SplitResult:
    """Validate every image and GT line of a split and build its label-file lines."""
    stats = {"images": 0, "boxes": 0, "care": 0, "dont_care": 0, "skipped_lines": 0}
    lines, names, skipped = [], [], []
    bad: List[DataError] = []
    for img_name, gt_name in tqdm(match_files(images, gts), desc=f"check {spec.images}", unit="img",
                                  file=sys.stderr, disable=not progress):
        check_image(images, img_name)
        errors: Optional[List[DataError]] = [] if skip_bad_lines else None
        boxes = parse_gt_bytes(gts.read(gt_name), gts.label(gt_name), errors=errors)
        if errors:
            bad.extend(errors)
        skipped.append(len(errors or ()))
        entries = [{"transcription": b.transcription, "points": b.points} for b in boxes]
        lines.append(f"{spec.image_dir}/{img_name}\t{json.dumps(entries, ensure_ascii=False)}")
        names.append(img_name)
        stats["images"] += 1
        stats["boxes"] += len(boxes)
        stats["dont_care"] += sum(b.transcription == DONT_CARE for b in boxes)
    stats["care"] = stats["boxes"] - stats["dont_care"]
    stats["skipped_lines"] = len(bad)
    for exc in bad[:10]:
        print(f"prepare_icdar2015: skipped bad line: {exc}", file=sys.stderr)
    if len(bad) > 10:
        print(f"prepare_icdar2015: ... and {len(bad) - 10} more skipped line(s)", file=sys.stderr)
    return SplitResult(lines, names, stats, skipped)


def _line_stats(lines: List[str], skipped: int) -> Dict[str, int]:
    boxes = [json.loads(line.split("\t", 1)[1]) for line in lines]
    total = sum(len(b) for b in boxes)
    dont_care = sum(e["transcription"] == DONT_CARE for b in boxes for e in b)
    return {"images": len(lines), "boxes": total, "care": total - dont_care, "dont_care": dont_care,
            "skipped_lines": skipped}


def hold_out(result: SplitResult, count: int, seed: int) -> Tuple[SplitResult, SplitResult]:
    """``count`` images of ``result`` (``random.Random(seed).sample`` in label-file order) as a validation
    split -> (training without them, validation), both in label-file order."""
    if not 0 < count < len(result.lines):
        raise DataError(f"--val {count}: must be between 1 and {len(result.lines) - 1} (the training split has "
                        f"{len(result.lines)} images)")
    picked = set(random.Random(seed).sample(range(len(result.lines)), count))
    parts = []
    for keep in (False, True):
        idx = [i for i in range(len(result.lines)) if (i in picked) == keep]
        lines, skipped = [result.lines[i] for i in idx], [result.skipped[i] for i in idx]
        parts.append(SplitResult(lines, [result.images[i] for i in idx], _line_stats(lines, sum(skipped)), skipped))
    return parts[0], parts[1]


def _same_dir(a: str, b: str) -> bool:
    return os.path.isdir(a) and os.path.isdir(b) and os.path.samefile(a, b)


def existing_outputs(dst: str, splits: List[str], src: str) -> List[str]:
    found = []
    if "train" in splits and os.path.lexists(os.path.join(dst, VAL_LABEL_FILE)):
        found.append(os.path.join(dst, VAL_LABEL_FILE))  # replaced, or removed without --val
    for split in splits:
        spec = SPLITS[split]
        label, img_dir = os.path.join(dst, spec.label_file), os.path.join(dst, spec.image_dir)
        if os.path.lexists(label):
            found.append(label)
        if os.path.lexists(img_dir) and not _same_dir(img_dir, os.path.join(src, spec.images)):
            found.append(img_dir + "/")
    return found


def _replace(staged: str, final: str, trash: str) -> None:
    """Move ``staged`` to ``final``; an existing ``final`` is first moved into ``trash``."""
    if os.path.lexists(final):
        os.rename(final, os.path.join(trash, os.path.basename(final)))
    os.replace(staged, final)


def _write_label_file(path: str, lines: List[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())


def prepare(src: str, dst: str, splits: List[str], force: bool = False, skip_bad_lines: bool = False,
            symlink: bool = False, progress: bool = True, val: int = 0, val_seed: int = 0) -> Dict[str, Dict[str, int]]:
    """Convert ``splits`` of ``src`` into ``dst`` (``val`` training images held out, see the module
    docstring); returns per-split statistics."""
    if not os.path.isdir(src):
        raise DataError("source folder not found", src)
    if val and "train" not in splits:
        raise DataError("--val holds out training images: it needs the train split", src)
    existing = existing_outputs(dst, splits, src)
    if existing and not force:
        raise UsageError(f"refusing to overwrite existing output(s): {', '.join(existing)} (pass --force to replace them)")
    created_dst = not os.path.isdir(dst)
    os.makedirs(dst, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".prepare_icdar2015-", dir=dst)
    done = False
    summary: Dict[str, Dict[str, int]] = {}
    notes: List[str] = []
    try:
        staged = []
        for split in splits:
            spec = SPLITS[split]
            images, gts = Source(src, spec.images), Source(src, spec.gt)
            try:
                result = convert_split(spec, images, gts, skip_bad_lines, progress)
                all_images = result.images  # held-out images stay in the split's image folder
                if split == "train" and val:
                    result, held = hold_out(result, val, val_seed)
                    _write_label_file(os.path.join(stage, VAL_LABEL_FILE), held.lines)
                    staged.append((os.path.join(stage, VAL_LABEL_FILE), os.path.join(dst, VAL_LABEL_FILE), None, None))
                    summary["val"] = {**held.stats, "seed": val_seed}
                    notes.append(f"val: {val} training images (random.Random({val_seed}).sample) held out -> "
                                 f"{os.path.join(dst, VAL_LABEL_FILE)}")
                elif split == "train" and os.path.lexists(os.path.join(dst, VAL_LABEL_FILE)):
                    staged.append((None, os.path.join(dst, VAL_LABEL_FILE), None, None))
                    notes.append(f"val: {os.path.join(dst, VAL_LABEL_FILE)} removed (no --val: its images are "
                                 f"training images again)")
                label_tmp = os.path.join(stage, spec.label_file)
                _write_label_file(label_tmp, result.lines)
                img_final = os.path.join(dst, spec.image_dir)
                in_place = _same_dir(img_final, images.where)
                img_tmp = None
                hows: Dict[str, int] = {}
                if not in_place:
                    img_tmp = os.path.join(stage, spec.image_dir)
                    os.makedirs(img_tmp)
                    for name in tqdm(all_images, desc=f"write {spec.image_dir}", unit="img",
                                     file=sys.stderr, disable=not progress):
                        how = images.place(name, os.path.join(img_tmp, name), symlink)
                        hows[how] = hows.get(how, 0) + 1
                how_text = ", ".join(f"{n} {h}" for h, n in hows.items()) if hows else "already in place"
                notes.append(f"{split}: images from {images.where} ({how_text}) -> {img_final}/; "
                             f"GT from {gts.where} -> {os.path.join(dst, spec.label_file)}")
            finally:
                images.close()
                gts.close()
            staged.append((label_tmp, os.path.join(dst, spec.label_file), img_tmp, img_final))
            summary[split] = result.stats
        trash = os.path.join(stage, "replaced")
        os.makedirs(trash)
        for label_tmp, label_final, img_tmp, img_final in staged:
            if img_tmp is not None:
                _replace(img_tmp, img_final, trash)
            if label_tmp is None:  # an output to remove
                os.rename(label_final, os.path.join(trash, os.path.basename(label_final)))
            else:
                _replace(label_tmp, label_final, trash)
        done = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created_dst and not done and not os.listdir(dst):
            os.rmdir(dst)
    for note in notes:
        print(note)
    return summary


def print_summary(summary: Dict[str, Dict[str, int]]) -> None:
    ordered = {k: summary[k] for k in ("train", "val", "test") if k in summary}
    for split, s in ordered.items():
        print(f"{split}: {s['images']} images, {s['boxes']} boxes ({s['care']} care, {s['dont_care']} don't care), "
              f"{s['skipped_lines']} bad line(s) skipped")
    print(json.dumps(ordered))


def parse_splits(text: str) -> List[str]:
    splits = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(SPLITS)}, got {text!r}")
    return list(dict.fromkeys(splits))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, help="folder with the official ICDAR2015 zips or extracted folders")
    parser.add_argument("--dst", required=True, help="output folder (e.g. train_data/icdar2015/text_localization)")
    parser.add_argument("--splits", type=parse_splits, default=["train", "test"],
                        help="comma-separated splits to convert (default: train,test)")
    parser.add_argument("--force", action="store_true", help="replace existing label files / image folders")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="skip (and count) invalid GT lines instead of stopping at the first one")
    parser.add_argument("--symlink", action="store_true",
                        help="symlink images instead of hard-linking / copying them (folder sources only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--val", type=int, default=0, metavar="N",
                        help=f"hold out N training images as a validation set ({VAL_LABEL_FILE}); default 0")
    parser.add_argument("--val-seed", type=int, default=0, metavar="S",
                        help="seed of the held-out sample (default 0)")
    args = parser.parse_args(argv)
    if args.val < 0:
        parser.error(f"--val must be >= 0, got {args.val}")

    def body() -> int:
        print_summary(prepare(args.src, args.dst, args.splits, force=args.force, skip_bad_lines=args.skip_bad_lines,
                              symlink=args.symlink, progress=not args.no_progress, val=args.val,
                              val_seed=args.val_seed))
        return 0
    return run_tool("prepare_icdar2015", body)


if __name__ == "__main__":
    sys.exit(main())
