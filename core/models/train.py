"""Training: MAE and RC-MAE pre-training, the supervised ViT, and linear probes on any encoder.

Every run is described by a frozen config; the checkpoint's file name carries a content hash of that config, so
asking for the same run twice returns the file already trained (delete it or pass `force=True` to retrain).
Runs are seeded and deterministic on the CPU. After every epoch the whole training state (weights, optimizer,
generator, history, snapshots) is written next to the checkpoint (`<checkpoint>.resume`): a run that is killed or
stopped continues from its last finished epoch when asked again, and ends bit for bit like an uninterrupted run.

Evaluation (validation loss, and the ridge probe or validation accuracy) runs on a schedule, `eval_epochs`: every
epoch up to `EVAL_DENSE_EPOCHS`, then every `EVAL_SPARSE_EVERY`-th epoch, and always the last. It reads the weights
and draws from generators of its own, so the weights, and the values at the epochs it evaluates, do not depend on
the schedule; the schedule is therefore not part of the cache key (a run of up to `EVAL_DENSE_EPOCHS` epochs, every
run the convergence numbers read, is evaluated after every epoch as before). The checkpoint records the schedule
(`train["eval_schedule"]`), and each history row its evaluation time (`eval_s`) and the process's CPU seconds
(`cpu_s`) beside the training wall time (`time_s`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.device import pick_device
from core.errors import LandscapeError
from core.models.checkpoints import (
    FORMAT,
    LoadedCheckpoint,
    atomic_torch_save,
    code_version,
    cpu_state,
    load_checkpoint,
    probe_state,
    read_state_file,
    save_checkpoint,
)
from core.models.data import Dataset, load_dataset
from core.models.hub import is_hub_reference
from core.models.vit import (
    EMA_RULE,
    EMA_SCHEDULES,
    MODEL_KINDS,
    RCMAE,
    LinearProbe,
    build_model,
    ema_momentum_at,
    encode,
    encoder_of,
    preset,
    resolve_ema_momentum,
)
from core.paths import cache_root
from core.store import content_hash


@dataclass(frozen=True)
class TrainConfig:
    """One pre-training (mae, rcmae) or supervised (sup) run."""

    kind: str = "mae"
    data: str = "digits"  # a data spec: digits, synthetic, folder:<path>, cifar10:<path>
    preset: str = "tiny"  # architecture (core.models.vit.PRESETS)
    epochs: int = 30  # the tiny models settle on digits in ~30 epochs
    batch_size: int = 128  # 11 steps per digits epoch: enough updates, cheap on 2 cores
    lr: float = 2e-3  # AdamW; tiny ViTs tolerate a larger rate than ViT-B's 1.5e-4 * batch/256
    weight_decay: float = 0.05  # as MAE, on matrices only
    warmup_epochs: int = 3  # linear warm-up avoids early attention collapse
    mask_ratio: float = 0.75  # MAE's default
    # RC-MAE's teacher momentum: "auto" keeps the paper's teacher horizon in epochs (EMA scaling rule, see
    # `resolve_ema_momentum`); a float is used as it is (0.996 is the paper's value at 312 steps per epoch).
    ema_momentum: float | str = "auto"
    # "constant": m at every step. "cosine": from m to 1 over the whole run's steps (`ema_momentum_at`), as the
    # RC-MAE paper describes; its official code indexes that schedule by the step within the epoch, so there the
    # momentum stays at ~m and "constant" is what it effectively trains with.
    ema_schedule: str = "constant"
    gamma: float = 1.0  # RC-MAE's consistency weight
    norm_pix_loss: bool = False  # per-patch normalized targets; off for digits (blank patches have no variance)
    seed: int = 0  # weights, batch order and masks
    max_train: int | None = None  # cap on training images (what-if: training-set size)
    val_fraction: float = 0.2
    split_seed: int = 0  # the train/val split is the same for every model seed: fair comparisons
    n_snapshots: int = 6  # weight snapshots kept for trajectory (PCA) directions

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise LandscapeError(f"unknown model kind {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise LandscapeError("epochs and batch size must be at least 1")
        if not 0.0 < self.mask_ratio < 1.0:
            raise LandscapeError(f"mask ratio must be in (0, 1), got {self.mask_ratio}")
        if isinstance(self.ema_momentum, (str, bool)):
            if self.ema_momentum != "auto":
                raise LandscapeError(f"EMA momentum must be 'auto' or a number in [0, 1], got {self.ema_momentum!r}")
        elif not 0.0 <= self.ema_momentum <= 1.0:
            raise LandscapeError(f"EMA momentum must be in [0, 1], got {self.ema_momentum}")
        if self.ema_schedule not in EMA_SCHEDULES:
            raise LandscapeError(
                f"unknown EMA schedule {self.ema_schedule!r}; choose one of {', '.join(EMA_SCHEDULES)}"
            )

    def key(self) -> dict:
        """Everything that changes the trained weights (the kind-irrelevant fields are dropped)."""
        d = asdict(self)
        if self.kind == "sup":
            for k in ("mask_ratio", "ema_momentum", "ema_schedule", "gamma", "norm_pix_loss"):
                d.pop(k)
        elif self.kind == "mae":
            for k in ("ema_momentum", "ema_schedule", "gamma"):
                d.pop(k)
        elif self.ema_schedule == "constant":
            d.pop("ema_schedule")  # runs from before the schedule existed keep their keys (and cached files)
        return d


@dataclass(frozen=True)
class ProbeConfig:
    """A linear probe on a frozen encoder (features computed once: no augmentation, eval mode)."""

    epochs: int = 50  # features are precomputed, so epochs are nearly free
    batch_size: int = 256
    lr: float = 1e-2  # AdamW on BatchNorm-ed features
    weight_decay: float = 0.0
    pool: str = "cls"  # cls token or mean of the patch tokens
    use: str = "teacher"  # RC-MAE: probe the teacher (deployed) or the student
    seed: int = 0


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    elapsed: float
    message: str = ""

    @property
    def done(self) -> int:
        """Steps finished so far in the whole run."""
        return (self.epoch - 1) * self.steps + self.step

    @property
    def total(self) -> int:
        return self.epochs * self.steps

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / max(1, self.total))


ProgressFn = Callable[[Progress], None]

# The evaluation schedule. Dense through 100 epochs: the convergence numbers (epochs to a shared target) are read on
# runs of up to 90 epochs (the default 30 and the regime grid's 3x), which must keep every epoch; beyond, one
# evaluation in 10 keeps the curve's shape and the plateau rule's last fifth (core.studies.roi) well sampled.
EVAL_DENSE_EPOCHS = 100
EVAL_SPARSE_EVERY = 10
EVAL_SCHEDULES = ("sparse", "every")


def eval_epochs(epochs: int, schedule: str = "sparse") -> tuple[int, ...]:
    """The epochs (1-based) after which a run of `epochs` epochs evaluates: with "sparse" (the default) every epoch
    up to `EVAL_DENSE_EPOCHS`, then every `EVAL_SPARSE_EVERY`-th, and always the last; with "every", every epoch."""
    if schedule not in EVAL_SCHEDULES:
        raise LandscapeError(f"unknown evaluation schedule {schedule!r}; choose one of {', '.join(EVAL_SCHEDULES)}")
    if schedule == "every":
        return tuple(range(1, epochs + 1))
    return tuple(e for e in range(1, epochs + 1) if e <= EVAL_DENSE_EPOCHS or e % EVAL_SPARSE_EVERY == 0 or e == epochs)


def eval_schedule_text(schedule: str = "sparse") -> str:
    """The schedule in words, as a checkpoint records it."""
    if schedule == "every":
        return "every epoch"
    return f"every epoch to {EVAL_DENSE_EPOCHS}, then every {EVAL_SPARSE_EVERY}th, and the last"


def checkpoint_path(cfg: TrainConfig) -> Path:
    """Where a run's checkpoint lives: `<cache>/checkpoints/<kind>_<data>_<preset>_s<seed>_<hash>.pt`."""
    data = "".join(c if c.isalnum() else "-" for c in cfg.data.split(":")[0])
    return (
        cache_root() / "checkpoints" / f"{cfg.kind}_{data}_{cfg.preset}_s{cfg.seed}_{content_hash(cfg.key())[:10]}.pt"
    )


RESUME_FORMAT = "vit-landscape-resume/1"


def resume_path(path: Path) -> Path:
    """The training state kept after each epoch of the run that writes `path` (deleted once it is saved)."""
    return path.with_name(path.name + ".resume")


def load_resume(path: Path, key: dict) -> dict | None:
    """The resume state saved next to `path` by the run whose key is `key`, or None (absent, unreadable, another
    run's). Shared by every trainer that writes `<checkpoint>.resume` (pre-training here, `core.models.finetune`)."""
    rp = resume_path(path)
    if not rp.exists():
        return None
    try:
        state = read_state_file(rp)
    except LandscapeError:
        return None  # half-written by a crash or tampered with: start over, never load it unsafely
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT or state.get("config") != key:
        return None
    return state


class EpochRun:
    """The bookkeeping of a resumable run of `epochs` epochs of `steps` optimizer steps, shared by every trainer
    that writes `<checkpoint>.resume` (`train_model` here, `core.models.finetune.finetune`).

    It resumes (model and optimizer state, the "resumed after epoch N" report), polls `check_stop`, sets the
    warm-up + cosine rate, takes the optimizer step (refusing a non-finite loss), reports progress, writes the
    training state after every epoch but the last and deletes it once the checkpoint is saved. What differs
    between trainers stays with them: the batches, the loss, the generator they restore, what an epoch records.
    `what` names the run in the one-line errors ("training stopped before it finished; ...").
    """

    def __init__(
        self,
        path: Path,
        key: dict,
        epochs: int,
        steps: int,
        dev: torch.device,
        *,
        what: str,
        progress: ProgressFn | None,
        check_stop: Callable[[], bool] | None,
    ):
        self.path, self.key, self.epochs, self.steps, self.dev, self.what = path, key, epochs, steps, dev, what
        self.progress, self.check_stop = progress, check_stop
        self.first = 1  # the first epoch still to train
        self.t_start = time.perf_counter()

    def resume(self, model: nn.Module, opt: torch.optim.Optimizer, loss_key: str) -> dict | None:
        """Load this run's saved state into `model` and `opt` and report it (the last epoch's `loss_key`); returns
        the state, for the trainer's own entries (its generator, history, ...), or None: start from epoch 1."""
        state = load_resume(self.path, self.key)
        if state is None:
            return None
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        done = int(state["epoch"])
        self.first = done + 1
        if self.progress is not None:
            last = state["history"][-1][loss_key] if state["history"] else math.nan
            self.progress(Progress(done, self.epochs, self.steps, self.steps, last, 0.0, f"resumed after epoch {done}"))
        return state

    def epochs_left(self) -> range:
        return range(self.first, self.epochs + 1)

    def poll_stop(self, epoch: int) -> None:
        """Raises LandscapeError when `check_stop` asks to stop (the finished epochs stay in the resume file)."""
        if self.check_stop is not None and self.check_stop():
            kept = f"{epoch - 1} finished epoch(s) are kept, ask again to continue" if epoch > 1 else "nothing kept"
            raise LandscapeError(f"{self.what} stopped before it finished; {kept}")

    def set_lr(self, opt: torch.optim.Optimizer, step: int, warmup_epochs: int, base: float) -> float:
        """Give every group the rate of run step `step` (linear warm-up, then cosine to 0), times its `lr_scale`
        when it has one (layer-wise decay); returns the unscaled rate."""
        lr = cosine_lr(step, self.epochs * self.steps, warmup_epochs * self.steps, base)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"] if "lr_scale" in group else lr
        return lr

    def autocast(self) -> torch.autocast:
        """bfloat16 mixed precision on CUDA, full precision elsewhere."""
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda")

    def optimizer_step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, epoch: int, s: int) -> None:
        """Backward and step on `loss` (step `s` of `epoch`, from 0); a non-finite loss is a LandscapeError."""
        if not torch.isfinite(loss):
            raise LandscapeError(f"{self.what} diverged at epoch {epoch} step {s + 1} (loss {float(loss.detach())})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def report(self, epoch: int, s: int, loss: float) -> None:
        if self.progress is not None:
            self.progress(Progress(epoch, self.epochs, s + 1, self.steps, loss, time.perf_counter() - self.t_start))

    def save_state(self, epoch: int, model: nn.Module, opt: torch.optim.Optimizer, **entries) -> None:
        """After epoch `epoch` (but the last): the training state, with the trainer's own `entries`, atomically."""
        if epoch < self.epochs:
            state = {
                "format": RESUME_FORMAT,
                "config": self.key,
                "epoch": epoch,
                "model": cpu_state(model),
                "opt": opt.state_dict(),
            }
            atomic_torch_save(state | entries, resume_path(self.path))

    def finish(self) -> None:
        """The checkpoint is saved: its resume state is no longer needed."""
        resume_path(self.path).unlink(missing_ok=True)


def dataset_record(ds: Dataset) -> dict:
    """What a checkpoint records about its data (before the trainer's own entries: split, budget)."""
    return {
        "spec": ds.spec,
        "fingerprint": ds.fingerprint(),
        "image_size": ds.image_size,
        "in_chans": ds.in_chans,
        "num_classes": ds.num_classes,
        "classes": list(ds.classes),
        "n_train": int(ds.train_x.shape[0]),
        "n_val": int(ds.val_x.shape[0]),
    }


def data_info(ds: Dataset, cfg: TrainConfig) -> dict:
    return dataset_record(ds) | {
        "val_fraction": cfg.val_fraction,
        "split_seed": cfg.split_seed,
        "max_train": cfg.max_train,
    }


def dataset_for(cfg: TrainConfig) -> Dataset:
    return load_dataset(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.split_seed, max_train=cfg.max_train)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)  # no decay on biases, norms (as MAE)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cosine_lr(step: int, total: int, warmup: int, base: float, final: float = 0.0) -> float:
    """Linear warm-up then half-cosine decay to `final`."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def ridge_probe_accuracy(encoder: nn.Module, ds: Dataset, device: torch.device, lam: float = 1e-2) -> float:
    """Validation accuracy of a closed-form ridge classifier on frozen features: a cheap per-epoch probe."""
    was = encoder.training
    encoder.eval()
    ftr = _features(encoder, ds.train_x, device)
    fva = _features(encoder, ds.val_x, device)
    encoder.train(was)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fva = (ftr - mu) / sd, (fva - mu) / sd
    ftr = torch.cat([ftr, torch.ones(len(ftr), 1, device=device)], 1)
    fva = torch.cat([fva, torch.ones(len(fva), 1, device=device)], 1)
    y = F.one_hot(ds.train_y.to(device), ds.num_classes).float()
    a = ftr.T @ ftr + lam * len(ftr) * torch.eye(ftr.shape[1], device=device)
    w = torch.linalg.solve(a, ftr.T @ y)
    return float(((fva @ w).argmax(1).cpu() == ds.val_y).float().mean())


def _features(encoder: nn.Module, x: torch.Tensor, device: torch.device, pool: str = "cls", bs: int = 512):
    return torch.cat([encode(encoder, x[i : i + bs].to(device), pool) for i in range(0, len(x), bs)])


@torch.no_grad()
def _val_pretrain_loss(model: nn.Module, ds: Dataset, cfg: TrainConfig, device: torch.device) -> float:
    """MAE loss on the validation set with masks fixed by seed 0: comparable across epochs and models."""
    mae = model.student if isinstance(model, RCMAE) else model
    g = torch.Generator().manual_seed(0)
    noise = mae.draw_noise(len(ds.val_x), generator=g)
    was = mae.training
    mae.eval()
    total = 0.0
    for i in range(0, len(ds.val_x), 512):
        x = ds.val_x[i : i + 512].to(device)
        loss, _, _ = mae(x, cfg.mask_ratio, noise[i : i + 512].to(device))
        total += float(loss) * len(x)
    mae.train(was)
    return total / len(ds.val_x)


@torch.no_grad()
def _val_supervised(model: nn.Module, ds: Dataset, device: torch.device) -> tuple[float, float]:
    return supervised_metrics(model, ds.val_x, ds.val_y, device)


@torch.no_grad()
def supervised_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """(cross-entropy, accuracy) of a classifier on images `x` with labels `y`, in eval mode, in batches of 512."""
    was = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + 512].to(device)) for i in range(0, len(x), 512)])
    model.train(was)
    y = y.to(device)
    return float(F.cross_entropy(logits.float(), y)), float((logits.argmax(1) == y).float().mean())


def train_model(
    cfg: TrainConfig,
    *,
    progress: ProgressFn | None = None,
    device: str = "auto",
    force: bool = False,
    check_stop: Callable[[], bool] | None = None,
    path: Path | None = None,
    eval_schedule: str = "sparse",
) -> Path:
    """Train one model (or find it already trained) and return its checkpoint path.

    Args:
        cfg: the run.
        progress: called after every step with a `Progress`.
        device: 'auto' (CUDA when present), 'cpu' or 'cuda'.
        force: retrain even if the checkpoint exists.
        check_stop: polled between steps; returning True stops the run (its finished epochs are kept in the
            resume file, so asking again continues).
        path: where to write (default: `checkpoint_path(cfg)` under the cache).
        eval_schedule: "sparse" (`eval_epochs`) or "every" epoch (bench/eval_schedule.py's reference). The weights
            do not depend on it, so it is not in the cache key: a cached run is returned whatever it was.
    """
    evaluated = set(eval_epochs(cfg.epochs, eval_schedule))
    path = Path(path) if path is not None else checkpoint_path(cfg)
    if path.exists() and not force and reusable_checkpoint(path, lambda found: _same_run(found, cfg)):
        return path
    dev = pick_device(device)
    ds = dataset_for(cfg)
    arch = preset(
        cfg.preset,
        img_size=ds.image_size,
        in_chans=ds.in_chans,
        num_classes=ds.num_classes,
        norm_pix_loss=cfg.norm_pix_loss,
    )
    if ds.image_size % arch.patch_size:
        raise LandscapeError(f"image size {ds.image_size} is not a multiple of the patch size {arch.patch_size}")
    n = len(ds.train_x)
    steps = max(1, n // cfg.batch_size)  # drop the last partial batch: equal-sized steps
    total = cfg.epochs * steps
    momentum = resolve_ema_momentum(cfg.ema_momentum, steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.kind, arch, momentum=momentum, gamma=cfg.gamma).to(dev)
    trained = model.student if isinstance(model, RCMAE) else model
    opt = torch.optim.AdamW(_param_groups(trained, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(cfg.seed)
    snap_epochs = _snapshot_epochs(cfg.epochs, cfg.n_snapshots)
    snapshots = [(0, _clone_state(trained))] if 0 in snap_epochs else []
    history: list[dict] = []
    run = EpochRun(path, cfg.key(), cfg.epochs, steps, dev, what="training", progress=progress, check_stop=check_stop)
    state = run.resume(model, opt, "train_loss") if not force else None
    if state is not None:
        gen.set_state(state["gen"])
        history, snapshots = list(state["history"]), [(int(e), s) for e, s in state["snapshots"]]
    for epoch in run.epochs_left():
        model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(n, generator=gen)
        losses = []
        for step in range(steps):
            run.poll_stop(epoch)
            lr = run.set_lr(opt, (epoch - 1) * steps + step, cfg.warmup_epochs, cfg.lr)
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = ds.train_x[idx].to(dev, non_blocking=True)
            with run.autocast():
                if cfg.kind == "sup":
                    loss = F.cross_entropy(model(x), ds.train_y[idx].to(dev))
                else:
                    noise = torch.rand(len(idx), arch.num_patches, generator=gen).to(dev)
                    loss, _, _ = model(x, cfg.mask_ratio, noise)
            run.optimizer_step(opt, loss, epoch, step)
            if isinstance(model, RCMAE):
                model.ema_update(ema_momentum_at(momentum, (epoch - 1) * steps + step, total, cfg.ema_schedule))
            losses.append(float(loss.detach()))
            run.report(epoch, step, losses[-1])
        t1 = time.perf_counter()
        record = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "time_s": t1 - t0, "lr": lr}
        if epoch in evaluated:
            if cfg.kind == "sup":
                record["val_loss"], record["val_acc"] = _val_supervised(model, ds, dev)
            else:
                record["val_loss"] = _val_pretrain_loss(model, ds, cfg, dev)
                record["probe_acc"] = ridge_probe_accuracy(encoder_of(model), ds, dev)
        record["eval_s"] = time.perf_counter() - t1
        record["cpu_s"] = time.process_time() - c0  # this process's CPU seconds (every torch thread), training + eval
        history.append(record)
        if epoch in snap_epochs:
            snapshots.append((epoch, _clone_state(trained)))
        run.save_state(epoch, model, opt, gen=gen.get_state(), history=history, snapshots=snapshots)
    model.eval().cpu()
    saved = save_checkpoint(
        path,
        model,
        cfg.kind,
        arch,
        train=asdict(cfg) | ema_record(cfg, steps) | {"eval_schedule": eval_schedule_text(eval_schedule)},
        data=data_info(ds, cfg),
        history=history,
        snapshots=snapshots,
    )
    run.finish()
    return saved


def ema_record(cfg: TrainConfig, steps_per_epoch: int) -> dict:
    """What a checkpoint records about its teacher momentum beside the config (RC-MAE only): the value used, the
    rule that gave it and the steps per epoch it was resolved for; with the cosine schedule, the last step's value."""
    if cfg.kind != "rcmae":
        return {}
    m = resolve_ema_momentum(cfg.ema_momentum, steps_per_epoch)
    total = cfg.epochs * steps_per_epoch
    out = {
        "ema_momentum_resolved": m,
        "ema_rule": EMA_RULE if cfg.ema_momentum == "auto" else "explicit value",
        "steps_per_epoch": steps_per_epoch,
    }
    if cfg.ema_schedule != "constant":
        out["ema_momentum_final"] = ema_momentum_at(m, total - 1, total, cfg.ema_schedule)
    return out


def reusable_checkpoint(path: Path, same: Callable[[LoadedCheckpoint], bool]) -> bool:
    """Whether an existing file is the run asked for (True), broken (False: train again), or another run (error).

    Only an explicit `path` can hold another run (default paths are named by the config's hash); returning it as if
    trained would hand the caller the wrong model, overwriting it silently could destroy someone's file.
    """
    try:
        found = load_checkpoint(path)
    except LandscapeError:
        return False  # a broken file from an earlier crash
    if not same(found):
        raise LandscapeError(f"{path} already holds another model or run; pass force to overwrite it")
    return True


def _same_run(found: LoadedCheckpoint, cfg: TrainConfig) -> bool:
    train = found.meta.get("train")
    if found.source != "ours" or found.kind != cfg.kind or not isinstance(train, dict):
        return False
    try:
        stored = TrainConfig(**{k: v for k, v in train.items() if k in TrainConfig.__dataclass_fields__})
    except (LandscapeError, TypeError):
        return False
    return stored.key() == cfg.key()


def _snapshot_epochs(epochs: int, n: int) -> set[int]:
    if n <= 0:
        return set()
    if n == 1:
        return {epochs}
    return {round(i * epochs / (n - 1)) for i in range(n)}


def _clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().cpu().clone() for k, p in module.named_parameters() if p.requires_grad}


# --------------------------------------------------------------------------------------------------------------------
# Linear probes


def probe_path(encoder_ckpt: Path, sha: str, cfg: ProbeConfig, data: str | None = None) -> Path:
    """Where a probe lives: next to its encoder, named by a hash of the encoder's content, the config and `data`
    (only when the probe reads other data than the encoder's own)."""
    key = [sha, asdict(cfg)] + ([data] if data else [])
    if is_hub_reference(encoder_ckpt):  # hf:org/name, timm:name: under the cache, never inside the HF cache
        stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in str(encoder_ckpt))
        return cache_root() / "checkpoints" / "hub" / f"{stem}.probe_{content_hash(key)[:10]}.pt"
    return encoder_ckpt.parent / f"{encoder_ckpt.stem}.probe_{content_hash(key)[:10]}.pt"


def train_probe(
    encoder_ckpt: str | Path,
    cfg: ProbeConfig = ProbeConfig(),
    *,
    data: str | None = None,
    progress: ProgressFn | None = None,
    device: str = "auto",
    force: bool = False,
    path: Path | None = None,
) -> Path:
    """Train a linear probe on a checkpoint's frozen encoder and return the probe checkpoint's path.

    Args:
        encoder_ckpt: any loadable checkpoint with an encoder (MAE, RC-MAE, supervised ViT).
        cfg: the probe run.
        data: data spec; defaults to the encoder's own training data (our checkpoints) or digits.
    """
    encoder_ckpt = Path(encoder_ckpt)
    base = load_checkpoint(encoder_ckpt)
    if base.kind == "probe":
        raise LandscapeError(f"{encoder_ckpt.name} is already a probe; give the encoder's checkpoint")
    dmeta = base.meta.get("data") or {}
    own_spec = dmeta.get("spec") or "digits"
    spec = data or own_spec
    # Other data makes another probe: it must not be answered by the cached probe of the encoder's own data.
    other_data = None if spec == own_spec else spec
    path = Path(path) if path is not None else probe_path(encoder_ckpt, base.sha256, cfg, other_data)
    probe_desc = asdict(cfg) | {"data": spec}

    def same_probe(found: LoadedCheckpoint) -> bool:
        enc = found.meta.get("encoder") or {}
        return found.kind == "probe" and found.meta.get("probe") == probe_desc and enc.get("sha256") == base.sha256

    if path.exists() and not force and reusable_checkpoint(path, same_probe):
        return path
    dev = pick_device(device)
    ds = encoder_dataset(base, spec)
    encoder = base.model.student if (base.kind == "rcmae" and cfg.use == "student") else encoder_of(base.model)
    encoder = encoder.to(dev).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        probe = LinearProbe(encoder, ds.num_classes, pool=cfg.pool).to(dev)
    with torch.no_grad():
        ftr = _features(encoder, ds.train_x, dev, cfg.pool)
        fva = _features(encoder, ds.val_x, dev, cfg.pool)
    ytr, yva = ds.train_y.to(dev), ds.val_y.to(dev)
    head = nn.Sequential(probe.bn, probe.head)
    opt = torch.optim.AdamW(probe.head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps = max(1, math.ceil(len(ftr) / cfg.batch_size))
    history = []
    t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        head.train()
        perm = torch.randperm(len(ftr), generator=gen).to(dev)
        losses = []
        for step in range(steps):
            lr = cosine_lr((epoch - 1) * steps + step, cfg.epochs * steps, steps, cfg.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            loss = F.cross_entropy(head(ftr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(Progress(epoch, cfg.epochs, step + 1, steps, losses[-1], time.perf_counter() - t_start))
        head.eval()
        with torch.no_grad():
            logits = head(fva)
        history.append(
            {
                "epoch": epoch,
                "train_loss": sum(losses) / max(1, len(losses)),
                "val_loss": float(F.cross_entropy(logits, yva)),
                "val_acc": float((logits.argmax(1) == yva).float().mean()),
                "time_s": time.perf_counter() - t0,
            }
        )
    probe.eval().cpu()
    obj = {
        "format": FORMAT,
        "kind": "probe",
        "config": base.config.to_dict(),
        "encoder": {"path": _encoder_record(encoder_ckpt, path.parent), "sha256": base.sha256, "kind": base.kind},
        "probe": probe_desc,
        "head": probe_state(probe),
        "history": history,
        "seed": cfg.seed,
        "code_version": code_version(),
        "data": {"spec": spec, "fingerprint": ds.fingerprint(), "num_classes": ds.num_classes},
    }
    atomic_torch_save(obj, path)
    return path


def encoder_dataset(base: LoadedCheckpoint, spec: str) -> Dataset:
    """Data `spec` for a new head on a checkpoint's encoder (probes, `core.models.finetune`): at the encoder's image
    size, split as the checkpoint's own training data was (its validation fraction and split seed; 0.2 and 0 when it
    does not say).

    Raises:
        LandscapeError: data whose channels are not the encoder's (or that cannot be read).
    """
    dmeta = base.meta.get("data") or {}
    ds = load_dataset(
        spec,
        image_size=base.config.img_size,
        val_fraction=dmeta.get("val_fraction", 0.2),
        seed=dmeta.get("split_seed", 0),
        normalize=base.image_stats,  # the checkpoint's own mean / std where it states them (core.models.hub)
    )
    if ds.in_chans != base.config.in_chans:
        raise LandscapeError(f"data {spec} has {ds.in_chans} channels, the encoder expects {base.config.in_chans}")
    return ds


def _encoder_record(encoder_ckpt: Path, folder: Path) -> str:
    """How a probe names its encoder: a hub id as it is, a path relative to the probe's folder where it can be."""
    return str(encoder_ckpt) if is_hub_reference(encoder_ckpt) else _relative_or_absolute(encoder_ckpt, folder)


def _relative_or_absolute(target: Path, base: Path) -> str:
    try:
        return str(target.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(target.resolve())


def probe_accuracy(loaded: LoadedCheckpoint) -> float | None:
    """Final validation accuracy recorded in a probe or supervised checkpoint's history."""
    hist = loaded.meta.get("history") or []
    return hist[-1].get("val_acc") if hist else None
