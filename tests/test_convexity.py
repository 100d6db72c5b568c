"""Convexity maps (core.measure.convexity): exact against the full Hessian, resumable after SIGKILL, torchrun-shared,
nested, keyed by everything that changes the numbers, and the CLI's one-line errors."""

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

import core.app.cli as cli
from core.errors import LandscapeError
from core.geometry.attention import attention_for_second_derivatives
from core.geometry.hvp import LossModule
from core.measure.convexity import (
    CONVEX_RATIO,
    ConvexitySpec,
    compute_convexity,
    convex_area,
    convexity_key,
    export_convexity,
)
from core.measure.surfaces import SurfaceSpec, compute_surface
from core.models.checkpoints import load_checkpoint
from core.models.objectives import build_objective
from core.store.keys import content_hash
from core.store.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache(tmp_path, monkeypatch, trained_cache_dir):
    """A fresh cache that still holds the session's trained checkpoints."""
    root = tmp_path / "cache"
    shutil.copytree(trained_cache_dir / "checkpoints", root / "checkpoints")
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    return root


@pytest.fixture()
def ckpt(cache, trained_ckpts):
    return str(cache / "checkpoints" / Path(trained_ckpts["mae"]).name)


def cspec(ckpt: str, max_iter: int = 4, **kw) -> ConvexitySpec:
    surface = SurfaceSpec(checkpoint=ckpt, **({"grid": 5, "span": 0.5, "samples": 8, "device": "cpu"} | kw))
    return ConvexitySpec(surface, max_iter=max_iter)


# --------------------------------------------------------------------------------------------------------------------
# Exactness


NORM = "blocks.1.norm1.weight"  # 32 parameters: the exact Hessian is cheap, and Lanczos with 32 steps is exact


def exact_extremes(ckpt: str, surface: SurfaceSpec, x: float, y: float, d1, d2) -> tuple[float, float, float]:
    """lambda_min, lambda_max and the loss at theta + x d1 + y d2 from torch.autograd.functional.hessian (float64
    eigendecomposition of the dense Hessian in the one parameter)."""
    obj = build_objective(load_checkpoint(ckpt), surface.objective_spec())
    module = obj.module
    with torch.no_grad():
        for n, p in module.named_parameters():
            if n in d1:
                p.add_(x * d1[n] + y * d2[n])
    wrapper = LossModule(module, obj)
    w0 = module.get_parameter(NORM).detach().clone()

    def f(w):
        return torch.func.functional_call(wrapper, {"model." + NORM: w}, ())

    with attention_for_second_derivatives(module):
        h = torch.autograd.functional.hessian(f, w0)
        loss = float(f(w0).detach())
    ev = np.linalg.eigvalsh(h.double().numpy())
    return float(ev[0]), float(ev[-1]), loss


def test_map_equals_the_exact_hessian_at_every_point(ckpt):
    from core.geometry.directions import random_direction

    spec = cspec(ckpt, max_iter=32, grid=3, include=(NORM,), ignore="none")
    spec = replace(spec, tol=1e-9)
    m = compute_convexity(spec)
    assert m.ratio.shape == (3, 3) and m.complete and m.meta["n_params"] == 32
    obj = build_objective(load_checkpoint(ckpt), spec.surface.objective_spec())
    kw = dict(norm="filter", ignore="none", include=(NORM,))
    d1 = random_direction(obj.module, 0, **kw)
    d2 = random_direction(obj.module, 7919, **kw)
    assert set(d1) == {NORM} or all(not bool(t.any()) for n, t in d1.items() if n != NORM)
    signs = set()
    for i, y in enumerate(m.ys):
        for j, x in enumerate(m.xs):
            lmin, lmax, loss = exact_extremes(ckpt, spec.surface, float(x), float(y), d1, d2)
            scale = max(abs(lmin), abs(lmax))
            assert m.lambda_max[i, j] == pytest.approx(lmax, rel=1e-3, abs=1e-5 * scale), (i, j)
            assert m.lambda_min[i, j] == pytest.approx(lmin, rel=1e-3, abs=1e-5 * scale), (i, j)
            assert m.ratio[i, j] == pytest.approx(abs(lmin / lmax), rel=2e-3, abs=1e-5), (i, j)
            assert m.loss[i, j] == pytest.approx(loss, rel=1e-5)
            signs.add(lmin < 0)
    assert True in signs, "a test where no point has negative curvature could not catch a sign error"
    # The same points as the loss surface of the same spec.
    s = compute_surface(spec.surface)
    np.testing.assert_allclose(m.loss, s.loss, rtol=1e-5)
    assert np.array_equal(m.xs, s.xs) and np.array_equal(m.ys, s.ys)


def test_convex_area_counts_points_below_the_threshold():
    r = np.array([[0.05, 0.2], [np.nan, 0.09]])
    assert convex_area(r) == pytest.approx(2 / 3)
    assert convex_area(r, threshold=0.3) == 1.0
    assert np.isnan(convex_area(np.full((2, 2), np.nan)))
    assert CONVEX_RATIO == 0.1


# --------------------------------------------------------------------------------------------------------------------
# Cache: resume, nesting, torchrun, keys

KILL_SCRIPT = """
import os, signal, sys
from core.measure.convexity import ConvexitySpec, compute_convexity
from core.measure.surfaces import SurfaceSpec
spec = ConvexitySpec(SurfaceSpec(checkpoint=sys.argv[1], grid=5, span=0.5, samples=8, device="cpu"), max_iter=4)
def progress(done, total):
    if done >= 12:
        os.kill(os.getpid(), signal.SIGKILL)
compute_convexity(spec, progress=progress)
"""


def test_resume_after_sigkill_equals_a_clean_run(ckpt, cache, tmp_path):
    env = dict(os.environ, LANDSCAPE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, ckpt], env=env, cwd=ROOT, capture_output=True, timeout=180)
    assert r.returncode == -9, r.stderr.decode()[-800:]
    resumed = compute_convexity(cspec(ckpt))
    assert resumed.meta["n_reused"] >= 11 and resumed.complete
    fresh = compute_convexity(cspec(ckpt), store=Store(tmp_path / "fresh"))
    assert fresh.meta["n_reused"] == 0
    for name in ("ratio", "lambda_min", "lambda_max", "loss", "converged"):
        assert np.array_equal(getattr(resumed, name), getattr(fresh, name)), name
    again = compute_convexity(cspec(ckpt))
    assert again.meta["cached"] and np.array_equal(again.ratio, resumed.ratio)


def test_nested_grids_reuse_points_and_stop_keeps_them(ckpt, tmp_path):
    store = Store(tmp_path / "nested")
    calls = {"n": 0}

    def stop_after_4():
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(LandscapeError, match="stopped"):
        compute_convexity(cspec(ckpt, grid=3), store=store, check_stop=stop_after_4)
    coarse = compute_convexity(cspec(ckpt, grid=3), store=store)
    assert coarse.meta["n_reused"] == 4
    fine = compute_convexity(cspec(ckpt, grid=5), store=store)
    assert fine.meta["n_reused"] == 9
    assert np.array_equal(fine.ratio[::2, ::2], coarse.ratio)
    ref = compute_convexity(cspec(ckpt, grid=5), store=Store(tmp_path / "ref"))
    assert np.array_equal(ref.ratio, fine.ratio) and np.array_equal(ref.lambda_min, fine.lambda_min)
    # Other Lanczos settings are another family: nothing is reused.
    other = compute_convexity(cspec(ckpt, grid=3, max_iter=3), store=store)
    assert other.meta["n_reused"] == 0


def test_torchrun_two_processes_equal_one(ckpt, cache, tmp_path):
    out = tmp_path / "dist.npz"
    env = dict(os.environ, LANDSCAPE_CACHE_DIR=str(cache / "dist"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    shutil.copytree(cache / "checkpoints", cache / "dist" / "checkpoints")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "core"]
    cmd += ["convexity", ckpt, "--grid", "3", "--span", "0.5", "--samples", "8", "--max-iter", "4"]
    cmd += ["--device", "cpu", "--out", str(out)]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == str(out)
    dist = np.load(out)
    meta = json.loads(str(dist["meta"]))
    assert meta["world_size"] == 2 and meta["n_points"] == 9
    assert dist["ratio"].shape == (3, 3) == dist["lambda_min"].shape == dist["lambda_max"].shape
    single = compute_convexity(cspec(ckpt, grid=3), store=Store(tmp_path / "single"))
    for name in ("ratio", "lambda_min", "lambda_max"):
        assert np.array_equal(dist[name], getattr(single, name)), name


# Every field that changes the numbers changes the key; fields that do not, do not.
KEY_CHANGES = [
    ("span", {"span": 0.4}, True),
    ("direction seed", {"seed": 1}, True),
    ("norm", {"norm": "layer"}, True),
    ("ignore", {"ignore": "none"}, True),
    ("scope", {"scope": "encoder"}, True),
    ("include", {"include": ("blocks",)}, True),
    ("exclude", {"exclude": ("pos_embed",)}, True),
    ("orthogonal", {"orthogonal": True}, True),
    ("samples", {"samples": 4}, True),
    ("data seed", {"data_seed": 1}, True),
    ("mask seed", {"mask_seed": 1}, True),
    ("loss", {"loss": "pretrain"}, False),  # own is pretrain for an MAE: the same function
    ("device", {"device": "auto"}, False),
    ("batch points", {"batch_points": 4}, False),
]
LANCZOS_CHANGES = [({"max_iter": 7}, True), ({"tol": 1e-4}, True), ({"lanczos_seed": 1}, True)]


def test_cache_key_table(ckpt):
    from core.measure.surfaces import family_hash

    base = cspec(ckpt)
    ck = load_checkpoint(ckpt)

    def key(spec: ConvexitySpec) -> str:
        return content_hash(convexity_key(spec, build_objective(ck, spec.surface.objective_spec())))

    k0 = key(base)
    for name, change, differs in KEY_CHANGES:
        k = key(replace(base, surface=replace(base.surface, **change)))
        assert (k != k0) == differs, name
    for change, differs in LANCZOS_CHANGES:
        assert (key(replace(base, **change)) != k0) == differs, change
    # The grid size is in the key but not in the family: nested grids share points.
    obj = build_objective(ck, base.surface.objective_spec())
    k5 = convexity_key(base, obj)
    k9 = convexity_key(replace(base, surface=replace(base.surface, grid=9)), obj)
    assert content_hash(k5) != content_hash(k9) and family_hash(k5) == family_hash(k9)
    # The RC-MAE terms change the function.
    rc = str(Path(ckpt).parent / next(p.name for p in Path(ckpt).parent.glob("rcmae_*.pt")))
    a = cspec(rc)
    b = replace(a, surface=replace(a.surface, rcmae_terms="mae"))
    assert key(a) != key(b)


def test_bad_specs_are_refused(ckpt):
    for spec, match in [
        (cspec(ckpt, dim=1), "2-D"),
        (cspec(ckpt, dtype="bf16"), "fp32"),
        (cspec(ckpt, max_iter=1), "max_iter"),
        (replace(cspec(ckpt), tol=0.0), "tol"),
        (cspec(ckpt, grid=2), "3 to 129"),
    ]:
        with pytest.raises(LandscapeError, match=match):
            compute_convexity(spec)


# --------------------------------------------------------------------------------------------------------------------
# CLI


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "map.csv"], "--out must end in .npz"),
        (["--grid", "2"], "3 to 129 points"),
        (["--max-iter", "1"], "max_iter must be 2 to 1000"),
        (["--max-minutes", "0"], "not started"),
    ],
)
def test_cli_errors_are_one_line(ckpt, capsys, extra, message):
    code, out, err = run_cli(["convexity", ckpt, "--samples", "8", "--device", "cpu", *extra], capsys)
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, err


def test_cli_missing_checkpoint_and_usage(tmp_path, capsys):
    code, _, err = run_cli(["convexity", str(tmp_path / "nope.pt")], capsys)
    assert code == 1 and err.strip().splitlines()[-1].startswith("error: ")
    with pytest.raises(SystemExit) as e:
        cli.main(["convexity", str(tmp_path / "nope.pt"), "--dtype", "bf16"])
    assert e.value.code == 2


def test_cli_writes_the_npz_and_json(ckpt, capsys, tmp_path):
    out = tmp_path / "m.npz"
    argv = ["convexity", ckpt, "--grid", "3", "--span", "0.5", "--samples", "8", "--max-iter", "4"]
    code, stdout, err = run_cli([*argv, "--device", "cpu", "--json", "--out", str(out)], capsys)
    assert code == 0, err
    assert "estimate: " in err and "Hessian-vector products" in err and "convex area" in err
    lines = stdout.strip().splitlines()
    assert lines[-1] == str(out)
    report = json.loads(lines[0])
    data = np.load(out)
    assert set(data.files) >= {"xs", "ys", "ratio", "lambda_min", "lambda_max", "meta"}
    assert data["ratio"].shape == (len(data["ys"]), len(data["xs"])) == (3, 3)
    np.testing.assert_allclose(data["ratio"], np.abs(data["lambda_min"] / data["lambda_max"]))
    assert report["convex_area"] == pytest.approx(convex_area(data["ratio"]))
    assert json.loads(str(data["meta"]))["n_points"] == 9
    # Exported from the cache again: the same numbers.
    again = compute_convexity(cspec(ckpt, grid=3))
    export_convexity(again, tmp_path / "b.npz")
    assert np.array_equal(np.load(tmp_path / "b.npz")["ratio"], data["ratio"])


# --------------------------------------------------------------------------------------------------------------------
# Claim 2 in reproduce


def test_reproduce_table_counts_the_convex_area_beside_convex_fraction():
    from types import SimpleNamespace

    from core.measure.convexity import ConvexityMap, convexity_figures, convexity_table
    from core.studies.measuring import Measured, ReproduceSpec

    xs = np.linspace(-0.5, 0.5, 5)
    gx, gy = np.meshgrid(xs, xs)

    def cmap(ratio: np.ndarray) -> ConvexityMap:
        ones = np.ones_like(ratio)
        meta = {"n_unconverged": 1, "complete": True}
        return ConvexityMap(xs, xs, ratio, -ratio, ones, ones, ones, meta)

    wide, narrow = np.where(gx**2 + gy**2 < 0.1, 0.01, 0.5), np.where(gx**2 + gy**2 < 0.01, 0.01, 0.5)
    seeds = (0, 1)
    convexity, measured = {}, {}
    for s in seeds:
        for key, ratio in (("rcmae_mae", wide), ("mae_own", narrow), ("rcmae_probe", wide), ("mae_probe", narrow)):
            convexity[key, s] = cmap(ratio + 0.001 * s)
            measured[key, s] = Measured(xs, xs, 1.0 + gx**2 + gy**2, {})
    r = SimpleNamespace(
        spec=ReproduceSpec(grid=5, convexity_grid=5), seeds=seeds, convexity=convexity, measured=measured
    )
    (table,) = convexity_table(r)
    assert table.a_label == "RC-MAE" and table.b_label == "MAE" and "convex fraction" in table.note
    assert all("|" not in row.name for row in table.rows)  # the names are markdown table cells
    rows = {row.name.split(",")[0] + "," + row.name.split(",")[1].split("(")[0].strip(): row for row in table.rows}
    area = rows["convex area,pre-training loss"]
    assert area.primary and area.better == "higher" and area.seeds == seeds
    assert area.a == (convex_area(wide), convex_area(wide + 0.001)) and area.a[0] == 5 / 25
    assert area.b[0] == 1 / 25 and area.reading == "supports"
    frac = rows["convex fraction of the 2-D slice,pre-training loss"]
    assert not frac.primary and frac.a == (1.0, 1.0)  # a bowl: every interior point curves up
    assert "linear-probe loss" in " ".join(row.name for row in table.rows)
    figs = convexity_figures(r)
    assert [stem for _, stem, _ in figs] == ["claim2_convexity_pretrain", "claim2_convexity_probe"]
    assert [t.type for t in figs[0][0].data].count("heatmap") == 2
    assert convexity_table(SimpleNamespace(convexity={})) == ()
