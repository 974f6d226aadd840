"""``build_dataloader``: a ``paddle.io.DataLoader`` for the ``Train`` or ``Eval`` section.

* **Sharding.** :class:`ShardedBatchSampler` draws the epoch's indices
  (:meth:`SimpleDataSet.epoch_indices`, identical on every rank) and keeps this
  rank's share.  Training pads the list to a multiple of ``world_size`` so every
  rank runs the same number of steps, and gives each rank its block of every
  global batch as ``paddle.io.DistributedBatchSampler`` does; evaluation splits it
  into contiguous, pad-free parts, so every image is evaluated exactly once over all ranks.
  Call ``loader.batch_sampler.set_epoch(epoch)`` before each training epoch
  (without it the epoch counter advances by one per pass).
* **Workers.** With ``num_workers > 0`` the worker processes persist across epochs
  (``loader.persistent_workers``, default true); a pass that ends early (``break``,
  error) shuts them down and the next pass starts new ones.  ``use_shared_memory``
  comes from the config (default true).  Augmentation randomness is seeded per
  sample from ``(seed, epoch, index)``, so batches do not depend on ``num_workers``.
* **Batches** are dicts: array values of the samples are stacked (paddle Tensors,
  leading dim = batch), the ragged keys :data:`RAGGED_KEYS` stay Python lists of the
  per-sample values (NumPy arrays / strings), e.g. ``batch["polys"][i]`` is the
  float32 ``[N_i, P, 2]`` array of image ``i``.
* **Bad samples.** With policy ``"fail"`` the first failing sample raises a
  :class:`~dbnetpp.errors.DataError` naming ``label_file:line`` (bad label lines and
  missing images are found before the first batch).  With ``"skip"`` it is dropped
  from its batch and listed in ``batch["_skipped"]`` (``"file:line: reason"``; the key
  is present, possibly empty, in every batch); a batch whose samples all failed
  holds only ``_skipped`` (:func:`num_samples` returns 0).  Nothing is ever replaced
  by another sample.
* **Compaction** (``compact_batches``, default true; used with ``num_workers > 0``).  Batches
  travel from the workers in an exact, smaller form (:mod:`dbnetpp.data.compact`): float32 keys
  whose values are all exactly 0 or 1 (``shrink_map``, ``shrink_mask``, ``threshold_mask``) as
  uint8, and, when the transforms end with ``NormalizeImage(order: hwc)`` + ``ToCHWImage`` (+
  ``KeepKeys``), the uint8 HWC image, normalised in the main process by the same table look-up.
  The loader's iterator restores them, so its batches are value-, dtype- and shape-identical to
  ``compact_batches: false`` (~4 MB instead of ~11.5 MB per 640x640 training sample).
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np
import paddle

from ..errors import ConfigError, DataError, LoaderError
from ..registry import DATASETS
from .compact import COMPACT_KEY, compact_key, defer_normalisation, restore_batch
from .dataset import FailedSample

RAGGED_KEYS = ("polys", "ignore_tags", "texts", "img_path", "label")
SKIPPED_KEY = "_skipped"
POLICIES = ("fail", "skip")
_FAILED_KEY = "_failed"
_KEEPALIVE_KEY = "_keepalive"
_ERROR_KEY = "_error"


class _PassThrough:
    """Holds a value that paddle's DataLoader must carry unchanged.

    The loader turns every NumPy array it finds in a batch (also inside lists) into
    a Tensor and cannot move zero-size arrays between processes (an image without
    boxes has ``polys`` of shape ``[0, 4, 2]``).  Objects that are neither arrays nor
    sequences nor mappings travel as they are (pickled with the batch structure).
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return _PassThrough, (self.value,)


def _stackable(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (np.ndarray, np.generic, int, float)) and not isinstance(v, str) for v in values)


def collate_samples(samples: Sequence[Any], ragged_keys: Sequence[str] = RAGGED_KEYS,
                    compact: bool = False) -> Dict[str, Any]:
    """Stack a list of sample dicts (and :class:`FailedSample` s) into one batch.

    Runs inside the worker processes; :func:`finish_batch` completes the batch in
    the main process.  ``compact``: encode stackable keys with :func:`~dbnetpp.data.compact.compact_key`
    (listed in ``batch["_compact"]``).
    """
    encodings: Dict[str, str] = {}
    good = [s for s in samples if not isinstance(s, FailedSample)]
    failed = [tuple(s) for s in samples if isinstance(s, FailedSample)]
    batch: Dict[str, Any] = {}
    if good:
        if not all(isinstance(s, Mapping) for s in good):
            raise TypeError(f"samples must be dicts (end the transforms with KeepKeys), got {type(good[0]).__name__}")
        keys = list(good[0].keys())
        for s in good[1:]:
            if set(s.keys()) != set(keys):
                raise ValueError(f"samples of one batch have different keys: {sorted(keys)} vs {sorted(s.keys())}")
        for key in keys:
            values = [s[key] for s in good]
            if compact:
                encoding, packed = compact_key(values, stack=key not in ragged_keys)
                if encoding is not None:
                    batch[key], encodings[key] = packed, encoding
                    continue
                values = packed
            if key in ragged_keys or not _stackable(values):
                batch[key] = _PassThrough(values)
                continue
            shapes = {np.shape(v) for v in values}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack key '{key}' of shapes {sorted(shapes)}: only "
                                 f"{', '.join(ragged_keys)} are kept as per-sample lists")
            batch[key] = np.stack([np.asarray(v) for v in values])
    batch[_FAILED_KEY] = _PassThrough(failed)
    if encodings:
        batch[COMPACT_KEY] = _PassThrough(encodings)
    if not any(isinstance(v, np.ndarray) for v in batch.values()):
        # paddle's loader ends the epoch (one process) or crashes (workers) on a batch
        # without any array, e.g. when every sample failed.
        batch[_KEEPALIVE_KEY] = np.zeros((1,), np.int32)
    return batch


def collate_or_error(samples: Sequence[Any], compact: bool = False, section: str = "") -> Dict[str, Any]:
    """:func:`collate_samples` that never raises: an exception becomes a batch carrying its message.

    An exception escaping a collate function kills paddle's loader thread (no workers: the main
    process then waits for a batch forever) or worker (``SystemError: Blocking queue is killed``);
    carried in the batch, :func:`finish_batch` raises it in the main process as a :class:`LoaderError`.
    """
    try:
        return collate_samples(samples, compact=compact)
    except Exception as exc:  # any failure must reach the main process, never stall the loader
        where = f"{section}.loader: " if section else ""
        hint = ""
        if "cannot stack" in str(exc):
            hint = (f" (check {section or 'the'}.loader.batch_size_per_card: images resized to different sizes "
                    f"cannot share a batch; use 1, or a resize to a fixed size)")
        return {_ERROR_KEY: _PassThrough(f"{where}cannot make a batch: {type(exc).__name__}: {exc}{hint}"),
                _KEEPALIVE_KEY: np.zeros((1,), np.int32)}


def finish_batch(batch: Dict[str, Any], policy: str, normalize=None) -> Dict[str, Any]:
    """Unwrap pass-through values, undo compaction and apply the bad-sample policy (main process).

    ``normalize``: the ``NormalizeImage`` whose step the workers deferred (if any).  A batch the
    workers could not make (see :func:`collate_or_error`) raises :class:`~dbnetpp.errors.LoaderError`.
    """
    if _ERROR_KEY in batch:
        raise LoaderError(batch[_ERROR_KEY].value)
    failed = batch.pop(_FAILED_KEY).value
    batch.pop(_KEEPALIVE_KEY, None)
    encodings = batch.pop(COMPACT_KEY, None)
    for key, value in batch.items():
        if isinstance(value, _PassThrough):
            batch[key] = value.value
    if encodings is not None:
        restore_batch(batch, encodings.value, normalize)
    if policy == "fail" and failed:
        file, line, message = failed[0]
        raise DataError(message, file, line)
    if policy == "skip":
        batch[SKIPPED_KEY] = [str(FailedSample(*f)) for f in failed]
    return batch


def num_samples(batch: Mapping[str, Any]) -> int:
    """Number of samples in a finished batch (0 when every sample was skipped)."""
    for key, value in batch.items():
        if key == SKIPPED_KEY:
            continue
        if isinstance(value, list):
            return len(value)
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
    return 0


class ShardedBatchSampler:
    """Batches of ``(epoch, index)`` for one rank.

    Args:
        dataset: provides ``epoch_indices(epoch)`` and ``num_samples``.
        batch_size: samples per batch on this rank.
        drop_last: drop this rank's last incomplete batch.
        rank, world_size: this process and the number of processes.
        pad: repeat indices so every rank gets ``ceil(n / world_size)`` (training);
            without it the ranks get contiguous, disjoint parts covering each index once.
        auto_epoch: advance the epoch by one after each pass (training).
    """

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, rank: int = 0, world_size: int = 1,
                 pad: bool = True, auto_epoch: bool = True):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid rank {rank} for world_size {world_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.auto_epoch = auto_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _local_count(self) -> int:
        n, w = self.dataset.num_samples, self.world_size
        if self.pad:
            return math.ceil(n / w)
        return n * (self.rank + 1) // w - n * self.rank // w

    def local_indices(self, epoch: int) -> List[int]:
        """This rank's dataset indices for ``epoch``, in visiting order.

        Training (``pad``) shares out the epoch's list as ``paddle.io.DistributedBatchSampler`` (PaddleOCR's
        sampler) does: padded with its own first entries to a multiple of ``world_size``, then global step
        ``k`` takes the next ``batch_size * world_size`` entries, rank ``r`` the ``r``-th block of
        ``batch_size`` of them (a shorter last step is split evenly).  Without shuffling, every rank sees
        PaddleOCR's batches."""
        indices = list(self.dataset.epoch_indices(epoch))
        n, w, bs = len(indices), self.world_size, self.batch_size
        if not self.pad:
            return indices[n * self.rank // w: n * (self.rank + 1) // w]
        total = math.ceil(n / w) * w
        while len(indices) < total:
            indices.extend(indices[: total - len(indices)])
        tail = total % (bs * w)  # a multiple of w
        local: List[int] = []
        for start in range(self.rank * bs, total - tail, bs * w):
            local.extend(indices[start:start + bs])
        share = tail // w
        local.extend(indices[total - tail + self.rank * share: total - tail + (self.rank + 1) * share])
        return local

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        epoch = self.epoch
        if self.auto_epoch:
            self.epoch += 1
        indices = self.local_indices(epoch)
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start:start + self.batch_size]
            if len(chunk) < self.batch_size and self.drop_last:
                break
            yield [(epoch, i) for i in chunk]

    def __len__(self) -> int:
        count = self._local_count()
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)


class DetDataLoader(paddle.io.DataLoader):
    """``paddle.io.DataLoader`` whose batches pass through :func:`finish_batch`.

    ``compact_batches`` (with workers only): compact batches in the workers and restore them
    here (see the module docstring).  ``loader.dataset`` is then a shallow copy of ``dataset``
    whose transforms defer the final normalisation (when that applies); ``dataset`` is unchanged.
    """

    def __init__(self, dataset, batch_sampler: ShardedBatchSampler, policy: str = "fail", num_workers: int = 0,
                 use_shared_memory: bool = True, persistent_workers: bool = True, prefetch_factor: int = 2,
                 compact_batches: bool = True, section: str = ""):
        persistent = bool(persistent_workers) and num_workers > 0
        self.compact_batches = bool(compact_batches) and num_workers > 0
        self._normalize = None
        if self.compact_batches:
            deferred = defer_normalisation(getattr(dataset, "transforms", None))
            if deferred is not None:
                dataset = copy.copy(dataset)
                dataset.transforms, self._normalize = deferred
        collate = functools.partial(collate_or_error, compact=self.compact_batches, section=section)
        super().__init__(dataset, batch_sampler=batch_sampler, collate_fn=collate, num_workers=num_workers,
                         use_shared_memory=use_shared_memory, return_list=True, prefetch_factor=prefetch_factor,
                         persistent_workers=persistent)
        self.policy = policy
        self.persistent_workers = persistent
        self._pass_open = False

    def _drop_workers(self) -> None:
        """Shut the persistent workers down; the next pass starts fresh ones."""
        old = getattr(self, "_iterator", None)
        if old is None:
            return
        self._iterator = None
        shutdown = getattr(old, "_try_shutdown_all", None)
        if callable(shutdown):
            shutdown()

    def __iter__(self):
        # paddle's persistent iterator cannot start a new pass after one that was left
        # unfinished (break or error): its reset loses track of the batches in flight
        # ("pop from empty list").  So a pass that ends early shuts the workers down
        # (at once, rather than at exit) and the next pass starts fresh ones.
        if self._pass_open:
            self._drop_workers()
        self._pass_open = True
        try:
            for batch in super().__iter__():
                yield finish_batch(batch, self.policy, self._normalize)
        except BaseException:  # also GeneratorExit: the caller stopped early
            self._drop_workers()
            raise
        self._pass_open = False

    def __call__(self):
        return self.__iter__()


def _int_option(loader_cfg: Mapping[str, Any], key: str, default: int, minimum: int, mode: str) -> int:
    value = loader_cfg.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"must be an integer >= {minimum}, got {value!r}", key=f"{mode}.loader.{key}")
    return value


def _bool_option(loader_cfg: Mapping[str, Any], key: str, default: bool, mode: str) -> bool:
    value = loader_cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}", key=f"{mode}.loader.{key}")
    return value


def build_dataloader(config: Mapping[str, Any], mode: str, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                     policy: str = "fail") -> DetDataLoader:
    """DataLoader of ``config[mode]`` (``mode`` is ``"Train"`` or ``"Eval"``) for this rank.

    ``seed`` seeds line sampling, shuffling and per-sample augmentation (with the
    epoch); ``policy`` is ``"fail"`` or ``"skip"`` (see the module docstring).
    """
    if mode not in ("Train", "Eval"):
        raise ConfigError(f"mode must be 'Train' or 'Eval', got {mode!r}")
    if policy not in POLICIES:
        raise ConfigError(f"must be 'fail' or 'skip', got {policy!r}", key="Global.bad_sample_policy")
    section = config.get(mode)
    if not isinstance(section, Mapping) or not isinstance(section.get("dataset"), Mapping):
        raise ConfigError("missing section", key=f"{mode}.dataset")
    loader_cfg = section.get("loader") or {}
    if loader_cfg.get("collate_fn") is not None:
        raise ConfigError("custom collate functions are not supported for detection; remove the key",
                          key=f"{mode}.loader.collate_fn")
    is_train = mode == "Train"
    ds_cfg = dict(section["dataset"])
    transforms = ds_cfg.pop("transforms", None)
    ds_cfg.setdefault("shuffle", bool(loader_cfg.get("shuffle", is_train)))
    dataset = DATASETS.build(ds_cfg, where=f"{mode}.dataset", transforms=transforms, mode=mode, seed=seed)

    if policy == "fail":
        problems = dataset.check(max_errors=1000)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more bad sample(s))" if len(problems) > 1 else ""
            raise DataError(first.raw_message + more, first.file, first.line)
    dataset.capture_errors = True

    sampler = ShardedBatchSampler(
        dataset, _int_option(loader_cfg, "batch_size_per_card", 1, 1, mode),
        drop_last=bool(loader_cfg.get("drop_last", False)), rank=rank, world_size=world_size,
        pad=is_train, auto_epoch=is_train)
    use_shm = loader_cfg.get("use_shared_memory", True)
    persistent = loader_cfg.get("persistent_workers", True)
    return DetDataLoader(
        dataset, sampler, policy=policy,
        num_workers=_int_option(loader_cfg, "num_workers", 0, 0, mode),
        use_shared_memory=True if use_shm is None else bool(use_shm),
        persistent_workers=True if persistent is None else bool(persistent),
        prefetch_factor=_int_option(loader_cfg, "prefetch_factor", 2, 1, mode),
        compact_batches=_bool_option(loader_cfg, "compact_batches", True, mode), section=mode)
