"""Tests for core/models/data.py: the four sources, the split, standardization, eval subsets, fingerprints, safe
unpickling."""

import dataclasses
import os
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import LandscapeError
from core.models.data import Dataset, default_image_size, eval_subset, load_dataset, parse_spec

# ------------------------------------------------------------------------------------------------ helpers


def _unstandardize(ds: Dataset, x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(ds.mean).view(1, -1, 1, 1)
    s = torch.tensor(ds.std).view(1, -1, 1, 1)
    return x * s + m


def _keys(x01: torch.Tensor, scale: float) -> list[bytes]:
    """Exact per-image keys: images whose values are multiples of 1/scale, as integer bytes."""
    q = x01.double() * scale
    assert (q - q.round()).abs().max() < 1e-3, "values are not on the expected 1/scale grid"
    return [row.tobytes() for row in q.round().long().flatten(1).numpy()]


@pytest.fixture(scope="module")
def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset("synthetic")


# ------------------------------------------------------------------------------------------------ specs


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("digits", ("digits", None)),
        ("synthetic", ("synthetic", None)),
        ("folder:/x/y", ("folder", "/x/y")),
        ("cifar10:/d", ("cifar10", "/d")),
        ("folder:C:/data", ("folder", "C:/data")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "mnist", "folder", "folder:", "cifar10:", "digits:/x", "/some/path"])
def test_parse_spec_rejects(spec):
    with pytest.raises(LandscapeError):
        parse_spec(spec)


def test_default_image_size():
    assert [default_image_size(s) for s in ("digits", "synthetic", "cifar10:/d", "folder:/x")] == [16, 16, 32, 32]
    with pytest.raises(LandscapeError):
        default_image_size("imagenet")


@pytest.mark.parametrize(
    "kwargs", [{"image_size": 0}, {"val_fraction": 0.0}, {"val_fraction": 1.0}, {"max_train": 0}, {"max_train": -3}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(LandscapeError):
        load_dataset("synthetic", **kwargs)


# ------------------------------------------------------------------------------------------------ digits


def test_digits_shapes_classes_split_sizes(digits, raw_digits):
    images, target = raw_digits
    n = len(target)
    n_val = int(np.floor(n * 0.2 + 0.5))
    assert digits.train_x.shape == (n - n_val, 1, 16, 16)
    assert digits.val_x.shape == (n_val, 1, 16, 16)
    assert digits.train_x.dtype == torch.float32 and digits.val_x.dtype == torch.float32
    assert digits.train_y.dtype == torch.int64 and digits.val_y.shape == (n_val,)
    assert digits.classes == tuple(str(i) for i in range(10))
    assert (digits.image_size, digits.in_chans, digits.num_classes, digits.skipped) == (16, 1, 10, 0)
    # stratified: every class's share of val is within one image of val_fraction
    full = np.bincount(target, minlength=10)
    val = np.bincount(digits.val_y.numpy(), minlength=10)
    assert np.all(np.abs(val - 0.2 * full) <= 1)


def test_digits_split_is_disjoint_and_covers_everything(digits, raw_digits):
    images, target = raw_digits
    up = F.interpolate(
        torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1), size=16, mode="bilinear", antialias=False
    )
    # 2x bilinear upsampling of k/16 values lands on multiples of 1/256: exact keys per image
    expected = Counter(zip(_keys(up, 256), target.tolist(), strict=True))
    train = list(zip(_keys(_unstandardize(digits, digits.train_x), 256), digits.train_y.tolist(), strict=True))
    val = list(zip(_keys(_unstandardize(digits, digits.val_x), 256), digits.val_y.tolist(), strict=True))
    # multiset equality: every image (with its label) appears exactly as often as in the source
    assert Counter(train) + Counter(val) == expected
    assert len(train) + len(val) == len(target)
    # an image in both parts is only allowed if the source itself holds it more than once
    assert all(expected[k] >= 2 for k in set(train) & set(val))


def test_digits_standardization(digits, raw_digits):
    images, target = raw_digits
    mean = digits.train_x.mean(dim=(0, 2, 3))
    std = digits.train_x.std(dim=(0, 2, 3), correction=0)
    assert torch.allclose(mean, torch.zeros(1), atol=1e-4)
    assert torch.allclose(std, torch.ones(1), atol=1e-4)
    # the stored mean/std are those of the [0,1]-scaled, upsampled training images, found independently:
    # map each training image back to its source row and recompute the statistics from the source
    up = F.interpolate(
        torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1), size=16, mode="bilinear", antialias=False
    )
    by_key = dict(zip(_keys(up, 256), range(len(up)), strict=True))
    rows = [by_key[k] for k in _keys(_unstandardize(digits, digits.train_x), 256)]
    src = up[rows].double()
    assert digits.mean[0] == pytest.approx(src.mean().item(), abs=1e-5)
    assert digits.std[0] == pytest.approx(src.std(correction=0).item(), abs=1e-5)
    # val uses the train statistics, so it is not exactly standardized
    assert digits.val_x.mean().abs() < 0.2


def test_digits_deterministic_and_seeded(digits):
    again = load_dataset("digits")
    for name in ("train_x", "train_y", "val_x", "val_y"):
        assert torch.equal(getattr(digits, name), getattr(again, name))
    # another seed holds out other images, not just the same ones in another order
    other = load_dataset("digits", seed=1)
    val_keys = set(_keys(_unstandardize(digits, digits.val_x), 256))
    other_keys = set(_keys(_unstandardize(other, other.val_x), 256))
    assert len(val_keys ^ other_keys) > len(val_keys) // 2


def test_digits_image_size_and_max_train(raw_digits):
    images, _ = raw_digits
    ds = load_dataset("digits", image_size=8, max_train=100)
    assert ds.train_x.shape == (100, 1, 8, 8) and ds.val_x.shape[0] == int(np.floor(len(images) * 0.2 + 0.5))
    assert ds.image_size == 8
    # at native size the images are the raw values / 16, unresized
    raw_keys = set(_keys(torch.tensor(images).unsqueeze(1) / 16.0, 16))
    assert set(_keys(_unstandardize(ds, ds.train_x), 16)) <= raw_keys
    # standardization uses the 100 images kept
    assert abs(ds.train_x.mean().item()) < 1e-4 and abs(ds.train_x.std(correction=0).item() - 1) < 1e-4


# ------------------------------------------------------------------------------------------------ synthetic


def test_synthetic_shapes_and_determinism(synthetic):
    n = synthetic.train_x.shape[0] + synthetic.val_x.shape[0]
    assert 256 <= n <= 1024
    assert synthetic.train_x.shape[1:] == (1, 16, 16) and synthetic.num_classes == 4
    assert set(synthetic.val_y.tolist()) == set(range(4))
    again = load_dataset("synthetic")
    assert torch.equal(synthetic.train_x, again.train_x) and torch.equal(synthetic.val_y, again.val_y)
    assert not torch.equal(synthetic.train_x, load_dataset("synthetic", seed=3).train_x)
    assert load_dataset("synthetic", image_size=8).val_x.shape[1:] == (1, 8, 8)


def test_synthetic_is_learnable(synthetic):
    # nearest class centroid on raw pixels, fitted on train, scored on val; chance is 0.25
    centroids = torch.stack([synthetic.train_x[synthetic.train_y == k].mean(0).flatten() for k in range(4)])
    pred = torch.cdist(synthetic.val_x.flatten(1), centroids).argmin(1)
    assert (pred == synthetic.val_y).float().mean().item() > 0.8


# ------------------------------------------------------------------------------------------------ eval_subset


def test_eval_subset_deterministic_and_from_val(synthetic):
    x1, y1 = eval_subset(synthetic, 20, seed=5)
    x2, y2 = eval_subset(synthetic, 20, seed=5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (20, 1, 16, 16) and x1.is_contiguous() and y1.dtype == torch.int64
    # every row is a row of val with its own label, no row twice
    match = (x1.flatten(1)[:, None, :] == synthetic.val_x.flatten(1)[None]).all(-1)
    idx = match.float().argmax(1)
    assert match.any(1).all() and len(set(idx.tolist())) == 20
    assert torch.equal(synthetic.val_y[idx], y1)
    # a smaller subset is a prefix; another seed picks another subset
    assert torch.equal(eval_subset(synthetic, 7, seed=5)[0], x1[:7])
    assert not torch.equal(eval_subset(synthetic, 20, seed=6)[0], x1)
    # the result is a copy: writing to it leaves the dataset alone
    before = synthetic.val_x.clone()
    x1.zero_()
    assert torch.equal(synthetic.val_x, before)


def test_eval_subset_clamps_and_train_split(synthetic):
    m = len(synthetic.val_y)
    x, y = eval_subset(synthetic, 10 * m)
    assert x.shape[0] == m
    assert sorted(y.tolist()) == sorted(synthetic.val_y.tolist())
    assert torch.allclose(x.sum(0), synthetic.val_x.sum(0), atol=1e-3)  # the whole set, reordered
    xt, yt = eval_subset(synthetic, 5, split="train")
    match = (xt.flatten(1)[:, None, :] == synthetic.train_x.flatten(1)[None]).all(-1)
    assert match.any(1).all()


@pytest.mark.parametrize("n, split", [(0, "val"), (-1, "val"), (5, "test"), (5, "")])
def test_eval_subset_errors(synthetic, n, split):
    with pytest.raises(LandscapeError):
        eval_subset(synthetic, n, split=split)


# ------------------------------------------------------------------------------------------------ fingerprint


def test_fingerprint(digits):
    fp = digits.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert load_dataset("digits").fingerprint() == fp
    assert load_dataset("digits", seed=1).fingerprint() != fp
    assert dataclasses.replace(digits, classes=tuple("abcdefghij")).fingerprint() != fp
    val_x = digits.val_x.clone()
    val_x[0, 0, 0, 0] += 1e-3
    changed = dataclasses.replace(digits, val_x=val_x)
    assert changed.fingerprint() != fp
    # cached: computed once, later in-place edits do not change it
    first = changed.fingerprint()
    val_x[0, 0, 0, 0] += 1.0
    assert changed.fingerprint() == first
    assert dataclasses.replace(changed).fingerprint() != first


# ------------------------------------------------------------------------------------------------ folder

_COLOURS = {"ant": (255, 0, 0), "bee": (128, 128, 128), "cat": (0, 64, 255)}


def _make_folder(root: Path) -> None:
    for name, rgb in _COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(3):
            if name == "bee":  # grayscale files must come out as 3 equal channels
                img = Image.new("L", (10, 12), rgb[0])
            elif name == "cat":
                img = Image.new("RGBA", (20, 20), (*rgb, 100))
            else:
                img = Image.new("RGB", (12, 10), rgb)
            img.save(root / name / f"img{i}.png")
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden files are ignored, not counted


def test_folder_loads_and_counts_skipped(tmp_path):
    _make_folder(tmp_path)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.skipped == 2
    assert ds.classes == ("ant", "bee", "cat")
    assert ds.in_chans == 3 and ds.image_size == 32
    assert len(ds.train_y) + len(ds.val_y) == 9 and len(ds.val_y) == 2
    # each image has its class's colour after undoing the standardization
    for x, y in ((ds.train_x, ds.train_y), (ds.val_x, ds.val_y)):
        pixels = _unstandardize(ds, x) * 255
        for img, label in zip(pixels, y.tolist(), strict=True):
            expected = torch.tensor(_COLOURS[ds.classes[label]], dtype=torch.float32).view(3, 1, 1)
            assert torch.allclose(img, expected.expand_as(img), atol=0.5)
    small = load_dataset(f"folder:{tmp_path}", image_size=8, val_fraction=0.4, seed=2)
    assert small.train_x.shape[1:] == (3, 8, 8) and len(small.val_y) == 4


def test_folder_errors(tmp_path):
    with pytest.raises(LandscapeError, match="does not exist") as e:
        load_dataset(f"folder:{tmp_path / 'nope'}")
    assert str(tmp_path / "nope") in str(e.value)
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    with pytest.raises(LandscapeError, match="not a folder"):
        load_dataset(f"folder:{afile}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LandscapeError, match="no class sub-folders") as e:
        load_dataset(f"folder:{empty}")
    assert str(empty) in str(e.value)
    (empty / "cls").mkdir()
    (empty / "cls" / "readme.txt").write_text("x")
    with pytest.raises(LandscapeError, match="no readable images"):
        load_dataset(f"folder:{empty}")


# ------------------------------------------------------------------------------------------------ cifar10

_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _write_cifar(root: Path, n: int = 4, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny fake CIFAR-10 layout, real pickles of numpy arrays, with protocols 2, 4 and 5 mixed."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, f, protocol=(2, 4, 5)[i % 3])
        batches[name] = (data, labels)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": _NAMES, b"num_cases_per_batch": n}, f, protocol=2)
    return batches


def test_cifar10_loads(tmp_path):
    batches = _write_cifar(tmp_path)
    ds = load_dataset(f"cifar10:{tmp_path}")
    train = [batches[f"data_batch_{k}"] for k in range(1, 6)]
    data = np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32)
    labels = sum((lab for _, lab in train), [])
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.val_x.shape == (4, 3, 32, 32)
    assert ds.classes == tuple(s.decode() for s in _NAMES)
    assert ds.train_y.tolist() == labels and ds.val_y.tolist() == batches["test_batch"][1]
    # channel-major RGB, scaled to [0,1] and standardized with the train statistics
    assert torch.allclose(_unstandardize(ds, ds.train_x) * 255, torch.tensor(data, dtype=torch.float32), atol=1e-3)
    val = batches["test_batch"][0].reshape(-1, 3, 32, 32)
    assert torch.allclose(_unstandardize(ds, ds.val_x) * 255, torch.tensor(val, dtype=torch.float32), atol=1e-3)
    assert np.allclose(ds.mean, (data / 255.0).mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(ds.std, (data / 255.0).std(axis=(0, 2, 3)), atol=1e-6)


def test_cifar10_nested_layout_max_train_and_size(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(f"cifar10:{tmp_path}")
    # the fingerprint ignores the spec: the same files reached by another path match
    assert ds.fingerprint() == load_dataset(f"cifar10:{tmp_path / 'cifar-10-batches-py'}").fingerprint()
    small = load_dataset(f"cifar10:{tmp_path}", max_train=7, image_size=16)
    assert small.train_x.shape == (7, 3, 16, 16) and small.val_x.shape == (4, 3, 16, 16)
    # the kept images are distinct source images with their own labels
    full = load_dataset(f"cifar10:{tmp_path}", max_train=7)
    src = {d.tobytes(): lab for k in range(1, 6) for d, lab in zip(*batches[f"data_batch_{k}"], strict=True)}
    kept = (_unstandardize(full, full.train_x) * 255).round().to(torch.uint8).flatten(1).numpy()
    assert len({row.tobytes() for row in kept}) == 7
    assert [src[row.tobytes()] for row in kept] == full.train_y.tolist()
    other = load_dataset(f"cifar10:{tmp_path}", max_train=7, seed=1)
    assert other.fingerprint() != full.fingerprint()


def test_cifar10_missing_files(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    (tmp_path / "test_batch").unlink()
    with pytest.raises(LandscapeError, match="no download") as e:
        load_dataset(f"cifar10:{tmp_path}")
    assert "data_batch_3" in str(e.value) and "test_batch" in str(e.value) and "data_batch_2" not in str(e.value)
    with pytest.raises(LandscapeError, match="does not exist"):
        load_dataset(f"cifar10:{tmp_path / 'nope'}")


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _ExecPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", ["system", "exec", "nested"])
def test_cifar10_refuses_hostile_pickle(tmp_path, payload):
    _write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    if payload == "system":
        obj = _SystemPayload(marker)
    elif payload == "exec":
        obj = _ExecPayload(marker)
    else:  # hidden inside an otherwise well-formed batch
        obj = {b"data": _ExecPayload(marker), b"labels": [0]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(obj))
    with pytest.raises(LandscapeError, match="refusing to unpickle") as e:
        load_dataset(f"cifar10:{tmp_path}")
    assert "data_batch_1" in str(e.value)
    assert ("system" if payload == "system" else "exec") in str(e.value)
    assert not marker.exists()


def test_hostile_pickle_is_really_hostile(tmp_path):
    # positive control for the test above: plain pickle does run the payload
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_ExecPayload(marker)))  # noqa: S301 - deliberate, on our own bytes
    assert marker.exists()


def test_cifar10_garbage_and_wrong_content(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(b"this is not a pickle")
    with pytest.raises(LandscapeError, match="could not read"):
        load_dataset(f"cifar10:{tmp_path}")
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), dtype=np.float32), b"labels": [0, 1]}, f)
    with pytest.raises(LandscapeError, match="uint8"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_reads_numpy1_style_pickles(tmp_path):
    # real CIFAR-10 files (Python 2, numpy 1) name numpy.core.multiarray._reconstruct; numpy 2 writes numpy._core
    batches = _write_cifar(tmp_path)
    data, labels = batches["data_batch_4"]
    raw = pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
    assert b"numpy._core.multiarray" in raw or b"numpy.core.multiarray" in raw
    (tmp_path / "data_batch_4").write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    ds = load_dataset(f"cifar10:{tmp_path}")
    got = (_unstandardize(ds, ds.train_x[12:16]) * 255).round().to(torch.uint8)
    assert torch.equal(got, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert ds.train_y[12:16].tolist() == labels
