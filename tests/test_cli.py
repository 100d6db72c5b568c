"""Tests for the command line (`python -m core`, core/app/cli.py): each command end to end in a subprocess, checked
against the engine called directly, and every user mistake as one `error:` line with exit code 1.

Every subprocess pays ~3 s of imports, so they are few and each checks much; the error paths run in-process
through `core.app.cli.main` (the code `python -m core` runs, without the import cost), the hostile pickle also as a
real subprocess.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.app.cli import main as cli_main
from core.measure.flatness import FlatnessSpec, compute_flatness
from core.models.checkpoints import file_sha256, load_checkpoint
from core.models.objectives import ObjectiveSpec, build_objective
from core.models.train import ProbeConfig, TrainConfig, checkpoint_path, probe_path
from core.store.store import Store

REPO = Path(__file__).resolve().parent.parent
HASH_LEN = 20  # `cache list` shows this many hex digits


def run_cli(cache: Path, *args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env |= {"LANDSCAPE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(res: subprocess.CompletedProcess) -> str:
    """The last stdout line of a successful run."""
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res.stdout.strip().splitlines()[-1]


def assert_user_error(rc: int, out: str, err: str, match: str = "") -> None:
    """Exit code 1, nothing on stdout, and stderr is exactly one `error: ...` line."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match.lower() in lines[0].lower()
    assert out.strip() == ""


def centre_loss(path: Path, loss: str, samples: int) -> float:
    """The objective at the checkpoint's own weights, computed in this process."""
    ck = load_checkpoint(path)
    objective = build_objective(ck, ObjectiveSpec(loss=loss, samples=samples), "cpu")
    with torch.no_grad():
        return float(objective(objective.module))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_cache")


@pytest.fixture
def env_cache(cache, monkeypatch) -> Path:
    """The same cache for in-process calls."""
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def trained(cache) -> tuple[subprocess.CompletedProcess, Path]:
    res = run_cli(cache, "train", "--model", "mae", "--preset", "micro", "--data", "synthetic", "--epochs", "1")
    return res, Path(ok(res))


@pytest.fixture(scope="module")
def surface(cache, trained) -> tuple[subprocess.CompletedProcess, Path]:
    out = cache / "exports" / "surface.npz"
    res = run_cli(cache, "landscape", trained[1], "--grid", 5, "--span", 0.5, "--out", out)
    return res, out


@pytest.fixture(scope="module")
def curve(cache, trained) -> tuple[subprocess.CompletedProcess, Path]:
    out = cache / "exports" / "curve.npz"
    args = ("--dim", 1, "--grid", 5, "--span", 0.5, "--loss", "probe", "--samples", 32, "--out", out)
    return run_cli(cache, "landscape", trained[1], *args), out


# ---------------------------------------------------------------------------------------------------------------
# Commands that work


def test_train_prints_the_checkpoint_path_last(trained, env_cache):
    res, path = trained
    expected = checkpoint_path(TrainConfig(kind="mae", data="synthetic", preset="micro", epochs=1))
    assert path == expected and path.is_file()
    ck = load_checkpoint(path)
    assert ck.kind == "mae" and ck.config.embed_dim == 32  # micro
    assert ck.meta["train"]["epochs"] == 1 and ck.meta["data"]["spec"] == "synthetic"
    assert len(ck.meta["history"]) == 1
    assert "train mae" in res.stderr  # progress goes to stderr, not stdout
    assert res.stdout.strip().splitlines() == [str(path)]


def test_probe_prints_the_probe_path_last(cache, trained):
    encoder = trained[1]
    res = run_cli(cache, "probe", encoder, "--epochs", 2)
    path = Path(ok(res))
    probe = load_checkpoint(path)
    assert probe.kind == "probe"
    assert probe.meta["encoder"]["sha256"] == file_sha256(encoder)
    assert probe.meta["probe"]["epochs"] == 2
    hist = probe.meta["history"]
    assert len(hist) == 2
    assert f"probe validation accuracy {hist[-1]['val_acc']:.4f}" in res.stderr


def test_info_text_and_json(cache, trained):
    path = trained[1]
    ck = load_checkpoint(path)
    n_params = sum(p.numel() for p in ck.model.parameters())

    text = run_cli(cache, "info", path)
    assert ok(text) == str(path)
    assert f"{path.name}: mae (ours)" in text.stdout
    assert ck.sha256[:16] in text.stdout and f"parameters: {n_params:,}" in text.stdout

    res = run_cli(cache, "info", "--json", path)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)  # JSON only on stdout (jq reads it); the path is inside
    assert info["path"] == str(path)
    assert info["kind"] == "mae" and info["source"] == "ours"
    assert info["sha256"] == file_sha256(path)
    assert info["parameters"] == n_params
    assert info["config"] == dataclasses.asdict(ck.config)
    assert info["train"]["epochs"] == 1 and info["train"]["preset"] == "micro"
    assert len(info["history"]) == 1


def test_landscape_npz(surface, trained, env_cache):
    res, out = surface
    assert ok(res) == str(out)
    with np.load(out) as z:
        assert {"xs", "ys", "loss", "meta"} <= set(z.files)
        xs, ys, loss, meta = z["xs"], z["ys"], z["loss"], json.loads(str(z["meta"]))
    np.testing.assert_allclose(xs, np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(ys, xs)
    assert loss.shape == (5, 5) and np.all(np.isfinite(loss))
    assert meta["n_points"] == 25 and meta["n_reused"] == 0
    assert meta["loss_kind"] == "pretrain" and meta["model_kind"] == "mae"
    assert meta["spec"]["grid"] == 5 and meta["spec"]["span"] == 0.5
    # The centre is the checkpoint itself: its loss, computed here independently (CLI default: 256 samples).
    assert loss[2, 2] == pytest.approx(centre_loss(trained[1], "pretrain", 256), rel=1e-5)
    assert "25 points, 0 from the cache" in res.stderr


def test_landscape_rerun_is_cached_and_csv(cache, surface, trained):
    with np.load(surface[1]) as z:
        loss = z["loss"]
    n_entries = len(Store(cache).list("landscape"))
    out = cache / "exports" / "surface.csv"
    res = run_cli(cache, "landscape", trained[1], "--grid", 5, "--span", 0.5, "--out", out)
    assert ok(res) == str(out)
    assert "25 points, 25 from the cache" in res.stderr and "(cached result)" in res.stderr
    assert len(Store(cache).list("landscape")) == n_entries
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["x", "y", "loss"]
    assert len(rows) == 26
    grid = np.array([[float(v) for v in r] for r in rows[1:]])
    np.testing.assert_allclose(grid[:, 0], np.tile(np.linspace(-0.5, 0.5, 5), 5))
    np.testing.assert_allclose(grid[:, 1], np.repeat(np.linspace(-0.5, 0.5, 5), 5))
    np.testing.assert_array_equal(grid[:, 2], loss.reshape(-1))


def test_landscape_1d_probe_loss_on_an_encoder(curve, trained, env_cache):
    res, out = curve
    assert ok(res) == str(out)
    with np.load(out) as z:
        loss, acc, ys, meta = z["loss"], z["acc"], z["ys"], json.loads(str(z["meta"]))
    assert loss.shape == acc.shape == (5,) and ys.size == 0
    assert np.all(np.isfinite(loss)) and np.all((acc >= 0) & (acc <= 1))
    assert meta["n_points"] == 5 and meta["loss_kind"] == "probe" and meta["model_kind"] == "probe"
    # A default probe was trained next to the encoder, and the curve is its loss.
    probe = probe_path(trained[1], file_sha256(trained[1]), ProbeConfig())
    assert probe.is_file()
    assert loss[2] == pytest.approx(centre_loss(probe, "probe", 32), rel=1e-5)


def test_flatness_json(cache, trained, env_cache):
    path = trained[1]
    res = run_cli(cache, "flatness", path, "--top-k", 2, "--samples", 16, "--probes", 4, "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    report = json.loads(res.stdout)
    top = report["top_eigenvalues"]
    assert len(top) == 2 and top[0] >= top[1]
    assert np.isfinite(report["trace"]) and report["sharpness"]["rho"] == 0.05
    assert report["robustness"]["sigmas"] == [0.0, 0.05, 0.1, 0.2, 0.3]
    spec = report["meta"]["spec"]
    assert (spec["top_k"], spec["samples"], spec["trace_probes"]) == (2, 16, 4)
    # The CLI built the spec the engine would: the same request is now in the cache with the same numbers.
    direct = compute_flatness(FlatnessSpec(checkpoint=str(path), samples=16, top_k=2, trace_probes=4), cached_only=True)
    assert direct is not None
    assert direct.top_eigenvalues == top and direct.trace == report["trace"]


def test_cache_list_export_delete(cache, surface, curve):
    store = Store(cache)
    listed = run_cli(cache, "cache", "list")
    assert ok(listed) == str(cache.resolve())
    rows = {tuple(line.split()[:2]) for line in listed.stderr.strip().splitlines()}
    assert rows == {(e.kind, e.key_hash[:HASH_LEN]) for e in store.list()}
    landscapes = {e.key_hash[:HASH_LEN]: store.get("landscape", e.key_hash) for e in store.list("landscape")}
    shapes = {h: e.result().arrays["loss"].shape for h, e in landscapes.items()}
    surface_hash = next(h for h, s in shapes.items() if s == (5, 5))
    curve_hash = next(h for h, s in shapes.items() if s == (5,))

    out = cache / "exports" / "entry.npz"
    assert ok(run_cli(cache, "cache", "export", surface_hash, out)) == str(out)
    with np.load(out) as z, np.load(surface[1]) as want:
        np.testing.assert_array_equal(z["loss"], want["loss"])

    assert ok(run_cli(cache, "cache", "delete", curve_hash)) == curve_hash
    left = {e.key_hash[:HASH_LEN] for e in store.list("landscape")}
    assert curve_hash not in left and surface_hash in left


# ---------------------------------------------------------------------------------------------------------------
# Mistakes


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """A checkpoint whose unpickling would create a marker file (a stand-in for running any code)."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {shlex.quote(str(marker))}",)

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    return path, marker


def test_hostile_pickle_in_a_subprocess(cache, evil):
    path, marker = evil
    res = run_cli(cache, "landscape", path, "--grid", 3)
    assert_user_error(res.returncode, res.stdout, res.stderr, "refusing")
    assert not marker.exists()


USER_ERRORS = {
    "missing info": (["info", "{missing}"], "not found"),
    "missing landscape": (["landscape", "{missing}"], "not found"),
    "missing flatness": (["flatness", "{missing}"], "not found"),
    "missing probe": (["probe", "{missing}"], "not found"),
    "garbage": (["info", "{garbage}"], "not a readable checkpoint"),
    "hostile pickle": (["landscape", "{evil}"], "refusing"),
    "hostile pickle info": (["info", "{evil}"], "refusing"),
    "wrong loss": (["landscape", "{mae}", "--loss", "supervised"], "no classifier head"),
    "wrong loss pretrain": (["flatness", "{sup}", "--loss", "pretrain"], "no MAE pre-training loss"),
    "grid too large": (["landscape", "{mae}", "--grid", "500"], "points per axis"),
    "1-D grid too large": (["landscape", "{mae}", "--dim", "1", "--grid", "5000"], "points per axis"),
    "bad span": (["landscape", "{mae}", "--span", "0"], "span"),
    "bad out suffix": (["landscape", "{mae}", "--grid", "3", "--out", "{tmp}/x.txt"], ".h5 or .vtp"),
    "unknown data": (["train", "--model", "mae", "--data", "nonsense"], "unknown dataset"),
    "missing folder data": (["train", "--model", "mae", "--data", "folder:{tmp}/nope"], "does not exist"),
    "zero epochs": (["train", "--model", "mae", "--epochs", "0"], "at least 1"),
    "probe of a probe": (["probe", "{probe}"], "already a probe"),
    "cache export without hash": (["cache", "export"], "hash"),
    "cache export bad suffix": (["cache", "export", "abcdef12", "{tmp}/x.txt"], ".h5 or .vtp"),
    "cache delete unknown": (["cache", "delete", "abcdef12"], "no cached"),
    "cache delete bad id": (["cache", "delete", "zzz"], "bad entry id"),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_errors_exit_1_with_one_line(case, trained_ckpts, evil, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(range(256)) * 8)
    names = {
        "missing": tmp_path / "missing.pt",
        "garbage": garbage,
        "evil": evil[0],
        "tmp": tmp_path,
        **{k: trained_ckpts[k] for k in ("mae", "sup", "probe")},
    }
    argv, match = USER_ERRORS[case]
    rc = cli_main([a.format(**names) for a in argv])
    out, err = capsys.readouterr()
    assert_user_error(rc, out, err, match)
    assert not evil[1].exists()
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train"],  # --model is required
        ["train", "--model", "vit"],
        ["landscape", "{mae}", "--bogus"],
        ["landscape", "{mae}", "--dim", "3"],
        ["landscape", "{mae}", "--loss", "nonsense"],
        ["landscape", "{mae}", "--grid", "five"],
        ["cache", "purge"],
    ],
)
def test_usage_errors_exit_2(argv, trained_ckpts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exc:
        cli_main([a.format(mae=trained_ckpts["mae"]) for a in argv])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "usage:" in err and out == ""


def test_flatness_options_reach_the_spec(cache, env_cache, trained_ckpts):
    """Every objective option of `flatness` lands in the spec; RC-MAE's MAE-term-alone Hessian differs from the full
    objective's (the consistency term adds curvature)."""
    path = trained_ckpts["rcmae"]
    common = ["--top-k", 1, "--max-iter", 6, "--no-trace", "--no-sharpness", "--no-robustness", "--samples", 8]
    extra = ["--data-seed", 1, "--mask-seed", 2, "--json"]
    mae = json.loads(ok(run_cli(cache, "flatness", path, *common, *extra, "--rcmae-terms", "mae")))
    full = json.loads(ok(run_cli(cache, "flatness", path, *common, *extra)))
    spec = mae["meta"]["spec"]
    assert (spec["rcmae_terms"], spec["data_seed"], spec["mask_seed"], spec["max_iter"]) == ("mae", 1, 2, 6)
    assert spec["sharpness_rho"] is None and mae["sharpness"] is None and mae["trace"] is None
    assert full["meta"]["spec"]["rcmae_terms"] == "full"
    assert mae["top_eigenvalues"][0] != full["top_eigenvalues"][0]


def test_the_installed_command_is_python_m_core(tmp_path):
    """`setup.sh` installs the project (editable): its `vit-landscape` script is `python -m core`, from any folder."""
    from importlib.metadata import PackageNotFoundError, distribution  # only this test asks the installed metadata

    try:
        scripts = {e.name: e.value for e in distribution("vit-landscape").entry_points if e.group == "console_scripts"}
    except PackageNotFoundError:
        pytest.skip("the project is not installed in this environment (./setup.sh installs it)")
    assert scripts == {"vit-landscape": "core.app:main"}
    script = Path(sys.executable).with_name("vit-landscape")
    if not script.exists():
        pytest.skip("no vit-landscape script beside this interpreter")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    via_script = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, env=env)
    via_module = subprocess.run(
        [sys.executable, "-m", "core", "--help"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert via_script.returncode == 0 == via_module.returncode, via_script.stderr + via_module.stderr
    assert via_script.stdout == via_module.stdout and "reproduce" in via_script.stdout
