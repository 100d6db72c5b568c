"""Small image datasets for tiny ViTs, loaded whole into memory as ready tensors.

A dataset is named by a spec string:
- `digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), upsampled to 16x16 by
  default, 1 channel. Works offline; the project's default.
- `synthetic`: 512 procedural 16x16 1-channel images in 4 classes (horizontal, vertical and diagonal stripes, a
  centred blob) with seeded jitter and noise. For fast tests; a nearest-centroid classifier on raw pixels
  separates them.
- `folder:<path>`: one sub-folder per class (sorted names), images read with PIL as RGB, squashed to 32x32 by
  default. Hidden files are ignored; other files PIL cannot read are skipped and counted.
- `cifar10:<path>`: the CIFAR-10 "python version" files already on disk (`<path>` or
  `<path>/cifar-10-batches-py`). Train = the five data batches, val = `test_batch`. Read with a restricted
  unpickler that only rebuilds numpy arrays; nothing is downloaded.

Images are scaled to [0, 1], resized (bilinear; antialiased only when shrinking), then standardized per channel
with the mean and (population) std of the training images actually kept (after `max_train`). Digits, synthetic
and folder data get a seeded split stratified by class; CIFAR-10 keeps its own train/test split.
"""

import _codecs
import functools
import hashlib
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import LandscapeError

KINDS = ("digits", "synthetic", "folder", "cifar10")
_DEFAULT_SIZE = {"digits": 16, "synthetic": 16, "cifar10": 32, "folder": 32}
_SPEC_HELP = "use digits, synthetic, folder:<path> or cifar10:<path>"
SYNTHETIC_CLASSES = ("horizontal", "vertical", "diagonal", "blob")
_SYNTHETIC_PER_CLASS = 128
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_FILES = (*_CIFAR_TRAIN, "test_batch", "batches.meta")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset held in memory as standardized tensors.

    Equality is identity (eq=False): comparing tensors field by field has no single truth value. Compare
    `fingerprint()` to tell whether two datasets hold the same content.

    Attributes:
        spec: The spec string as given, e.g. "digits" or "folder:/x/y".
        train_x: (N, C, H, W) float32 training images, standardized with `mean` and `std`.
        train_y: (N,) int64 training labels.
        val_x: (M, C, H, W) float32 validation images, same standardization.
        val_y: (M,) int64 validation labels.
        classes: Class names, indexed by label.
        mean: Per-channel mean of the [0, 1]-scaled training images.
        std: Per-channel population std of the [0, 1]-scaled training images.
        skipped: Files skipped while reading (folder source: non-image or unreadable files).
    """

    spec: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    skipped: int = 0
    _fingerprint: list[str] = field(default_factory=list, init=False, repr=False)

    @property
    def image_size(self) -> int:
        """Height (= width) of the images in pixels."""
        return int(self.train_x.shape[-1])

    @property
    def in_chans(self) -> int:
        """Number of image channels."""
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def fingerprint(self) -> str:
        """The sha256 hex digest of the content (the four tensors with their shapes and dtypes, and the classes).

        It does not depend on the spec string, so the same data reached two ways shares a cache key. Computed
        once and cached: the tensors are treated as read-only after loading.
        """
        if not self._fingerprint:
            h = hashlib.sha256()
            for t in (self.train_x, self.train_y, self.val_x, self.val_y):
                arr = t.detach().cpu().contiguous().numpy()
                h.update(f"{arr.dtype.str}{tuple(arr.shape)};".encode())
                h.update(arr.reshape(-1).view(np.uint8))
            h.update("\x1f".join(self.classes).encode())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a dataset spec into its kind and its path.

    Args:
        spec: "digits", "synthetic", "folder:<path>" or "cifar10:<path>".

    Returns:
        (kind, path), path None for the kinds that take none.

    Raises:
        LandscapeError: For an unknown kind, a missing path, or a path given to a kind that takes none.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise LandscapeError(f"empty dataset spec: {_SPEC_HELP}")
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise LandscapeError(f"unknown dataset {spec!r}: {_SPEC_HELP}")
    if kind in ("digits", "synthetic"):
        if sep and arg.strip():
            raise LandscapeError(f"dataset {kind!r} takes no path (got {spec!r})")
        return kind, None
    if not arg.strip():
        raise LandscapeError(f"dataset {kind!r} needs a path: {kind}:<path>")
    return kind, arg.strip()


def default_image_size(spec: str) -> int:
    """The image size a spec loads at when no `image_size` is given (digits/synthetic 16, folder/cifar10 32)."""
    return _DEFAULT_SIZE[parse_spec(spec)[0]]


def load_dataset(
    spec: str,
    *,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> Dataset:
    """Load a dataset named by a spec string into memory.

    Args:
        spec: "digits", "synthetic", "folder:<path>" or "cifar10:<path>".
        image_size: Side of the square images; None uses `default_image_size(spec)`.
        val_fraction: Share of the images held out for validation (digits, synthetic, folder; CIFAR-10 uses
            its own test batch).
        seed: Seeds the split, the synthetic images and the choice of training images under `max_train`.
        max_train: Keep at most this many training images (a seeded random choice); None keeps all.
        normalize: (mean, std) per channel to standardize with instead of the training images' own: the statistics a
            checkpoint was trained with (`LoadedCheckpoint.image_stats`). `mean` and `std` then record these.

    Returns:
        The standardized Dataset.

    Raises:
        LandscapeError: For a bad spec or argument, or data that is missing or cannot be read.
    """
    kind, path = parse_spec(spec)
    size = _DEFAULT_SIZE[kind] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise LandscapeError(f"image size must be a positive whole number (got {image_size!r})")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 1):
        raise LandscapeError(f"max_train must be a positive whole number or None (got {max_train!r})")
    if kind != "cifar10" and not (isinstance(val_fraction, int | float) and 0.0 < val_fraction < 1.0):
        raise LandscapeError(f"val_fraction must be between 0 and 1, exclusive (got {val_fraction!r})")

    skipped = 0
    if kind == "cifar10":
        train_x, train_y, val_x, val_y, classes = _load_cifar10(Path(path).expanduser(), size, seed, max_train)
    else:
        if kind == "digits":
            x, y, classes = _load_digits(size)
        elif kind == "synthetic":
            x, y, classes = _make_synthetic(size, seed)
        else:
            x, y, classes, skipped = _load_folder(Path(path).expanduser(), size)
        train_idx, val_idx = _stratified_split(y.numpy(), val_fraction, seed)
        if max_train is not None:
            train_idx = train_idx[:max_train]  # already in seeded random order
        ti, vi = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
        train_x, train_y = x[ti], y[ti]
        val_x, val_y = x[vi], y[vi]

    mean, std = _channel_stats(train_x)
    if normalize is not None:
        mean, std = tuple(float(v) for v in normalize[0]), tuple(float(v) for v in normalize[1])
        if len(mean) != train_x.shape[1] or len(std) != train_x.shape[1]:
            raise LandscapeError(
                f"the model normalizes {len(mean)} channels but data {spec!r} has {train_x.shape[1]}: use data with "
                f"{len(mean)} channels"
            )
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return Dataset(
        spec=spec,
        train_x=train_x.sub_(m).div_(s).contiguous(),
        train_y=train_y.to(torch.int64).contiguous(),
        val_x=val_x.sub_(m).div_(s).contiguous(),
        val_y=val_y.to(torch.int64).contiguous(),
        classes=tuple(classes),
        mean=mean,
        std=std,
        skipped=skipped,
    )


def eval_subset(ds: Dataset, n: int, seed: int = 0, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of a split as ready contiguous tensors.

    The subset is the first n of a seeded permutation, so a smaller n gives a prefix of a larger one.

    Args:
        ds: The dataset.
        n: How many images; clamped to the size of the split.
        seed: Chooses the subset.
        split: "val" or "train".

    Returns:
        (x, y): (n, C, H, W) float32 images and (n,) int64 labels, new tensors independent of `ds`.

    Raises:
        LandscapeError: If n < 1 or the split is unknown.
    """
    if split == "val":
        x, y = ds.val_x, ds.val_y
    elif split == "train":
        x, y = ds.train_x, ds.train_y
    else:
        raise LandscapeError(f"unknown split {split!r}: use 'val' or 'train'")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LandscapeError(f"the evaluation subset needs at least 1 image (got n={n!r})")
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(y), generator=gen)[: min(n, len(y))]
    return x.index_select(0, idx).contiguous(), y.index_select(0, idx).contiguous()


# ---------------------------------------------------------------------------------------------------- helpers


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std; a constant channel gets std 1 so it is only centred."""
    var, mean = torch.var_mean(x.transpose(0, 1).reshape(x.shape[1], -1), dim=1, correction=0)
    std = var.sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _resize(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to size x size, in chunks to bound memory on big sets."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])  # antialias only matters (and only helps) when shrinking
    parts = [
        F.interpolate(x[i : i + chunk], size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        for i in range(0, len(x), chunk)
    ]
    return torch.cat(parts) if parts else x.new_empty((0, x.shape[1], size, size))


def _stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split stratified by class; both parts non-empty and in seeded random order.

    The total validation count is round(N * val_fraction) clamped to [1, N - 1], shared out over the classes in
    proportion to their sizes (largest remainder).
    """
    n = len(labels)
    if n < 2:
        raise LandscapeError(f"need at least 2 images to split into train and val (found {n})")
    rng = np.random.default_rng(seed)
    n_val = min(max(int(math.floor(n * val_fraction + 0.5)), 1), n - 1)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_val / n
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n_val - take.sum()]:
        take[i] += 1
    train, val = [], []
    for c, k in zip(classes, take, strict=True):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


# ---------------------------------------------------------------------------------------------------- sources


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as (1797, 8, 8) float32 in [0, 1] and (1797,) int64; cached (sklearn import is slow)."""
    try:  # here, not at the top: scikit-learn takes ~1 s to import and only the embedded digits need it
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise LandscapeError("the digits dataset needs scikit-learn, which is not installed") from e
    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)
    images.setflags(write=False)
    target = d.target.astype(np.int64)
    target.setflags(write=False)
    return images, target


def _load_digits(size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    images, target = _digits_raw()
    x = _resize(torch.tensor(images).unsqueeze(1), size)
    return x.contiguous(), torch.tensor(target), tuple(str(i) for i in range(10))


def _make_synthetic(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Procedural 1-channel images: 4 classes x 128, pixel values in [0, 1].

    Stripes have a fixed frequency (3 cycles per image) and a phase jittered by at most a sixth of a cycle, so
    each class keeps a recognisable mean image; the blob's centre and width are jittered. Gaussian pixel noise
    (sd 0.15) on top.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    k = _SYNTHETIC_PER_CLASS
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size  # pixel centres in (0, 1)
    v, u = np.meshgrid(coords, coords, indexing="ij")  # v: row (down), u: column (across)
    phase = rng.uniform(-np.pi / 3, np.pi / 3, size=(3, k, 1, 1))
    contrast = rng.uniform(0.6, 1.0, size=(4, k, 1, 1))
    cycles = 3.0
    horizontal = 0.5 + 0.5 * contrast[0] * np.cos(2 * np.pi * cycles * v + phase[0])
    vertical = 0.5 + 0.5 * contrast[1] * np.cos(2 * np.pi * cycles * u + phase[1])
    diagonal = 0.5 + 0.5 * contrast[2] * np.cos(2 * np.pi * cycles * (u + v) / math.sqrt(2) + phase[2])
    centre = 0.5 + rng.uniform(-0.08, 0.08, size=(2, k, 1, 1))
    width = rng.uniform(0.12, 0.22, size=(k, 1, 1))
    r2 = (u - centre[0]) ** 2 + (v - centre[1]) ** 2
    blob = 0.1 + contrast[3] * np.exp(-r2 / (2 * width**2))
    images = np.concatenate([horizontal, vertical, diagonal, blob])
    images = np.clip(images + rng.normal(0.0, 0.15, size=images.shape), 0.0, 1.0)
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(4, dtype=torch.int64).repeat_interleave(k)
    return x, y, SYNTHETIC_CLASSES


def _load_folder(root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], int]:
    """Read an image folder (one sub-folder per class, searched recursively)."""
    if not root.exists():
        raise LandscapeError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise LandscapeError(f"dataset folder {root} is not a folder")
    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not class_dirs:
        raise LandscapeError(f"dataset folder {root} has no class sub-folders (expected {root}/<class>/<image>)")
    images, labels, skipped = [], [], 0
    for label, cdir in enumerate(class_dirs):
        files = sorted(p for p in cdir.rglob("*") if p.is_file() and not p.name.startswith("."))
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB")
                    if im.size != (size, size):
                        im = im.resize((size, size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(im, dtype=np.uint8))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                # PIL raises these for non-images, truncated or corrupt files and oversized images
                skipped += 1
                continue
            labels.append(label)
    if not images:
        raise LandscapeError(f"dataset folder {root} has no readable images ({skipped} files skipped)")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return x, torch.tensor(labels, dtype=torch.int64), tuple(p.name for p in class_dirs), skipped


def _allowed_pickle_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR-10 batch may reference: what rebuilds a plain numpy array, and bytes."""
    try:  # numpy moved its core modules in 2.0: whichever this numpy has
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocol 2 pickles written by Python 3 rebuild bytes through _codecs.encode (a pure function)
        ("_codecs", "encode"): _codecs.encode,
    }
    for mod in ("numpy.core", "numpy._core"):  # files from numpy 1.x (and Python 2) and from numpy 2.x
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed numpy globals and refuses everything else."""

    def __init__(self, file, source: Path) -> None:
        super().__init__(file, encoding="bytes")  # CIFAR files are Python 2 pickles with bytes keys
        self._source = source
        self._allowed = _allowed_pickle_globals()

    def find_class(self, module: str, name: str) -> object:
        obj = self._allowed.get((module, name))
        if obj is None:
            raise LandscapeError(f"refusing to unpickle {module}.{name} from {self._source}")
        return obj


def _read_pickle(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except LandscapeError:
        raise
    except Exception as e:  # any malformed pickle: truncated, wrong opcode, bad numpy state ...
        raise LandscapeError(f"could not read CIFAR-10 file {path}: {type(e).__name__}: {e}") from e


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch as (n, 3, 32, 32) uint8 and (n,) int64, checked."""
    obj = _read_pickle(path)
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise LandscapeError(f"CIFAR-10 file {path} is not a batch (expected a dict with b'data' and b'labels')")
    data, labels = obj[b"data"], obj[b"labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise LandscapeError(f"CIFAR-10 file {path}: b'data' must be a uint8 array of shape (n, 3072)")
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise LandscapeError(f"CIFAR-10 file {path}: b'labels' must be a list of integers") from e
    if len(y) != len(data):
        raise LandscapeError(f"CIFAR-10 file {path}: {len(data)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise LandscapeError(f"CIFAR-10 file {path}: labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), y


def _load_cifar10(
    root: Path, size: int, seed: int, max_train: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    if not root.is_dir():
        raise LandscapeError(f"CIFAR-10 folder {root} does not exist or is not a folder (no download happens here)")
    nested = root / "cifar-10-batches-py"
    if not (root / "data_batch_1").exists() and nested.is_dir():
        root = nested
    missing = [name for name in _CIFAR_FILES if not (root / name).is_file()]
    if missing:
        raise LandscapeError(
            f"CIFAR-10 files missing in {root}: {', '.join(missing)} (expected the 'python version' layout; "
            "no download happens here)"
        )
    meta = _read_pickle(root / "batches.meta")
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(s, bytes | str) for s in names):
        raise LandscapeError(f"CIFAR-10 file {root / 'batches.meta'} has no b'label_names' list")
    classes = tuple(s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in names)

    parts = [_cifar_batch(root / name, len(classes)) for name in _CIFAR_TRAIN]
    train_u8 = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    if max_train is not None and max_train < len(train_y):
        gen = torch.Generator().manual_seed(int(seed))
        keep = np.sort(torch.randperm(len(train_y), generator=gen)[:max_train].numpy())
        train_u8, train_y = train_u8[keep], train_y[keep]
    val_u8, val_y = _cifar_batch(root / "test_batch", len(classes))
    if len(train_y) == 0 or len(val_y) == 0:
        raise LandscapeError(f"CIFAR-10 folder {root} holds no training or no test images")

    def to_float(u8: np.ndarray) -> torch.Tensor:
        return _resize(torch.from_numpy(np.ascontiguousarray(u8)).float().div_(255.0), size).contiguous()

    return to_float(train_u8), torch.from_numpy(train_y), to_float(val_u8), torch.from_numpy(val_y), classes
