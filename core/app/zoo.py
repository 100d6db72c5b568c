"""The models at hand: the default trio (MAE, RC-MAE, supervised ViT on the embedded digits) and every checkpoint
in the cache, described for tables and pickers.

The defaults are trained, not shipped: `python -m core train --model {mae,rcmae,sup}` with no other options
reproduces them exactly (seeded, deterministic on the CPU); the dashboard's first-run job
(`core.app.first_run.prepare_defaults_task`) trains the same configs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.errors import LandscapeError
from core.measure import FlatnessSpec, SurfaceSpec, compute_flatness, compute_surface
from core.models import (
    ProbeConfig,
    TrainConfig,
    count_parameters,
    encode,
    encoder_flops_per_image,
    encoder_of,
    load_checkpoint,
    probe_path,
)
from core.paths import cache_root
from core.report import ModelFacts, measure_inference, measure_paired_latency
from core.store import Store

KIND_LABEL = {"mae": "MAE", "rcmae": "RC-MAE", "sup": "Sup-ViT", "probe": "probe"}
DEFAULT_KINDS = ("mae", "rcmae", "sup")


def default_configs(epochs: int | None = None, seed: int = 0) -> dict[str, TrainConfig]:
    """The default trio: tiny preset on digits, the TrainConfig defaults (what the CLI trains without options)."""
    out = {}
    for kind in DEFAULT_KINDS:
        cfg = TrainConfig(kind=kind, seed=seed)
        out[kind] = replace(cfg, epochs=epochs) if epochs else cfg
    return out


@dataclass(frozen=True)
class CheckpointInfo:
    """One model checkpoint of the cache, as tables and pickers show it."""

    path: str
    name: str
    kind: str
    label: str
    train: dict
    data: dict
    history: tuple[dict, ...]
    probe_acc: float | None  # linear-probe val accuracy (encoders, from a cached default probe) or classifier's
    n_params: int
    sha256: str

    @property
    def epoch_time(self) -> float | None:
        times = [h["time_s"] for h in self.history if "time_s" in h]
        return sum(times) / len(times) if times else None


_INFO_CACHE: dict[tuple[str, int, int], CheckpointInfo] = {}


_LABEL_FIELDS = {
    "mae": (("epochs", "ep"), ("mask_ratio", "mask"), ("max_train", "n")),
    "rcmae": (
        ("epochs", "ep"),
        ("mask_ratio", "mask"),
        ("ema_momentum", "m"),
        ("ema_schedule", "m schedule"),
        ("gamma", "γ"),
        ("max_train", "n"),
    ),
    "sup": (("epochs", "ep"), ("max_train", "n")),
}


def describe_label(kind: str, train: dict) -> str:
    """A short human label: kind, seed, then whatever differs from the defaults (epochs, mask ratio, ...)."""
    parts = [KIND_LABEL.get(kind, kind)]
    if train.get("data", "digits") != "digits":
        parts.append(str(train["data"]).split(":")[0])
    if train.get("preset", "tiny") != "tiny":
        parts.append(train["preset"])
    parts.append(f"seed {train.get('seed', 0)}")
    if kind in _LABEL_FIELDS:
        base = TrainConfig(kind=kind)
        parts += [
            f"{short} {train[k]}" for k, short in _LABEL_FIELDS[kind] if k in train and train[k] != getattr(base, k)
        ]
    return " · ".join(parts)


def _probe_of(path: Path, sha: str) -> float | None:

    p = probe_path(path, sha, ProbeConfig())
    if not p.exists():
        return None
    try:
        hist = load_checkpoint(p).meta.get("history") or []
    except LandscapeError:
        return None
    return hist[-1].get("val_acc") if hist else None


def checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """Description of one checkpoint (memoized by path, size and mtime)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise LandscapeError(f"checkpoint not found: {path}")
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _INFO_CACHE:
        info = _INFO_CACHE[key]
        if info.probe_acc is None and info.kind in ("mae", "rcmae"):
            # The default probe may have been trained since (prepare_defaults trains it right after the model).
            acc = _probe_of(path, info.sha256)
            if acc is not None:
                info = _INFO_CACHE[key] = replace(info, probe_acc=acc)
        return info
    ck = load_checkpoint(path)
    train = dict(ck.meta.get("train") or {})
    hist = tuple(ck.meta.get("history") or ())
    if ck.kind == "sup":
        acc = hist[-1].get("val_acc") if hist else None
    elif ck.kind == "probe":
        acc = hist[-1].get("val_acc") if hist else None
    else:
        acc = _probe_of(path, ck.sha256)
    ours = bool(train) and ck.source == "ours"  # official files record a recipe, not one of our runs
    label = describe_label(ck.kind, train) if ours else f"{KIND_LABEL.get(ck.kind, ck.kind)} · {path.stem}"
    info = CheckpointInfo(
        path=str(path),
        name=path.name,
        kind=ck.kind,
        label=label,
        train=train,
        data=dict(ck.meta.get("data") or {}),
        history=hist,
        probe_acc=acc,
        n_params=sum(p.numel() for p in ck.model.parameters()),
        sha256=ck.sha256,
    )
    _INFO_CACHE[key] = info
    return info


def list_checkpoints(include_probes: bool = False) -> list[CheckpointInfo]:
    """Every loadable model checkpoint under `<cache>/checkpoints` (probes only if asked), newest first.
    Unreadable files are skipped: the Runs page lists them with their error."""
    folder = cache_root() / "checkpoints"
    if not folder.exists():
        return []

    def mtime(q: Path) -> float:
        try:
            return q.stat().st_mtime
        except OSError:  # deleted while listing (the Runs page deletes files)
            return 0.0

    out = []
    for p in sorted(folder.glob("*.pt"), key=mtime, reverse=True):
        if ".probe_" in p.name and not include_probes:
            continue
        try:
            out.append(checkpoint_info(p))
        except (LandscapeError, OSError):
            continue
    return out


def model_facts(path: str | os.PathLike, surface_spec: dict | None = None, flatness_spec: dict | None = None):
    """What the executive summary needs about one model, measured now or read from the cache.

    Parameter counts and FLOPs are exact; latency is measured (and cached per checkpoint); epoch times come from
    the training history; flatness numbers and the basin width are read from cached results only (None until the
    dashboard or the CLI has computed them with the given specs).
    """
    info = checkpoint_info(path)
    ck = load_checkpoint(path)
    enc = encoder_of(ck.model)
    deployed = sum(p.numel() for n, p in enc.named_parameters() if not (n.startswith("decoder") or n == "mask_token"))
    training = count_parameters(ck.model)
    store = Store()
    entry = store.entry("inference", {"checkpoint": ck.sha256, "batch": 64})
    res = entry.result()
    if res is None:
        x = torch.randn(64, ck.config.in_chans, ck.config.img_size, ck.config.img_size)
        with torch.random.fork_rng(devices=[]):
            mean, std = measure_inference(enc, x, forward=lambda e, xb: encode(e, xb) if ck.kind != "sup" else e(xb))
        with entry.lock():
            entry.save_result({"latency_ms": np.array([mean, std])}, {"threads": torch.get_num_threads()})
        latency = (mean, std)
    else:
        latency = tuple(float(v) for v in res.arrays["latency_ms"])
    fl = compute_flatness(FlatnessSpec(checkpoint=str(path), **(flatness_spec or {})), cached_only=True)
    surf = compute_surface(SurfaceSpec(checkpoint=str(path), **(surface_spec or {})), cached_only=True)
    sharp = fl.sharpness.get("average") if fl and fl.sharpness else None
    return ModelFacts(
        label=info.label,
        kind=ck.kind,
        params_deployed=int(deployed),
        params_training=int(training),
        flops_per_image=encoder_flops_per_image(ck.config),
        latency_ms=latency,
        epoch_times=tuple(h["time_s"] for h in info.history if "time_s" in h),
        probe_acc=info.probe_acc,
        top_eigenvalue=fl.top_eigenvalues[0] if fl and fl.top_eigenvalues else None,
        trace=fl.trace if fl else None,
        sharpness=sharp,
        robustness=fl.robustness if fl else None,
        basin_width=surf.metrics.get("basin_width") if surf is not None else None,
        centre_loss=surf.metrics.get("centre_loss") if surf is not None else None,
        seed=_train_seed(ck.meta.get("train") or {}),
    )


PAIRED_ROUNDS = 16  # interleaved rounds of the paired latency: enough for an interval, a second or two on tiny models


def _deployed(path: str | os.PathLike):
    """(encoder, forward) of a checkpoint as it is deployed (MAE / RC-MAE: the encoder without masking)."""
    ck = load_checkpoint(path)
    enc = encoder_of(ck.model)
    fwd = (lambda e, xb: encode(e, xb)) if ck.kind != "sup" else (lambda e, xb: e(xb))
    return ck, enc, fwd


def paired_latency(path_a: str | os.PathLike, path_b: str | os.PathLike, batch: int = 64) -> dict[str, list[float]]:
    """Latency of two models' deployed encoders timed interleaved (`core.report.measure_paired_latency`), cached per
    pair of checkpoints: {"a_ms": [...], "b_ms": [...]} (ms per image, one value per round).

    Raises:
        LandscapeError: the two take different inputs (image size or channels).
    """
    ca, ea, fa = _deployed(path_a)
    cb, eb, fb = _deployed(path_b)
    if (ca.config.in_chans, ca.config.img_size) != (cb.config.in_chans, cb.config.img_size):
        raise LandscapeError("the two models take different inputs: their latency is not compared")
    entry = Store().entry("latency", {"a": ca.sha256, "b": cb.sha256, "batch": batch, "rounds": PAIRED_ROUNDS})
    res = entry.result()
    if res is None:
        x = torch.randn(batch, ca.config.in_chans, ca.config.img_size, ca.config.img_size)
        with torch.random.fork_rng(devices=[]):
            a, b = measure_paired_latency(ea, eb, x, fa, fb, rounds=PAIRED_ROUNDS)
        with entry.lock():
            entry.save_result({"a_ms": a, "b_ms": b}, {"threads": torch.get_num_threads()})
    else:
        a, b = res.arrays["a_ms"], res.arrays["b_ms"]
    return {"a_ms": [float(v) for v in a], "b_ms": [float(v) for v in b]}


def _train_seed(train: dict) -> int | None:
    """The training seed a checkpoint records (ours do; foreign ones may not)."""
    seed = train.get("seed")
    return int(seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else None
