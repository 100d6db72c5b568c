"""Cache keys: every input that changes the numbers changes the key and the cache entry; nothing else does.

One table per key function: `Objective.key()` (core/models/objectives.py), `surface_key` and its family hash
(core/measure/surfaces.py), each stage key of a flatness report (core/measure/flatness.py), the fine-tuning run's
checkpoint path (core/models/finetune.py) and the convexity map's key (core/measure/convexity.py). Every field of the
spec dataclass is classified: in a row that must change the key, or named with the reason it must not. A field added
to a dataclass without being classified fails `test_every_*_field_is_classified`, so no future key drops one silently.

Keys are computed, not numbers: the objectives are built (fixed data and masks, a few ms for the micro models), the
flatness stages are intercepted where they would be looked up in the store. "Another cache entry" means another
folder from `Store.entry` under a private cache root. One real computation checks the end-to-end case the audit
found: a surface with mask seed 1 is not served from the mask seed 0 entry.

Below them, the hashing every key goes through (core/store/keys.py): `content_hash` of plain values and the memoized
`file_hash` of a checkpoint's bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import core.measure.flatness as fr
from core.errors import LandscapeError
from core.measure.flatness import STAGES, FlatnessSpec, compute_flatness
from core.measure.surfaces import SurfaceSpec, compute_surface, family_hash, surface_key
from core.models.checkpoints import load_checkpoint
from core.models.objectives import ObjectiveSpec, build_objective
from core.store.keys import content_hash, file_hash
from core.store.store import Store


@dataclass(frozen=True)
class Ck:
    """A checkpoint of the session (`trained_ckpts[kind]`), or a byte copy of it at another path (`copy=True`)."""

    kind: str
    copy: bool = False


@pytest.fixture(scope="module")
def env(tmp_path_factory, trained_cache_dir, trained_ckpts):
    """A private cache holding copies of the session checkpoints (probes find their encoders there), a byte copy of
    the MAE and of the RC-MAE at other paths, and LANDSCAPE_CACHE_DIR pointing at it for the whole module."""
    root = tmp_path_factory.mktemp("keys_cache")
    shutil.copytree(trained_cache_dir / "checkpoints", root / "checkpoints")
    paths = {(k, False): root / "checkpoints" / Path(p).name for k, p in trained_ckpts.items()}
    for kind in ("mae", "rcmae", "sup"):
        copy = root / "copies" / kind / paths[(kind, False)].name
        copy.parent.mkdir(parents=True)
        shutil.copy2(paths[(kind, False)], copy)
        paths[(kind, True)] = copy
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(root))
        yield {"root": root, "paths": paths, "loaded": {}, "objectives": {}}


def resolve(env, value: Any) -> Any:
    """Replace `Ck` placeholders (also inside tuples) by checkpoint paths."""
    if isinstance(value, Ck):
        return str(env["paths"][(value.kind, value.copy)])
    if isinstance(value, tuple):
        return tuple(resolve(env, v) for v in value)
    return value


def resolved(env, overrides: dict) -> dict:
    return {k: resolve(env, v) for k, v in overrides.items()}


def objective(env, checkpoint: str, spec: ObjectiveSpec):
    """The objective as compute_surface / compute_flatness build it (memoized per checkpoint and spec)."""
    if checkpoint not in env["loaded"]:
        env["loaded"][checkpoint] = load_checkpoint(checkpoint)
    memo = (checkpoint, spec)
    if memo not in env["objectives"]:
        env["objectives"][memo] = build_objective(env["loaded"][checkpoint], spec, "cpu")
    return env["objectives"][memo]


def entry_path(env, kind: str, key: dict) -> Path:
    return Store(env["root"]).entry(kind, key).path


# --------------------------------------------------------------------------------------------------------------
# Objective.key()

OBJ_BASE = dict(samples=16)
# (field, base overrides, change): the key must change.
OBJ_CHANGES = [
    ("samples", {}, dict(samples=17)),
    ("data_seed", {}, dict(data_seed=1)),
    ("mask_seed", {}, dict(mask_seed=1)),
    ("split", {}, dict(split="train")),
    ("data", {}, dict(data="digits")),
    ("mask_ratio", {}, dict(mask_ratio=0.5)),
    ("rcmae_terms", {"ckpt": Ck("rcmae")}, dict(rcmae_terms="mae")),
    ("autocast", {}, dict(autocast=True)),
]
# Fields the key holds by what they resolve to, or not at all; each with a row below showing the equal key.
OBJ_NOT_KEYED = {
    "loss": "keyed as the concrete kind it resolves to: 'own' is the checkpoint's own loss, and a checkpoint has "
    "exactly one valid loss of its kind, so no change of this field alone changes the numbers",
    "batch_size": "images per forward (a memory bound): changes float summation order only marginally "
    "(tests/test_objectives.py::test_batching_does_not_change_the_loss)",
    "prefix_scope": "caches the unperturbed prefix: the same numbers with fewer FLOPs (tests/test_objectives.py)",
}
# (field, base overrides, change, reason): the key must stay the same.
OBJ_SAME = [
    ("loss", {}, dict(loss="pretrain"), "own resolves to pretrain for an MAE"),
    ("batch_size", {}, dict(batch_size=4), OBJ_NOT_KEYED["batch_size"]),
    ("prefix_scope", {}, dict(prefix_scope="decoder"), OBJ_NOT_KEYED["prefix_scope"]),
    ("data", {}, dict(data="synthetic"), "None is the checkpoint's own data, which is synthetic: same fingerprint"),
    ("mask_ratio", {}, dict(mask_ratio=0.75), "None is the checkpoint's own ratio, 0.75"),
]


def objective_key(env, overrides: dict) -> dict:
    kw = dict(OBJ_BASE | overrides)
    ckpt = resolve(env, kw.pop("ckpt", Ck("mae")))
    return objective(env, ckpt, ObjectiveSpec(**kw)).key()


def test_every_objective_spec_field_is_classified():
    names = {f.name for f in fields(ObjectiveSpec)}
    changed = {row[0] for row in OBJ_CHANGES}
    assert names == changed | set(OBJ_NOT_KEYED), (
        f"classify these ObjectiveSpec fields in tests/test_keys.py: {sorted(names ^ (changed | set(OBJ_NOT_KEYED)))}"
    )
    assert set(OBJ_NOT_KEYED) <= {row[0] for row in OBJ_SAME}


@pytest.mark.parametrize(("field", "base", "change"), OBJ_CHANGES, ids=[r[0] for r in OBJ_CHANGES])
def test_objective_key_changes_with(env, field, base, change):
    before, after = objective_key(env, base), objective_key(env, base | change)
    assert before != after, f"{field} changes the objective's numbers but not its key"
    assert entry_path(env, "flatness", before) != entry_path(env, "flatness", after)


@pytest.mark.parametrize(("field", "base", "change", "reason"), OBJ_SAME, ids=[r[0] for r in OBJ_SAME])
def test_objective_key_is_the_same_for(env, field, base, change, reason):
    assert objective_key(env, base) == objective_key(env, base | change), reason


def test_objective_key_names_the_checkpoint_and_the_resolved_loss(env):
    key = objective_key(env, {})
    assert key["checkpoint"] == env["loaded"][resolve(env, Ck("mae"))].sha256 and key["loss"] == "pretrain"
    assert objective_key(env, {"ckpt": Ck("probe")})["loss"] == "probe"


# --------------------------------------------------------------------------------------------------------------
# surface_key and family_hash

SURF_BASE = dict(grid=5, span=0.5, samples=16, device="cpu")
# (field, base overrides, change): the key, the cache entry and the family (whose entries lend each other lattice
# points) must all change, except where the row says the family is shared (nested grids of one span).
SURF_CHANGES: list[tuple[str, dict, dict]] = [
    ("checkpoint", {}, dict(checkpoint=Ck("rcmae"))),
    ("dim", {}, dict(dim=1)),
    ("grid", {}, dict(grid=6)),  # not 2**k + 1: its own lattice, its own family
    ("span", {}, dict(span=0.25)),
    ("directions", {}, dict(directions="pca")),
    ("directions", {}, dict(directions="hessian")),
    ("directions", {"dim": 1}, dict(directions="interpolate", others=(Ck("rcmae"),))),
    ("others", {"dim": 1, "directions": "interpolate", "others": (Ck("rcmae"),)}, dict(others=(Ck("sup"),))),
    ("others", {"directions": "plane", "others": (Ck("rcmae"), Ck("sup"))}, dict(others=(Ck("sup"), Ck("rcmae")))),
    ("norm", {}, dict(norm="layer")),
    ("norm", {}, dict(norm="none")),
    ("ignore", {}, dict(ignore="none")),
    ("scope", {}, dict(scope="decoder")),
    ("include", {}, dict(include=("blocks",))),
    ("exclude", {}, dict(exclude=("pos_embed",))),
    ("seed", {}, dict(seed=1)),
    ("orthogonal", {}, dict(orthogonal=True)),
    ("samples", {}, dict(samples=17)),
    ("data_seed", {}, dict(data_seed=1)),
    ("mask_seed", {}, dict(mask_seed=1)),
    ("data", {}, dict(data="digits")),
    ("split", {}, dict(split="train")),
    ("rcmae_terms", {"checkpoint": Ck("rcmae")}, dict(rcmae_terms="mae")),
    ("dtype", {}, dict(dtype="bf16")),
]
SURF_SAME_FAMILY = [("grid", {}, dict(grid=9))]  # nested grid: another entry, shared lattice points
SURF_NOT_KEYED = {
    "loss": OBJ_NOT_KEYED["loss"],
    "device": "where it runs, not what: the key holds no device (the same numbers up to float rounding)",
    "batch_points": "grid points per vectorized forward: the same numbers "
    "(tests/test_surfaces.py::test_batched_surface_equals_the_cached_one)",
}
SURF_SAME = [
    ("device", {}, dict(device="auto"), SURF_NOT_KEYED["device"]),
    ("batch_points", {}, dict(batch_points=4), SURF_NOT_KEYED["batch_points"]),
    ("checkpoint", {}, dict(checkpoint=Ck("mae", copy=True)), "the checkpoint is keyed by content, not by path"),
    (
        "others",
        {"dim": 1, "directions": "interpolate", "others": (Ck("rcmae"),)},
        dict(others=(Ck("rcmae", copy=True),)),
        "the other checkpoints are keyed by content, not by path",
    ),
    ("loss", {}, dict(loss="pretrain"), "own resolves to pretrain for an MAE"),
    ("data", {}, dict(data="synthetic"), "None is the checkpoint's own data, which is synthetic"),
]


def surface_spec(env, overrides: dict) -> SurfaceSpec:
    kw = resolved(env, SURF_BASE | {"checkpoint": Ck("mae")} | overrides)
    spec = SurfaceSpec(**kw)
    spec.validate()  # every row is a request compute_surface accepts
    return spec


def key_of(env, spec: SurfaceSpec) -> dict:
    """The key compute_surface uses: the objective it builds from the spec, then surface_key."""
    return surface_key(spec, objective(env, spec.checkpoint, spec.objective_spec()))


def test_every_surface_spec_field_is_classified():
    names = {f.name for f in fields(SurfaceSpec)}
    changed = {row[0] for row in SURF_CHANGES}
    assert names == changed | set(SURF_NOT_KEYED), (
        f"classify these SurfaceSpec fields in tests/test_keys.py: {sorted(names ^ (changed | set(SURF_NOT_KEYED)))}"
    )
    assert set(SURF_NOT_KEYED) <= {row[0] for row in SURF_SAME}


@pytest.mark.parametrize(
    ("field", "base", "change"), SURF_CHANGES, ids=[f"{r[0]}-{i}" for i, r in enumerate(SURF_CHANGES)]
)
def test_surface_key_changes_with(env, field, base, change):
    a, b = surface_spec(env, base), surface_spec(env, base | change)
    ka, kb = key_of(env, a), key_of(env, b)
    assert ka != kb, f"{field} changes the surface's numbers but not its key"
    assert entry_path(env, "landscape", ka) != entry_path(env, "landscape", kb)
    assert family_hash(ka) != family_hash(kb), f"{field}: another family must not lend its lattice points"


@pytest.mark.parametrize(("field", "base", "change"), SURF_SAME_FAMILY, ids=[r[0] for r in SURF_SAME_FAMILY])
def test_nested_grids_are_other_entries_of_one_family(env, field, base, change):
    ka, kb = key_of(env, surface_spec(env, base)), key_of(env, surface_spec(env, base | change))
    assert entry_path(env, "landscape", ka) != entry_path(env, "landscape", kb)
    assert family_hash(ka) == family_hash(kb)


@pytest.mark.parametrize(
    ("field", "base", "change", "reason"), SURF_SAME, ids=[f"{r[0]}-{i}" for i, r in enumerate(SURF_SAME)]
)
def test_surface_key_is_the_same_for(env, field, base, change, reason):
    a, b = surface_spec(env, base), surface_spec(env, base | change)
    assert key_of(env, a) == key_of(env, b), reason


def test_a_surface_with_another_mask_seed_is_computed_not_served_from_the_cache(env, tmp_path):
    """The audit's case end to end: with mask seed 0 cached, mask seed 1 is another entry with other numbers."""
    store = Store(tmp_path / "store")
    spec = surface_spec(env, dict(dim=1, grid=3, samples=8))
    first = compute_surface(spec, store=store)
    other = compute_surface(replace(spec, mask_seed=1), store=store)
    again = compute_surface(spec, store=store)
    assert not other.meta.get("cached") and other.meta["n_reused"] == 0 and other.path != first.path
    assert other.loss[1] != first.loss[1]  # the centre: the same weights, other masks
    assert again.meta["cached"] and again.path == first.path


# --------------------------------------------------------------------------------------------------------------
# Flatness report: one key per stage

ALL = frozenset(STAGES)
HESSIAN = ALL - {"robustness"}
FLAT_BASE = dict(samples=16, density=True, per_block=True, device="cpu")  # every stage asked for
# (field, base overrides, change, the stages whose key and entry must change; every other stage keeps its entry).
FLAT_CHANGES: list[tuple[str, dict, dict, frozenset]] = [
    ("checkpoint", {}, dict(checkpoint=Ck("probe")), ALL),
    ("samples", {}, dict(samples=17), ALL),
    ("data_seed", {}, dict(data_seed=1), ALL),
    ("mask_seed", {"checkpoint": Ck("mae"), "robustness": False}, dict(mask_seed=1), HESSIAN),
    ("data", {}, dict(data="digits"), ALL),
    ("split", {}, dict(split="train"), ALL),  # the robustness curve too
    ("rcmae_terms", {"checkpoint": Ck("rcmae"), "robustness": False}, dict(rcmae_terms="mae"), HESSIAN),
    # Robustness perturbs the encoder whatever the scope, but its key holds the scope too (over-keyed: a lost
    # reuse, never a wrong answer).
    ("scope", {}, dict(scope="encoder"), ALL),
    ("top_k", {}, dict(top_k=2), {"eigenvalues"}),
    ("max_iter", {}, dict(max_iter=20), {"eigenvalues", "per_block"}),
    ("max_iter", {}, dict(max_iter=50), {"eigenvalues"}),  # per-block caps Lanczos at 30 steps: the same entry
    ("trace_probes", {}, dict(trace_probes=64), {"trace", "per_block"}),
    ("trace_probes", {}, dict(trace_probes=33), {"trace"}),  # per-block uses probes // 4: still 8
    ("density_iter", {}, dict(density_iter=20), {"density"}),
    ("density_vectors", {}, dict(density_vectors=2), {"density"}),
    ("sharpness_rho", {}, dict(sharpness_rho=0.1), {"sharpness"}),
    ("sharpness_samples", {}, dict(sharpness_samples=4), {"sharpness"}),
    ("sigmas", {}, dict(sigmas=(0.0, 0.1)), {"robustness"}),
    ("robustness_draws", {}, dict(robustness_draws=3), {"robustness"}),
    ("seed", {}, dict(seed=1), ALL),
]
# Switches: they say whether a stage runs. Off, the stage is not looked up at all; every other stage keeps its entry.
FLAT_SWITCHES = [
    ("trace", dict(trace=False), "trace"),
    ("density", dict(density=False), "density"),
    ("per_block", dict(per_block=False), "per_block"),
    ("sharpness_rho", dict(sharpness_rho=None), "sharpness"),
    ("robustness", dict(robustness=False), "robustness"),
]
FLAT_NOT_KEYED = {
    "loss": "keyed as the concrete kind it resolves to (the objective's key): 'own' is the checkpoint's own loss",
    "device": "where it runs, not what: no stage key holds a device",
}
FLAT_SAME = [
    ("loss", {}, dict(loss="supervised"), "own resolves to supervised for the ViT"),
    ("device", {}, dict(device="auto"), FLAT_NOT_KEYED["device"]),
    ("checkpoint", {}, dict(checkpoint=Ck("sup", copy=True)), "the checkpoint is keyed by content, not by path"),
]
# What each intercepted stage returns instead of computing (only what the report reads).
FAKE_VALUES = {
    "eigenvalues": {"values": [1.0], "converged": True, "lambda_min": -0.1, "lambda_max_check": 1.0},
    "trace": {"estimate": 1.0, "stderr": 0.1},
    "density": {"grid": [0.0], "density": [1.0]},
    "per_block": {"rows": []},
    "sharpness": {"rho": 0.05, "average": 0.0, "worst": 0.0},
    "robustness": {"clean_acc": 0.5},
}


def stage_keys(env, monkeypatch, overrides: dict) -> dict[str, dict]:
    """stage -> the key compute_flatness looks the stage up by (intercepted at `cached_stage`: nothing computed)."""
    seen: dict[str, dict] = {}
    # Only this thread's lookups: a dashboard job left running by an earlier test (its registry's worker thread)
    # may be computing a report in this process at the same time, and goes through the real function.
    me, real = threading.get_ident(), fr.cached_stage

    def lookup(store, key, compute, cached_only=False, kind="flatness"):
        if threading.get_ident() != me:
            return real(store, key, compute, cached_only=cached_only, kind=kind)
        assert kind == "flatness"
        seen[key["stage"]] = key
        return FAKE_VALUES[key["stage"]], True, 0

    monkeypatch.setattr(fr, "cached_stage", lookup)
    kw = resolved(env, FLAT_BASE | {"checkpoint": Ck("sup")} | overrides)
    assert compute_flatness(FlatnessSpec(**kw), store=Store(env["root"])) is not None
    return seen


def test_every_flatness_spec_field_is_classified():
    names = {f.name for f in fields(FlatnessSpec)}
    classified = {r[0] for r in FLAT_CHANGES} | {r[0] for r in FLAT_SWITCHES} | set(FLAT_NOT_KEYED)
    unclassified = sorted(names ^ classified)
    assert not unclassified, f"classify these FlatnessSpec fields in tests/test_keys.py: {unclassified}"
    assert set(FLAT_NOT_KEYED) <= {row[0] for row in FLAT_SAME}


@pytest.mark.parametrize(
    ("field", "base", "change", "stages"), FLAT_CHANGES, ids=[f"{r[0]}-{i}" for i, r in enumerate(FLAT_CHANGES)]
)
def test_flatness_stage_keys_change_with(env, monkeypatch, field, base, change, stages):
    before, after = stage_keys(env, monkeypatch, base), stage_keys(env, monkeypatch, base | change)
    assert set(before) == set(after) and set(stages) <= set(before)
    changed = {s for s in before if entry_path(env, "flatness", before[s]) != entry_path(env, "flatness", after[s])}
    assert changed == set(stages), f"{field}: stages given another entry {sorted(changed)}, expected {sorted(stages)}"
    assert {s for s in before if before[s] != after[s]} == changed


@pytest.mark.parametrize(("field", "change", "stage"), FLAT_SWITCHES, ids=[r[0] for r in FLAT_SWITCHES])
def test_a_stage_switched_off_leaves_the_other_entries(env, monkeypatch, field, change, stage):
    before, after = stage_keys(env, monkeypatch, {}), stage_keys(env, monkeypatch, change)
    assert set(before) == ALL and set(after) == ALL - {stage}
    assert all(after[s] == before[s] for s in after)


@pytest.mark.parametrize(("field", "base", "change", "reason"), FLAT_SAME, ids=[r[0] for r in FLAT_SAME])
def test_flatness_stage_keys_are_the_same_for(env, monkeypatch, field, base, change, reason):
    assert stage_keys(env, monkeypatch, base) == stage_keys(env, monkeypatch, base | change), reason


# --------------------------------------------------------------------------------------------------------------
# Fine-tuning runs (core/models/finetune.py): the run's checkpoint path is its cache entry

FT_BASE = dict(labels_per_class=2)
# (field, base overrides, change): another run, another checkpoint file. `ckpt` is the base checkpoint (not a field).
FT_CHANGES = [
    ("ckpt", {}, dict(ckpt=Ck("sup"))),
    ("ckpt", {}, dict(ckpt=Ck("rcmae"))),
    ("labels_per_class", {}, dict(labels_per_class=3)),
    ("labels_per_class", {}, dict(labels_per_class=None)),
    ("seed", {}, dict(seed=1)),
    ("from_scratch", {}, dict(from_scratch=True)),
    ("use", {"ckpt": Ck("rcmae")}, dict(use="student")),
    ("epochs", {}, dict(epochs=3)),
    ("steps_per_epoch", {}, dict(steps_per_epoch=5)),
    ("batch_size", {}, dict(batch_size=16)),
    ("lr", {}, dict(lr=5e-4)),
    ("layer_decay", {}, dict(layer_decay=0.5)),
    ("weight_decay", {}, dict(weight_decay=0.0)),
    ("warmup_epochs", {}, dict(warmup_epochs=1)),
    ("drop_path", {}, dict(drop_path=0.0)),
    ("label_smoothing", {}, dict(label_smoothing=0.0)),
    ("data", {}, dict(data="digits")),
    ("train_eval_max", {}, dict(train_eval_max=64)),  # the per-epoch training numbers stored in the checkpoint
]
FT_SAME = [
    ("use", {}, dict(use="student"), "an MAE has one encoder: no choice to key"),
    ("use", {"ckpt": Ck("rcmae"), "from_scratch": True}, dict(use="student"), "from scratch uses no encoder"),
    ("data", {}, dict(data="synthetic"), "None is the checkpoint's own data, which is synthetic"),
    ("ckpt", {}, dict(ckpt=Ck("mae", copy=True)), "the base checkpoint is keyed by content, not by path"),
    (
        "ckpt",
        {"from_scratch": True},
        dict(ckpt=Ck("rcmae")),
        "from scratch: architecture, family and data only, so MAE and RC-MAE of one architecture share the baseline",
    ),
]


def finetune_run_path(env, overrides: dict) -> Path:
    from core.models.finetune import FinetuneConfig, finetune_path

    kw = dict(FT_BASE | overrides)
    ckpt = resolve(env, kw.pop("ckpt", Ck("mae")))
    if ckpt not in env["loaded"]:
        env["loaded"][ckpt] = load_checkpoint(ckpt)
    return finetune_path(env["loaded"][ckpt], FinetuneConfig(**kw))


def test_every_finetune_config_field_is_classified():
    from core.models.finetune import FinetuneConfig

    names = {f.name for f in fields(FinetuneConfig)}
    unclassified = sorted(names ^ ({r[0] for r in FT_CHANGES} - {"ckpt"}))
    assert not unclassified, f"classify these FinetuneConfig fields in tests/test_keys.py: {unclassified}"


@pytest.mark.parametrize(("field", "base", "change"), FT_CHANGES, ids=[f"{r[0]}-{i}" for i, r in enumerate(FT_CHANGES)])
def test_finetune_run_changes_with(env, field, base, change):
    assert finetune_run_path(env, base) != finetune_run_path(env, base | change), f"{field} shares a run"


@pytest.mark.parametrize(
    ("field", "base", "change", "reason"), FT_SAME, ids=[f"{r[0]}-{i}" for i, r in enumerate(FT_SAME)]
)
def test_finetune_run_is_the_same_for(env, field, base, change, reason):
    assert finetune_run_path(env, base) == finetune_run_path(env, base | change), reason


# --------------------------------------------------------------------------------------------------------------
# Convexity maps (core/measure/convexity.py): the surface's key (every SurfaceSpec row above) plus the Lanczos run

CONV_CHANGES = [("max_iter", dict(max_iter=7)), ("tol", dict(tol=1e-4)), ("lanczos_seed", dict(lanczos_seed=1))]
CONV_SURFACE = "surface"  # the slice: keyed through surface_key, checked against every SurfaceSpec row below


def convexity_key_of(env, spec) -> dict:
    from core.measure.convexity import convexity_key

    spec.validate()  # a map compute_convexity accepts
    return convexity_key(spec, objective(env, spec.surface.checkpoint, spec.surface.objective_spec()))


def test_every_convexity_spec_field_is_classified():
    from core.measure.convexity import ConvexitySpec

    names = {f.name for f in fields(ConvexitySpec)}
    unclassified = sorted(names ^ ({CONV_SURFACE} | {r[0] for r in CONV_CHANGES}))
    assert not unclassified, f"classify these ConvexitySpec fields in tests/test_keys.py: {unclassified}"


def test_convexity_key_changes_with_the_slice_and_the_lanczos_run(env):
    from core.measure.convexity import KIND, ConvexitySpec

    base = ConvexitySpec(surface_spec(env, {}))
    k0 = convexity_key_of(env, base)
    for field, change in CONV_CHANGES:
        k = convexity_key_of(env, replace(base, **change))
        assert entry_path(env, KIND, k) != entry_path(env, KIND, k0) and family_hash(k) != family_hash(k0), field
    checked = 0
    for field, sbase, change in SURF_CHANGES:
        a, b = surface_spec(env, sbase), surface_spec(env, sbase | change)
        if {a.dim, b.dim} != {2} or {a.dtype, b.dtype} != {"fp32"}:
            continue  # not a convexity map (2-D, fp32 only)
        ka, kb = convexity_key_of(env, ConvexitySpec(a)), convexity_key_of(env, ConvexitySpec(b))
        assert entry_path(env, KIND, ka) != entry_path(env, KIND, kb), field
        assert family_hash(ka) != family_hash(kb), field
        checked += 1
    assert checked >= len(SURF_CHANGES) - 4


# ---------------------------------------------------------------------------------------------------------------
# content_hash / file_hash (core/store/keys.py)


def test_content_hash_is_sha256_of_canonical_json():
    expected = hashlib.sha256(b'{"a":1,"b":[1,2.5,null,true],"c":{"x":"y"}}').hexdigest()
    assert content_hash({"c": {"x": "y"}, "b": (1, 2.5, None, True), "a": 1}) == expected
    assert len(expected) == 64


def test_content_hash_ignores_order_and_container_flavour():
    a = {"lr": 0.1, "grid": {"n": 5, "span": [-1.0, 1.0]}, "names": ["x", "y"]}
    b = {"names": ("x", "y"), "grid": {"span": (-1.0, 1.0), "n": 5}, "lr": 0.1}
    assert content_hash(a) == content_hash(b)
    numpy_flavour = {
        "lr": np.float64(0.1),
        "grid": {"n": np.int64(5), "span": np.array([-1.0, 1.0])},
        "names": a["names"],
    }
    assert content_hash(numpy_flavour) == content_hash(a)
    assert content_hash({"x": float("nan")}) == content_hash({"x": float("nan")})


@pytest.mark.parametrize(
    "other",
    [
        {"lr": 0.1000001},
        {"lr": 0.10000000000000002},  # the next float after 0.1
        {"lr": float(np.float32(0.1))},
        {"lr": 0.1, "seed": 0},
        {"lr": "0.1"},
        {"LR": 0.1},
        {"lr": [0.1]},
    ],
)
def test_content_hash_sees_every_change(other):
    assert content_hash({"lr": 0.1}) != content_hash(other)


def test_content_hash_distinguishes_signed_zero_and_ints():
    assert content_hash({"x": 0.0}) != content_hash({"x": -0.0})
    assert content_hash({"x": 1}) != content_hash({"x": 2})
    assert content_hash({"x": True}) != content_hash({"x": 1})


@pytest.mark.parametrize("bad", [{1, 2}, b"x", object(), Path("/tmp"), 1 + 2j, {1: 2}, np.array(["a"]), [{"a": {3}}]])
def test_content_hash_rejects_unsupported(bad):
    with pytest.raises(TypeError):
        content_hash({"k": bad})


def test_file_hash_matches_and_is_memoized(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc" * 1000)
    assert file_hash(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    st = f.stat()
    # Same size, same mtime: the memo answers without reading (proves the memo key is the stat triple).
    f.write_bytes(b"xyz" * 1000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_hash(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert file_hash(f) == hashlib.sha256(b"xyz" * 1000).hexdigest()
    with pytest.raises(LandscapeError):
        file_hash(tmp_path / "missing.bin")
