"""Cached surfaces: determinism, nested-grid reuse, resume after a kill, torchrun, NaN handling, restoration."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import LandscapeError
from core.measure.surfaces import SurfaceSpec, compute_surface, export_surface, lattice_coords
from core.models.checkpoints import load_checkpoint
from core.store.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache(tmp_path, monkeypatch, trained_cache_dir):
    """A fresh cache that still holds the session's trained checkpoints (probes find their encoders)."""
    root = tmp_path / "cache"
    shutil.copytree(trained_cache_dir / "checkpoints", root / "checkpoints")
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    return root


@pytest.fixture()
def ckpt(cache, trained_ckpts):
    return str(cache / "checkpoints" / Path(trained_ckpts["mae"]).name)


def spec_for(ckpt: str, **kw) -> SurfaceSpec:
    return SurfaceSpec(checkpoint=ckpt, **({"grid": 5, "span": 0.5, "samples": 24, "device": "cpu"} | kw))


def test_surface_matches_direct_evaluation_and_is_cached(ckpt):
    from core.geometry.directions import random_direction
    from core.models.objectives import build_objective

    s = compute_surface(spec_for(ckpt))
    assert s.loss.shape == (5, 5) and s.complete and not s.meta.get("cached")
    assert s.meta["n_points"] == 25 and s.meta["n_reused"] == 0
    # One corner by hand: theta + x d1 + y d2 with the same seeded directions.
    ck = load_checkpoint(ckpt)
    obj = build_objective(ck, spec_for(ckpt).objective_spec())
    d1 = random_direction(obj.module, 0)
    d2 = random_direction(obj.module, 0 + 7919)
    with torch.no_grad():
        for n, p in obj.module.named_parameters():
            if n in d1:
                p.add_(-0.5 * d1[n] + 0.25 * d2[n])
    assert s.loss[3, 0] == pytest.approx(obj.evaluate(obj.module)["loss"], rel=1e-5)
    again = compute_surface(spec_for(ckpt))
    assert again.meta["cached"] and np.array_equal(again.loss, s.loss)


def test_determinism_across_fresh_caches(ckpt, tmp_path):
    a = compute_surface(spec_for(ckpt), store=Store(tmp_path / "a"))
    b = compute_surface(spec_for(ckpt), store=Store(tmp_path / "b"))
    assert np.array_equal(a.loss, b.loss)
    c = compute_surface(spec_for(ckpt, seed=1), store=Store(tmp_path / "c"))
    assert not np.array_equal(a.loss, c.loss)


def test_nested_grids_share_points(ckpt, tmp_path):
    store = Store(tmp_path / "nested")
    coarse = compute_surface(spec_for(ckpt, grid=5), store=store)
    fine = compute_surface(spec_for(ckpt, grid=9), store=store)
    assert fine.meta["n_reused"] == 25
    assert np.array_equal(fine.loss[::2, ::2], coarse.loss)
    fresh = compute_surface(spec_for(ckpt, grid=9), store=Store(tmp_path / "fresh"))
    assert fresh.meta["n_reused"] == 0
    assert np.array_equal(fresh.loss, fine.loss)
    # Coordinates come from lattice indices, identical for every nested grid size.
    _, x5 = lattice_coords(5, 0.3)
    _, x9 = lattice_coords(9, 0.3)
    assert np.array_equal(x9[::2], x5)


def test_line_and_partial_callbacks(ckpt):
    partials = []
    s = compute_surface(spec_for(ckpt, dim=1, grid=9), on_partial=partials.append, partial_every=100)
    assert s.loss.shape == (9,) and s.ys.size == 0
    # The coarse 3- and 5-point curves come first, complete, before the rest.
    assert [int(np.isfinite(p.loss).sum()) for p in partials][:2] == [3, 5]
    assert np.isfinite(partials[1].loss[::2]).all()


def test_stop_keeps_points_and_resume_reuses_them(ckpt):
    calls = {"n": 0}

    def stop_after_10():
        calls["n"] += 1
        return calls["n"] > 10

    with pytest.raises(LandscapeError, match="stopped"):
        compute_surface(spec_for(ckpt), check_stop=stop_after_10)
    s = compute_surface(spec_for(ckpt))
    assert 8 <= s.meta["n_reused"] <= 11
    ref = compute_surface(spec_for(ckpt), store=Store(Path(os.environ["LANDSCAPE_CACHE_DIR"]) / "ref"))
    assert np.array_equal(s.loss, ref.loss)


KILL_SCRIPT = """
import os, signal, sys
from core.measure.surfaces import SurfaceSpec, compute_surface
spec = SurfaceSpec(checkpoint=sys.argv[1], grid=5, span=0.5, samples=24, device="cpu")
def progress(done, total):
    if done >= 12:
        os.kill(os.getpid(), signal.SIGKILL)
compute_surface(spec, progress=progress)
"""


def test_resume_after_sigkill_is_bit_for_bit(ckpt, cache, tmp_path):
    env = dict(os.environ, LANDSCAPE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, ckpt], env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == -9, r.stderr.decode()[-500:]
    torch.set_num_threads(1)
    resumed = compute_surface(spec_for(ckpt))
    assert resumed.meta["n_reused"] >= 11
    fresh = compute_surface(spec_for(ckpt), store=Store(tmp_path / "fresh"))
    assert np.array_equal(resumed.loss, fresh.loss)


def test_torchrun_two_processes_equal_one(ckpt, cache, tmp_path):
    out = tmp_path / "dist.npz"
    env = dict(os.environ, LANDSCAPE_CACHE_DIR=str(cache / "dist"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    shutil.copytree(cache / "checkpoints", cache / "dist" / "checkpoints")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "core",
        "landscape",
        ckpt,
        "--grid",
        "5",
        "--span",
        "0.5",
        "--samples",
        "24",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    dist = np.load(out)
    meta = json.loads(str(dist["meta"]))
    assert meta["world_size"] == 2 and meta["n_points"] == 25
    torch.set_num_threads(1)
    single = compute_surface(spec_for(ckpt), store=Store(tmp_path / "single"))
    assert np.array_equal(dist["loss"], single.loss)  # each point is computed the same way, whichever rank


def test_far_points_nan_are_stored_and_counted(ckpt):
    s = compute_surface(spec_for(ckpt, span=1e30, grid=5))
    assert s.meta["n_nan"] > 0
    assert np.isfinite(s.loss[2, 2])
    assert s.metrics["n_nan"] == s.meta["n_nan"]
    assert s.metrics["centre_loss"] == pytest.approx(float(s.loss[2, 2]))


def test_nan_at_centre_is_a_clear_error(ckpt, tmp_path):
    raw = torch.load(ckpt, weights_only=True)
    raw["model"]["blocks.0.mlp.fc1.weight"][:] = float("nan")
    bad = tmp_path / "bad.pt"
    torch.save(raw, bad)
    with pytest.raises(LandscapeError, match="centre"):
        compute_surface(spec_for(str(bad)))


def test_model_is_restored_and_exports(ckpt, tmp_path):
    ck = load_checkpoint(ckpt)
    before = {k: v.clone() for k, v in ck.model.state_dict().items()}
    s = compute_surface(spec_for(ckpt, grid=3), ckpt=ck)
    assert all(torch.equal(before[k], v) for k, v in ck.model.state_dict().items())
    npz = np.load(export_surface(s, tmp_path / "s.npz"))
    assert np.array_equal(npz["loss"], s.loss) and json.loads(str(npz["meta"]))["n_points"] == 9
    rows = (tmp_path / "s.csv").read_text().splitlines() if export_surface(s, tmp_path / "s.csv") else []
    assert rows[0] == "x,y,loss" and len(rows) == 10
    with pytest.raises(LandscapeError, match="npz or .csv"):
        export_surface(s, tmp_path / "s.txt")


def test_probe_loss_with_accuracy_and_pca_directions(cache, trained_ckpts):
    probe = str(cache / "checkpoints" / Path(trained_ckpts["probe"]).name)
    s = compute_surface(spec_for(probe, scope="head"))
    assert s.acc is not None and s.acc.shape == (5, 5) and 0 <= s.acc[2, 2] <= 1
    mae = str(cache / "checkpoints" / Path(trained_ckpts["mae"]).name)
    p = compute_surface(spec_for(mae, directions="pca"))
    assert p.path_coords is not None and p.path_coords.shape[1] == 2


def test_pca_path_and_axes_are_the_projection_of_the_snapshots(ckpt):
    """The projected trajectory against PCA written out here (float64 SVD of the flattened snapshots, as sklearn:
    rows mean-centred, the largest loading of each axis positive): path = (snapshot - centre) . axis, the last
    snapshot (the final weights) is the centre, and the surface's values lie on those two axes."""
    from core.models.objectives import build_objective

    s = compute_surface(spec_for(ckpt, directions="pca"))
    ck = load_checkpoint(ckpt)
    centre = {n: p.detach().double() for n, p in ck.landscape_module.named_parameters() if p.requires_grad}
    names = [n for n in centre if all(n in sd for _, sd in ck.snapshots)]
    assert len(ck.snapshots) == 3 and names == list(centre)
    x = torch.stack([torch.cat([(sd[n].double() - centre[n]).reshape(-1) for n in names]) for _, sd in ck.snapshots])
    x = x.numpy()  # (S, N): each snapshot relative to the centre
    u, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    for k in range(2):
        if u[np.argmax(np.abs(u[:, k])), k] < 0:
            vt[k] = -vt[k]
    axes = vt[:2]  # (2, N) unit vectors
    expected = x @ axes.T
    assert s.path_coords.shape == (3, 2)
    np.testing.assert_allclose(s.path_coords, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())
    assert s.path_coords[-1].tolist() == [0.0, 0.0]  # the final weights are the centre of the plot
    assert abs(s.path_coords[0, 0]) > 1e-3 and abs(s.path_coords[:, 1]).max() > 1e-3  # a real 2-D path

    # One grid point by hand on these axes (x = xs[0], y = ys[3]); the swapped axes give another value.
    obj = build_objective(ck, spec_for(ckpt).objective_spec())
    sizes = np.cumsum([centre[n].numel() for n in names])[:-1]

    def loss_at(a: float, b: float) -> float:
        step = np.split(a * axes[0] + b * axes[1], sizes)
        with torch.no_grad():
            for n, d in zip(names, step, strict=True):
                obj.module.get_parameter(n).copy_((centre[n] + torch.from_numpy(d).reshape(centre[n].shape)).float())
            out = obj.evaluate(obj.module)["loss"]
            for n in names:
                obj.module.get_parameter(n).copy_(centre[n].float())
        return out

    a, b = float(s.xs[0]), float(s.ys[3])
    assert s.loss[3, 0] == pytest.approx(loss_at(a, b), rel=1e-5)
    assert abs(loss_at(b, a) - s.loss[3, 0]) > 1e-3 * s.loss[3, 0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(grid=2), "3 to"),
        (dict(grid=200), "3 to"),
        (dict(span=0), "span"),
        (dict(dim=3), "dim"),
        (dict(norm="bogus"), "normalization"),
        (dict(scope="bogus"), "scope"),
        (dict(dtype="fp8"), "dtype"),
    ],
)
def test_bad_specs_are_refused(ckpt, change, match):
    with pytest.raises(LandscapeError, match=match):
        compute_surface(replace(spec_for(ckpt), **change))


def test_hessian_directions_are_the_sharpest_axis(ckpt):
    sharp = compute_surface(spec_for(ckpt, directions="hessian", dim=1, grid=9, span=0.02))
    rand = compute_surface(spec_for(ckpt, dim=1, grid=9, span=0.02))
    assert np.isfinite(sharp.loss).all()
    assert sharp.metrics["curvature"] > rand.metrics["curvature"] > 0


SAME_SCRIPT = """
import hashlib, sys
from core.measure.surfaces import SurfaceSpec, compute_surface
s = compute_surface(SurfaceSpec(checkpoint=sys.argv[1], grid=9, span=0.5, samples=24, device="cpu"))
print(hashlib.sha256(s.loss.tobytes()).hexdigest(), s.meta.get("cached", False))
"""


def test_two_processes_computing_the_same_surface_agree(ckpt, cache, tmp_path):
    env = dict(os.environ, LANDSCAPE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAME_SCRIPT, ckpt],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    digests = [o[0].split()[0] for o in outs]
    assert digests[0] == digests[1]
    # One computed it, the other waited on the entry's lock and read the result; the cache holds one clean entry.
    assert sorted(o[0].split()[1] for o in outs) == ["False", "True"]
    entries = Store(cache).list("landscape")
    assert len(entries) == 1 and entries[0].finished
    torch.set_num_threads(1)
    fresh = compute_surface(spec_for(ckpt, grid=9), store=Store(tmp_path / "fresh"))
    import hashlib

    assert hashlib.sha256(fresh.loss.tobytes()).hexdigest() == digests[0]


@pytest.mark.parametrize(
    ("kind", "scope"), [("mae", "all"), ("rcmae", "all"), ("sup", "all"), ("probe", "head"), ("mae", "decoder")]
)
def test_batched_grid_points_equal_one_at_a_time(cache, trained_ckpts, kind, scope):
    import warnings

    from core.geometry.directions import random_direction
    from core.geometry.landscape import evaluate_points
    from core.models.objectives import ObjectiveSpec, build_objective

    ck = load_checkpoint(str(cache / "checkpoints" / Path(trained_ckpts[kind]).name))
    obj = build_objective(ck, ObjectiveSpec(samples=32, prefix_scope=scope))
    dirs = [random_direction(obj.module, s, scope=scope) for s in (0, 1)]
    coords = np.random.default_rng(0).uniform(-0.5, 0.5, (7, 2))
    before = {k: v.clone() for k, v in obj.module.state_dict().items()}
    one = evaluate_points(obj.module, obj, dirs, coords)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to one point at a time would warn
        many = evaluate_points(obj.module, obj, dirs, coords, points_per_batch=3)
    assert sorted(one) == sorted(many)
    for key in one:
        np.testing.assert_allclose(many[key], one[key], rtol=1e-4, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in obj.module.state_dict().items())


def test_batched_surface_equals_the_cached_one(ckpt, tmp_path):
    a = compute_surface(spec_for(ckpt), store=Store(tmp_path / "a"))
    b = compute_surface(spec_for(ckpt, batch_points=4), store=Store(tmp_path / "b"))
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-5)
    # The batch size is not part of the cache key: the same request finds the same entry.
    assert compute_surface(spec_for(ckpt, batch_points=4), store=Store(tmp_path / "a")).meta["cached"]


def test_line_and_plane_between_checkpoints(cache, trained_ckpts, tmp_path):
    from conftest import tiny_train_config

    from core.models.objectives import build_objective
    from core.models.train import train_model

    a = str(cache / "checkpoints" / Path(trained_ckpts["mae"]).name)
    b = str(train_model(tiny_train_config("mae", seed=1, epochs=1), device="cpu"))
    c = str(train_model(tiny_train_config("mae", seed=2, epochs=1), device="cpu"))
    line = compute_surface(spec_for(a, directions="interpolate", others=(b,), dim=1, grid=5, span=1.0))
    # Coordinate 0 is the checkpoint itself, coordinate 1 the other one, on the same images and masks.
    own = build_objective(load_checkpoint(a), spec_for(a).objective_spec()).evaluate(load_checkpoint(a).model)
    ck_b = load_checkpoint(b)
    other = build_objective(ck_b, spec_for(b).objective_spec()).evaluate(ck_b.model)
    assert line.loss[2] == pytest.approx(own["loss"], rel=1e-5)
    assert line.loss[4] == pytest.approx(other["loss"], rel=1e-4)
    plane = compute_surface(spec_for(a, directions="plane", others=(b, c), grid=5, span=1.0))
    ck_c = load_checkpoint(c)
    at_c = build_objective(ck_c, spec_for(c).objective_spec()).evaluate(ck_c.model)
    assert plane.loss[4, 2] == pytest.approx(at_c["loss"], rel=1e-4)  # (x=0, y=1) is the third checkpoint
    with pytest.raises(LandscapeError, match="other checkpoint"):
        compute_surface(spec_for(a, directions="interpolate", dim=1))
