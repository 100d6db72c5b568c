"""Shared fixtures: tiny trained checkpoints (MAE, RC-MAE, supervised ViT, a probe) in a session cache folder.

They are trained once per test session on the `synthetic` data with the `micro` preset (a few seconds in all).
Treat the files as read-only: a test that retrains or rewrites one must point `LANDSCAPE_CACHE_DIR` (or `path=`)
elsewhere, or later tests would see other weights (and the probe would no longer match its encoder's hash).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from curvature_models import full_hessian, make_mlp

from core.models.train import ProbeConfig, TrainConfig, train_model, train_probe

TRAINED_KINDS = ("mae", "rcmae", "sup")


def tiny_train_config(kind: str, **overrides) -> TrainConfig:
    """The run behind `trained_ckpts[kind]`: micro preset, synthetic data, 3 short epochs (~1-2 s on a CPU)."""
    base = dict(
        kind=kind,
        data="synthetic",
        preset="micro",
        epochs=3,
        batch_size=32,  # 12 steps per epoch on the 410 training images: enough for the loss to fall
        warmup_epochs=1,
        n_snapshots=3,
        seed=0,
    )
    return TrainConfig(**(base | overrides))


TINY_PROBE = ProbeConfig(epochs=10, batch_size=64)


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    """One intra-op thread for the whole session (override with LANDSCAPE_TEST_THREADS).

    The test models are tiny: on a small machine shared with other jobs, torch's multi-threaded kernels spend
    their time waiting for each other (measured: 3 micro trainings took 47 s with 2 threads, 1.3 s with 1).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("LANDSCAPE_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder (`LANDSCAPE_CACHE_DIR`) the session checkpoints were trained into."""
    return tmp_path_factory.mktemp("landscape_cache")


@pytest.fixture(scope="session")
def trained_configs() -> dict[str, TrainConfig]:
    """kind -> the TrainConfig behind `trained_ckpts[kind]` (mae, rcmae, sup)."""
    return {kind: tiny_train_config(kind) for kind in TRAINED_KINDS}


@pytest.fixture(scope="session")
def trained_ckpts(trained_cache_dir: Path, trained_configs: dict[str, TrainConfig]) -> dict[str, Path]:
    """kind -> checkpoint path for 'mae', 'rcmae', 'sup' (micro, synthetic, 3 epochs) and 'probe' (on the MAE)."""
    out: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(trained_cache_dir))
        for kind, cfg in trained_configs.items():
            out[kind] = train_model(cfg, device="cpu")
        out["probe"] = train_probe(out["mae"], TINY_PROBE, device="cpu")
    return out


@pytest.fixture(scope="session")
def dashboard_cache(trained_ckpts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with the dashboard's "quick" profile fully prepared (for tests/test_app.py and
    tests/test_browser.py): the session's micro checkpoints copied in (the quick profile trains the same runs),
    their default probes, 5x5 landscapes, light flatness numbers and the summary facts. Read-only for tests."""
    import shutil

    from core.app.first_run import prepare_defaults_task
    from core.app.profiles import dashboard_profile, default_trio
    from core.app.registry import JobRegistry
    from core.models.train import checkpoint_path

    root = tmp_path_factory.mktemp("dashboard_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(root))
        profile = dashboard_profile("quick")
        for kind, cfg in default_trio(profile).items():
            target = checkpoint_path(cfg)
            if target.name == trained_ckpts[kind].name:  # the same run: copy instead of retraining
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(trained_ckpts[kind], target)
        reg = JobRegistry()
        job = reg.submit("prepare", "prepare", prepare_defaults_task(profile))
        finished = job.wait(300)
        reg.shutdown()
        assert finished, "preparing the dashboard's quick profile took more than 5 minutes"
        assert job.ok, job.error
    # Some pages' tests compute on demand (a convexity map, a study, a what-if) into this folder, and so do the
    # browser tests' servers: a copy made now keeps the prepared state for tests that count what is there.
    shutil.copytree(root, root.parent / (root.name + "_pristine"))
    return root


@pytest.fixture(scope="session")
def dashboard_cache_pristine(dashboard_cache: Path) -> Path:
    """`dashboard_cache` exactly as prepared, before any test computed more into it. Copy it before writing."""
    return dashboard_cache.parent / (dashboard_cache.name + "_pristine")


@pytest.fixture(scope="module")
def mlp():
    """A small tanh MLP, its cross-entropy loss and its exact Hessian, for the curvature kernels' tests (test_hvp,
    test_hessian, test_sharpness; tests/curvature_models.py)."""
    model, loss = make_mlp()
    return model, loss, full_hessian(model, loss)


@pytest.fixture
def fresh_streamlit_caches():
    """Caches (and the job registry singleton) survive across AppTests in one process: start each test clean (the
    AppTest modules use it for every test: `pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")`)."""
    import streamlit as st  # only the dashboard's tests need streamlit

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
