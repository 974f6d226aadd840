"""``SimpleDataSet``: samples from PaddleOCR label files, run through the transform pipeline.

Same YAML keys and meaning as PaddleOCR's ``SimpleDataSet``::

    Train:
      dataset:
        name: SimpleDataSet
        data_dir: ./train_data/icdar2015/text_localization/
        label_file_list: [./train_data/icdar2015/text_localization/train_icdar2015_label.txt]
        ratio_list: [1.0]          # per label file: fraction of its lines drawn each epoch
        delimiter: "\\t"
        transforms: [...]

Differences, all on purpose:

* A sample that cannot be loaded or transformed is never replaced by another one
  (PaddleOCR substitutes a random sample in training and the *next* image in
  evaluation, which counts that image twice).  Either the error is raised naming
  ``label_file:line`` or, when the loader runs with policy ``"skip"``, the sample
  comes back as a :class:`FailedSample` that the collate function drops and counts.
* Any other exception of a sample (``MemoryError``, a bug in a transform) is never
  skipped.  When the loader captures errors it travels to the main process as a
  crash record (see :class:`FailedSample`) and is raised there as
  :class:`SampleCrashError`, naming ``label_file:line`` and where it was raised:
  raising it in paddle's single-process loader thread would kill that thread and
  leave the training loop waiting forever.
* Indices are stable: ``dataset[i]`` is the ``i``-th non-blank line over all label
  files.  The per-epoch choice of lines (``ratio_list`` sampling and shuffling) is
  :meth:`SimpleDataSet.epoch_indices`, which the batch sampler calls in the main
  process, so persistent worker processes never need to learn the epoch.
* Each sample's augmentation randomness is seeded from ``(seed, epoch, index)``: the
  same epoch gives the same augmented sample whatever the number of workers or ranks,
  which also makes a resumed run reproduce the original one.
"""
from __future__ import annotations

import contextlib
import os
import random
import traceback
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from paddle.io import Dataset

from ..errors import ConfigError, DataError, cwd_hint
from ..registry import DATASETS
from .label_file import parse_label_line, read_raw_lines
from .transforms import create_transforms
from .transforms.det_label_encode import DetLabelEncode

# Failures of a single sample: bad label line, unreadable / undecodable image, invalid
# geometry found by a transform.  Anything else is a bug: raised, never skipped.
SAMPLE_ERRORS = (DataError, cv2.error, OSError)


class SampleCrashError(DataError):
    """A sample raised an unexpected exception (not a data error); raised in the main process."""


class SampleCrash(str):
    """Message of a crash record: the text of an unexpected exception and where it was raised."""

    def __reduce__(self):
        return SampleCrash, (str(self),)

    @classmethod
    def from_exception(cls, exc: BaseException) -> "SampleCrash":
        frames = traceback.format_tb(exc.__traceback__)
        where = "".join(frames[-8:]).rstrip()
        text = f"{type(exc).__name__}: {exc}".strip()
        return cls(f"unexpected {text} (a bug or an exhausted resource, not a data error: never skipped)"
                   f"\n  raised at (most recent call last):\n{where}")


class _FailedSampleFields(NamedTuple):
    file: str
    line: int
    message: str


class FailedSample(_FailedSampleFields):
    """Stand-in returned for a sample that failed, when errors are captured.

    ``message`` is a :class:`SampleCrash` for an unexpected exception (:meth:`crashed`).  Such a
    record can never become a skipped sample: building a ``FailedSample`` from its fields (which
    the loader does in the main process for every failure it skips) raises
    :class:`SampleCrashError`; the loader's ``"fail"`` policy raises it as a ``DataError``.
    """

    __slots__ = ()

    def __new__(cls, file: str, line: int, message: str):
        if isinstance(message, SampleCrash):
            raise SampleCrashError(str(message), file, line)
        return super().__new__(cls, file, line, message)

    @classmethod
    def crashed(cls, file: str, line: int, exc: BaseException) -> "FailedSample":
        """The crash record of ``exc`` (built without raising, to travel to the main process)."""
        return cls._make((file, line, SampleCrash.from_exception(exc)))

    def __reduce__(self):
        return FailedSample._make, (tuple(self),)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Record(NamedTuple):
    source: int  # index into label_file_list
    line: int  # 1-based line number
    raw: bytes  # the line, undecoded


def read_image_bytes(path: str) -> bytes:
    """Bytes of an image file; a missing, unreadable or empty file raises :class:`DataError`."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"image path is a directory: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror}") from None
    if not raw:
        raise DataError(f"image file is empty (0 bytes): {path}")
    return raw


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """32-bit seed of one sample's augmentation, mixed from ``(seed, epoch, index)``."""
    state = np.random.SeedSequence([seed % 2 ** 32, epoch % 2 ** 32, index % 2 ** 32]).generate_state(1)
    return int(state[0])


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed Python's and NumPy's global RNGs for the block, then restore their states."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _identity(data: Dict[str, Any]) -> Dict[str, Any]:
    return data


def _build_transforms(transforms: Union[None, Callable, Sequence], mode: str) -> Callable:
    if transforms is None:
        return _identity
    if callable(transforms):
        return transforms
    if not isinstance(transforms, (list, tuple)):
        raise ConfigError(f"transforms must be a list of {{Name: args}} items, got {type(transforms).__name__}",
                          key=f"{mode}.dataset.transforms")
    return create_transforms(list(transforms), where=f"{mode}.dataset.transforms")


@DATASETS.register()
class SimpleDataSet(Dataset):
    """Detection samples listed in PaddleOCR label files.

    Args:
        data_dir: folder the image paths of the label files are relative to.
        label_file_list: label file path(s), lines ``image_path<delimiter>label``.
        ratio_list: fraction in (0, 1] of each label file drawn per epoch (one number
            applies to every file).  In training, lines are drawn with ``random.sample``
            seeded by ``seed + epoch``, as PaddleOCR does when it rebuilds its dataset
            with ``seed=epoch``; in evaluation a file with ratio 1 is used whole and in order.
        delimiter: separator between image path and label.
        shuffle: shuffle the drawn lines each epoch (training only; the loader passes
            ``loader.shuffle`` when the dataset section does not set it).
        transforms: list of ``{Name: args}`` items (built with ``create_transforms``),
            or an already built callable ``data -> data``.
        mode: ``"Train"`` or ``"Eval"``.
        seed: base seed of line sampling, shuffling and per-sample augmentation.

    ``dataset[i]`` (or ``dataset[(epoch, i)]``) returns the transformed sample dict,
    built from ``{"img_path": str, "label": str, "image": bytes}``.
    """

    def __init__(self, data_dir: str, label_file_list: Union[str, Sequence[str]],
                 ratio_list: Union[float, Sequence[float]] = 1.0, delimiter: str = "\t",
                 shuffle: bool = False, transforms: Union[None, Callable, Sequence] = None,
                 mode: str = "Train", seed: int = 0):
        super().__init__()
        if mode.lower() not in ("train", "eval", "test"):
            raise ConfigError(f"mode must be 'Train' or 'Eval', got {mode!r}")
        self.mode = mode
        self.is_train = mode.lower() == "train"
        if not isinstance(data_dir, str) or not data_dir:
            raise ConfigError(f"data_dir must be a folder path, got {data_dir!r}", key=f"{mode}.dataset.data_dir")
        self.data_dir = data_dir
        files = [label_file_list] if isinstance(label_file_list, str) else list(label_file_list or [])
        if not files or not all(isinstance(f, str) and f for f in files):
            raise ConfigError(f"label_file_list must be a non-empty list of paths, got {label_file_list!r}",
                              key=f"{mode}.dataset.label_file_list")
        self.label_file_list = files
        self.ratio_list = self._check_ratios(ratio_list, len(files), mode)
        if not isinstance(delimiter, str) or not delimiter:
            raise ConfigError(f"delimiter must be a non-empty string, got {delimiter!r}",
                              key=f"{mode}.dataset.delimiter")
        self.delimiter = delimiter
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.transforms = _build_transforms(transforms, mode)
        # When True, a failing sample comes back as a FailedSample instead of raising
        # (the loader sets it and applies its policy to the collected failures).
        self.capture_errors = False

        self._records: List[_Record] = []
        self._bounds = [0]
        for source, path in enumerate(files):
            self._records.extend(_Record(source, lineno, raw) for lineno, raw in read_raw_lines(path))
            self._bounds.append(len(self._records))
        empty = [f for i, f in enumerate(files) if self._bounds[i + 1] == self._bounds[i]]
        if empty:
            raise DataError("label file has no samples", empty[0])
        for i, (path, ratio, count) in enumerate(zip(files, self.ratio_list, self._file_counts())):
            if count == 0:
                lines = self._bounds[i + 1] - self._bounds[i]
                raise ConfigError(f"ratio {ratio:g} of the {lines} line(s) of {path} rounds to 0 samples per epoch; "
                                  f"raise it to at least {1 / lines:.3g}", key=f"{mode}.dataset.ratio_list")

    def check_unique_images(self) -> None:
        """:class:`DataError` naming both lines when an image is listed twice: an evaluation set names each
        image once (a second line would count its boxes twice)."""
        seen: Dict[bytes, Tuple[str, int]] = {}
        delim = self.delimiter.encode("utf-8")
        for rec in self._records:
            image = rec.raw.split(delim, 1)[0].strip()
            file = self.label_file_list[rec.source]
            if image in seen:
                first = seen[image]
                raise DataError(f"image {image.decode('utf-8', 'replace')!r} is already listed at {first[0]}:{first[1]}; "
                                f"an evaluation would count its boxes twice", file, rec.line)
            seen[image] = (file, rec.line)

    @staticmethod
    def _check_ratios(ratio_list, n_files: int, mode: str) -> List[float]:
        key = f"{mode}.dataset.ratio_list"
        if isinstance(ratio_list, (int, float, str)):
            ratios = [ratio_list] * n_files
        elif isinstance(ratio_list, (list, tuple)):
            ratios = list(ratio_list)
        else:
            raise ConfigError(f"must be a number or a list of numbers, got {ratio_list!r}", key=key)
        if len(ratios) != n_files:
            raise ConfigError(f"has {len(ratios)} value(s) but label_file_list has {n_files} file(s)", key=key)
        for r in ratios:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
                raise ConfigError(f"every ratio must be a number in (0, 1], got {r!r}", key=key)
        return [float(r) for r in ratios]

    # -- epoch plan -----------------------------------------------------------
    def __len__(self) -> int:
        """Number of samples (non-blank lines) over all label files."""
        return len(self._records)

    @property
    def num_samples(self) -> int:
        """Samples drawn per epoch: ``sum(round(lines_i * ratio_i))``."""
        return sum(self._file_counts())

    def _file_counts(self) -> List[int]:
        return [round((self._bounds[i + 1] - self._bounds[i]) * r) for i, r in enumerate(self.ratio_list)]

    def epoch_indices(self, epoch: int = 0) -> List[int]:
        """Indices drawn for ``epoch``, in the order they are visited.

        Follows PaddleOCR's ``SimpleDataSet``: each label file contributes
        ``round(n * ratio)`` lines chosen by ``random.sample`` (always in training,
        in evaluation only when ratio < 1), then training with ``shuffle`` shuffles
        the lot; both use a ``random.Random`` seeded with ``seed + epoch``.
        """
        seed = self.seed + int(epoch)
        picked: List[int] = []
        for i, count in enumerate(self._file_counts()):
            lines = range(self._bounds[i], self._bounds[i + 1])
            if self.is_train or self.ratio_list[i] < 1.0:
                picked.extend(random.Random(seed).sample(lines, count))
            else:
                picked.extend(lines)
        if self.is_train and self.shuffle:
            random.Random(seed).shuffle(picked)
        return picked

    # -- samples --------------------------------------------------------------
    def location(self, index: int) -> Tuple[str, int]:
        """``(label file, line number)`` of sample ``index``."""
        rec = self._records[index]
        return self.label_file_list[rec.source], rec.line

    def __getitem__(self, index: Union[int, Tuple[int, int]]):
        epoch, idx = index if isinstance(index, tuple) else (0, index)
        idx = int(idx)
        file, line = self.location(idx)
        try:
            return self._load(idx, int(epoch))
        except SAMPLE_ERRORS as exc:
            message = exc.raw_message if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}".strip()
            if isinstance(exc, DataError) and exc.file is not None and exc.file != file:
                message = str(exc)  # the error names another file (e.g. an image): keep its location
            if self.capture_errors:
                return FailedSample(file, line, message)
            raise DataError(message, file, line) from exc
        except Exception as exc:  # not a data error: a bug, raised and never skipped
            if self.capture_errors:
                return FailedSample.crashed(file, line, exc)
            if hasattr(exc, "add_note"):
                exc.add_note(f"while loading the sample of {file}:{line}")
            raise

    def _load(self, idx: int, epoch: int) -> Dict[str, Any]:
        rec = self._records[idx]
        file = self.label_file_list[rec.source]
        entry = parse_label_line(rec.raw, file, rec.line, self.data_dir, self.delimiter)
        data = {"img_path": entry.path, "label": entry.label, "image": read_image_bytes(entry.path)}
        try:
            with seeded_rngs(sample_seed(self.seed, epoch, idx)):
                out = self.transforms(data)
        except SAMPLE_ERRORS as exc:
            text = exc.raw_message if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}".strip()
            raise DataError(f"{text} (image {entry.path})") from exc
        if out is None:
            raise DataError(f"the transforms returned None for image {entry.path}")
        return out

    def check(self, max_errors: Optional[int] = None) -> List[DataError]:
        """Problems found without decoding: bad label lines (the whole label when the transforms have
        ``DetLabelEncode``; only the image-size checks wait for the decoded image) and missing images.

        Cheap (one ``stat`` per sample); the loader runs it before the first epoch
        under policy ``"fail"`` so a broken label file fails at start-up.  A ``data_dir``
        that is not a folder is a :class:`ConfigError` (key ``<mode>.dataset.data_dir``)
        rather than a missing image on every line.
        """
        if not os.path.isdir(self.data_dir):
            what = "is not a folder" if os.path.exists(self.data_dir) else "not found"
            raise ConfigError(f"data_dir {what}: {self.data_dir}{cwd_hint(self.data_dir)} (the image paths of "
                              f"{', '.join(self.label_file_list)} are relative to it)",
                              key=f"{self.mode}.dataset.data_dir")
        errors: List[DataError] = []
        encode = next((t for t in getattr(self.transforms, "transforms", ()) if isinstance(t, DetLabelEncode)), None)
        for rec in self._records:
            file = self.label_file_list[rec.source]
            try:
                entry = parse_label_line(rec.raw, file, rec.line, self.data_dir, self.delimiter)
                if not os.path.isfile(entry.path):
                    raise DataError(f"image not found: {entry.path}", file, rec.line)
                if encode is not None:  # the whole label (JSON, boxes, numbers), so line 17 fails now, not at step 8
                    try:
                        encode({"label": entry.label})
                    except DataError as exc:
                        raise DataError(exc.raw_message, file, rec.line) from None
            except DataError as exc:
                errors.append(exc)
                if max_errors is not None and len(errors) >= max_errors:
                    break
        return errors
