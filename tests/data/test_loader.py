"""build_dataloader: rank sharding, eval collation, bad-sample policies through worker processes,
persistent workers."""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from dbnetpp.data.dataset import SimpleDataSet
from dbnetpp.data.loader import SKIPPED_KEY, ShardedBatchSampler, build_dataloader, collate_samples, num_samples
from dbnetpp.data.transforms.decode_image import DecodeImage
from dbnetpp.data.transforms.det_label_encode import DetLabelEncode
from dbnetpp.errors import ConfigError, DataError

from testutil import last_line_json

BOX = {"transcription": "a,b", "points": [[1, 1], [9, 1], [9, 6], [1, 6]]}


def write_set(root: Path, n: int, name: str = "label.txt") -> Path:
    """``n`` PNGs; image i has i % 3 boxes, so images 0, 3, 6, ... have none."""
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        cv2.imwrite(str(root / "imgs" / f"img_{i}.png"), np.full((12, 10 + i % 4, 3), i, np.uint8))
        lines.append(f"imgs/img_{i}.png\t{json.dumps([BOX] * (i % 3))}")
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


def insert_lines(label: Path, at: dict) -> None:
    """Insert raw lines so that they end up at the given 1-based line numbers."""
    lines = label.read_bytes().splitlines()
    for lineno in sorted(at):
        lines.insert(lineno - 1, at[lineno])
    label.write_bytes(b"\n".join(lines) + b"\n")


class Pipeline:
    """DecodeImage + DetLabelEncode + a fixed-size resize that keeps the eval keys."""

    def __init__(self):
        self.decode, self.encode = DecodeImage(img_mode="BGR"), DetLabelEncode()

    def __call__(self, data):
        data = self.encode(self.decode(data))
        return {"image": cv2.resize(data["image"], (16, 12)).astype(np.float32), "polys": data["polys"],
                "ignore_tags": data["ignore_tags"], "img_path": data["img_path"],
                "pid": np.int64(os.getpid()), "rand": np.float32(np.random.rand())}


def config(root: Path, label: Path, mode: str = "Eval", batch_size: int = 2, num_workers: int = 0, **loader):
    return {mode: {"dataset": {"name": "SimpleDataSet", "data_dir": str(root), "label_file_list": [str(label)],
                               "transforms": Pipeline()},
                   "loader": {"batch_size_per_card": batch_size, "num_workers": num_workers,
                              "shuffle": mode == "Train", "drop_last": False, **loader}}}


def names(batch):
    return [os.path.basename(p) for p in batch.get("img_path", [])]


class Plan:
    """Stand-in dataset exposing only what the sampler uses."""

    def __init__(self, n):
        self.num_samples = n

    def epoch_indices(self, epoch):
        return list(np.random.RandomState(epoch).permutation(self.num_samples))


@pytest.mark.smoke
@pytest.mark.parametrize("n, world_size, batch_size", [(7, 2, 2), (7, 3, 2), (2, 4, 1), (10, 2, 3)])
def test_eval_sharding_covers_every_sample_exactly_once(n, world_size, batch_size):
    seen = []
    for rank in range(world_size):
        sampler = ShardedBatchSampler(Plan(n), batch_size, rank=rank, world_size=world_size, pad=False,
                                      auto_epoch=False)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(b) <= batch_size for b in batches)
        seen.extend(i for b in batches for _, i in b)
    assert sorted(seen) == list(range(n))


def test_train_sharding_pads_to_equal_steps_and_reshuffles_per_epoch():
    per_rank = {}
    for rank in range(2):
        sampler = ShardedBatchSampler(Plan(7), 2, rank=rank, world_size=2, pad=True)
        sampler.set_epoch(3)
        per_rank[rank] = [i for b in sampler for _, i in b]
        assert sampler.epoch == 4 and len(sampler) == 2
        sampler.set_epoch(3)
        assert [i for b in sampler for _, i in b] == per_rank[rank]  # same epoch, same order
        assert [i for b in sampler for _, i in b] != per_rank[rank]  # epoch advanced by itself
    assert len(per_rank[0]) == len(per_rank[1]) == 4
    assert set(per_rank[0]) | set(per_rank[1]) == set(range(7))
    dropping = ShardedBatchSampler(Plan(7), 3, drop_last=True, rank=1, world_size=2)
    assert len(dropping) == 1 and [len(b) for b in dropping] == [3]


def test_train_sharding_gives_each_rank_paddles_distributed_batches():
    """Without shuffling, every rank gets the batches paddle.io.DistributedBatchSampler (PaddleOCR's
    sampler) gives it: the same padding, the same block of each global batch, the same last batch and
    drop_last, the same length."""
    import itertools

    class Ordered(Plan):
        def epoch_indices(self, epoch):
            return list(range(self.num_samples))

        def __len__(self):
            return self.num_samples

    for n, bs, world, drop_last in itertools.product(range(1, 19), (1, 2, 3, 4), (1, 2, 3), (False, True)):
        for rank in range(world):
            ours = ShardedBatchSampler(Ordered(n), bs, drop_last=drop_last, rank=rank, world_size=world)
            theirs = paddle.io.DistributedBatchSampler(Ordered(n), bs, num_replicas=world, rank=rank, shuffle=False,
                                                       drop_last=drop_last)
            assert [[i for _, i in b] for b in ours] == list(theirs), (n, bs, world, drop_last, rank)
            assert len(ours) == len(theirs), (n, bs, world, drop_last, rank)


def test_eval_loader_on_two_ranks_sees_each_image_once(tmp_path):
    label = write_set(tmp_path, 7)
    seen = []
    for rank, sizes in ((0, [3]), (1, [3, 1])):  # contiguous parts of 3 and 4 images, no padding
        loader = build_dataloader(config(tmp_path, label, batch_size=3), "Eval", rank=rank, world_size=2)
        batches = list(loader)
        assert len(loader) == len(batches) and [num_samples(b) for b in batches] == sizes
        seen.extend(name for batch in batches for name in names(batch))
    assert sorted(seen) == sorted(f"img_{i}.png" for i in range(7))


@pytest.mark.parametrize("shared_memory", [True, False])
def test_eval_batches_keep_ragged_keys_as_lists_across_workers(tmp_path, shared_memory):
    label = write_set(tmp_path, 5)
    loader = build_dataloader(config(tmp_path, label, batch_size=4, num_workers=2,
                                     use_shared_memory=shared_memory), "Eval")
    batches = list(loader)
    assert [num_samples(b) for b in batches] == [4, 1]
    first = batches[0]
    assert isinstance(first["image"], paddle.Tensor) and first["image"].shape == [4, 12, 16, 3]
    assert isinstance(first["polys"], list) and [p.shape for p in first["polys"]] == [(0, 4, 2), (1, 4, 2),
                                                                                       (2, 4, 2), (0, 4, 2)]
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float32 for p in first["polys"])
    np.testing.assert_array_equal(first["polys"][2][1], np.array(BOX["points"], np.float32))
    assert [t.tolist() for t in first["ignore_tags"]] == [[], [False], [False, False], []]
    assert names(first) == ["img_0.png", "img_1.png", "img_2.png", "img_3.png"]
    assert SKIPPED_KEY not in first  # policy "fail" adds no skip list


def test_skip_policy_drops_and_counts_bad_samples_through_two_workers(tmp_path):
    label = write_set(tmp_path, 8)
    (tmp_path / "imgs" / "empty.png").write_bytes(b"")
    (tmp_path / "imgs" / "text.png").write_text("not an image")
    insert_lines(label, {3: b"imgs/missing.png\t[]", 4: b"imgs/empty.png\t[]", 7: b"imgs/text.png\t[]",
                         10: b"imgs/img_1.png\t{not json"})
    loader = build_dataloader(config(tmp_path, label, batch_size=2, num_workers=2), "Eval", policy="skip")
    batches = list(loader)
    assert len(batches) == 6
    assert [num_samples(b) for b in batches] == [2, 0, 2, 1, 1, 2]
    assert batches[1].keys() == {SKIPPED_KEY}  # both samples of the batch failed
    skipped = [s for b in batches for s in b[SKIPPED_KEY]]
    assert [s.split(": ", 1)[0] for s in skipped] == [f"{label}:{n}" for n in (3, 4, 7, 10)]
    assert "image not found" in skipped[0] and "empty" in skipped[1]
    assert "cannot decode" in skipped[2] and "not valid JSON" in skipped[3]
    assert sorted(n for b in batches for n in names(b)) == sorted(f"img_{i}.png" for i in range(8))

    train = build_dataloader(config(tmp_path, label, mode="Train", batch_size=3, num_workers=2), "Train",
                             policy="skip", seed=4)
    for epoch in (1, 2):
        train.batch_sampler.set_epoch(epoch)
        batches = list(train)
        assert sum(len(b[SKIPPED_KEY]) for b in batches) == 4
        assert sorted(n for b in batches for n in names(b)) == sorted(f"img_{i}.png" for i in range(8))


def test_fail_policy_names_file_and_line(tmp_path):
    label = write_set(tmp_path, 4)
    insert_lines(label, {3: b"imgs/missing.png\t[]"})
    with pytest.raises(DataError, match=rf"^{label}:3: image not found: .*missing\.png$"):
        build_dataloader(config(tmp_path, label), "Eval")  # found before the first batch

    label = write_set(tmp_path, 4)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    insert_lines(label, {4: b"imgs/broken.png\t[]"})
    loader = build_dataloader(config(tmp_path, label, num_workers=2), "Eval")
    seen = []
    with pytest.raises(DataError) as info:
        for batch in loader:
            seen.extend(names(batch))
    assert str(info.value).startswith(f"{label}:4: cannot decode image")
    assert (info.value.file, info.value.line) == (str(label), 4)
    assert seen == ["img_0.png", "img_1.png"]  # the batch holding the bad image is not delivered


def test_persistent_workers_keep_their_processes_and_samples_are_reproducible(tmp_path):
    label = write_set(tmp_path, 6)
    loader = build_dataloader(config(tmp_path, label, mode="Train", batch_size=2, num_workers=2), "Train", seed=3)
    assert loader.persistent_workers
    epochs = {}
    for epoch in (1, 2):
        loader.batch_sampler.set_epoch(epoch)
        batches = list(loader)
        epochs[epoch] = ([n for b in batches for n in names(b)],
                         {int(p) for b in batches for p in b["pid"].numpy()},
                         {n: float(r) for b in batches for n, r in zip(names(b), b["rand"].numpy())})
    (order1, pids1, rand1), (order2, pids2, rand2) = epochs[1], epochs[2]
    assert sorted(order1) == sorted(order2) == sorted(f"img_{i}.png" for i in range(6))
    assert order1 != order2
    assert pids1 == pids2 and len(pids1) == 2 and os.getpid() not in pids1
    assert rand1 != rand2

    loader.batch_sampler.set_epoch(1)  # a pass left unfinished restarts the workers for the next one
    next(iter(loader))
    loader.batch_sampler.set_epoch(1)
    again = list(loader)
    assert [n for b in again for n in names(b)] == order1
    new_pids = {int(p) for b in again for p in b["pid"].numpy()}
    assert len(new_pids) == 2 and not new_pids & pids1
    assert {int(p) for b in loader for p in b["pid"].numpy()} == new_pids

    single = build_dataloader(config(tmp_path, label, mode="Train", batch_size=2, num_workers=0), "Train", seed=3)
    single.batch_sampler.set_epoch(1)
    same = {n: float(r) for b in single for n, r in zip(names(b), b["rand"].numpy())}
    assert same == rand1  # augmentation randomness does not depend on the worker layout


def test_collate_errors_and_loader_options(tmp_path):
    with pytest.raises(ValueError, match=r"cannot stack key 'image' of shapes \[\(2,\), \(3,\)\]"):
        collate_samples([{"image": np.zeros(2)}, {"image": np.zeros(3)}])
    with pytest.raises(TypeError, match="samples must be dicts"):
        collate_samples([[np.zeros(2)], [np.zeros(2)]])
    label = write_set(tmp_path, 2)
    with pytest.raises(ConfigError, match="Global.bad_sample_policy"):
        build_dataloader(config(tmp_path, label), "Eval", policy="ignore")
    with pytest.raises(ConfigError, match="collate_fn"):
        build_dataloader(config(tmp_path, label, collate_fn="DictCollator"), "Eval")
    with pytest.raises(ConfigError, match="batch_size_per_card"):
        build_dataloader(config(tmp_path, label, batch_size=0), "Eval")
    with pytest.raises(ConfigError, match="Train.dataset"):
        build_dataloader(config(tmp_path, label), "Train")
    ds = SimpleDataSet(str(tmp_path), [str(label)], transforms=Pipeline(), mode="Eval")
    assert len(ShardedBatchSampler(ds, 1, pad=False)) == 2


_CLASH = r"""
import json, sys, time
import cv2
import numpy as np
from pathlib import Path
from dbnetpp.data import build_dataloader
from dbnetpp.errors import LoaderError
root = Path(sys.argv[1]); workers = int(sys.argv[2])
lines = []
for i, w in enumerate((32, 48, 32)):
    cv2.imwrite(str(root / f"img_{i}.png"), np.full((16, w, 3), 9, np.uint8))
    lines.append(f"img_{i}.png\t[]")
(root / "label.txt").write_text("\n".join(lines) + "\n")

def unresized(data):  # each image keeps its own size, as a keep-ratio resize would give
    return {"image": cv2.imdecode(np.frombuffer(data["image"], np.uint8), 1).astype(np.float32)}

cfg = {"Eval": {"dataset": {"name": "SimpleDataSet", "data_dir": str(root), "label_file_list": [str(root / "label.txt")],
                            "transforms": unresized},
                "loader": {"batch_size_per_card": 2, "num_workers": workers, "shuffle": False}}}
start = time.time()
try:
    for _ in build_dataloader(cfg, "Eval"):
        pass
except LoaderError as exc:
    print(json.dumps({"error": str(exc), "seconds": time.time() - start}))
"""


@pytest.mark.parametrize("workers", [0, 1])
def test_a_batch_that_cannot_be_made_ends_the_pass_with_an_error(tmp_path, workers):
    """Samples of different shapes in one batch: paddle's loader thread (0 workers) or worker (1) would die
    and leave the main process waiting forever; the error reaches the main process instead, naming the
    cause and the key to change."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _CLASH, str(tmp_path), str(workers)], capture_output=True, text=True,
                       timeout=120, cwd=str(Path(__file__).resolve().parents[2]))
    assert r.returncode == 0, r.stderr[-2000:]
    out = last_line_json(r.stdout)
    assert "cannot stack key 'image' of shapes [(16, 32, 3), (16, 48, 3)]" in out["error"], out
    assert "Eval.loader.batch_size_per_card" in out["error"], out
    assert out["seconds"] < 30, out


def test_every_label_is_checked_before_the_first_batch(tmp_path):
    """A broken label (JSON, box fields or numbers) anywhere in the file stops start-up, naming its line,
    instead of the epoch reaching it (policy fail); the image size checks wait for the decoded image."""
    label = write_set(tmp_path, 6)
    insert_lines(label, {4: b'imgs/img_1.png\t[{"transcription": "a", "points": [[1, 1], [9, true], [9, 6]]}]',
                         6: b'imgs/img_2.png\t[{"transcription": "a", "points": [[1, 1], [9, 1], [9, 6]]'})
    cfg = {"Eval": {"dataset": {"name": "SimpleDataSet", "data_dir": str(tmp_path), "label_file_list": [str(label)],
                                "transforms": [{"DecodeImage": {"img_mode": "BGR"}}, {"DetLabelEncode": None}]},
                    "loader": {"batch_size_per_card": 1}}}
    with pytest.raises(DataError) as exc:
        build_dataloader(cfg, "Eval")
    assert str(exc.value).startswith(f"{label}:4: label box 0: 'points' contains true/false"), str(exc.value)
    assert "(and 1 more bad sample(s))" in str(exc.value)
