"""Accuracy under input corruptions: a model that ignores its input is flat across severities, the cache key covers
the corruptions and severities, and a checkpoint without a classifier is refused in one line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import core.measure.input_robustness as ir
from core.errors import LandscapeError
from core.measure.input_robustness import InputRobustnessSpec, compute_input_robustness
from core.models import load_checkpoint


class Constant(torch.nn.Module):
    """Logits that do not depend on the image: always class 1."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), self.n)
        out[:, 1] = 1.0
        return out + 0 * self.w


def test_a_model_that_ignores_its_input_is_flat(trained_ckpts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    real = load_checkpoint(trained_ckpts["sup"])
    fake = replace(real, model=Constant(4), sha256="constant-model")
    monkeypatch.setattr(ir, "load_checkpoint", lambda path: fake)
    res = compute_input_robustness(InputRobustnessSpec(str(trained_ckpts["sup"]), samples=64, device="cpu"))
    assert res.clean_acc > 0 and all(a == res.clean_acc for row in res.acc for a in row)
    assert res.relative_drop == 0.0 and res.kept == 1.0


def test_cache_key_covers_corruptions_and_severities(trained_ckpts, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    base = InputRobustnessSpec(
        str(trained_ckpts["sup"]), corruptions=("translate",), severities=(1, 2), samples=32, device="cpu"
    )
    a = compute_input_robustness(base)
    variants = (
        replace(base, severities=(1, 2, 3)),
        replace(base, corruptions=("rotate",)),
        replace(base, corruptions=("translate", "rotate")),
        replace(base, seed=1),
    )
    entries = {a.meta["entry"]} | {compute_input_robustness(v).meta["entry"] for v in variants}
    assert len(entries) == 1 + len(variants)
    again = compute_input_robustness(base, cached_only=True)
    assert again is not None and again.meta["entry"] == a.meta["entry"] and again.acc == a.acc
    assert compute_input_robustness(replace(base, severities=(4,)), cached_only=True) is None


def test_checkpoint_without_classifier_and_bad_specs_are_one_line(trained_ckpts):
    with pytest.raises(LandscapeError, match="without a classifier") as e:
        compute_input_robustness(InputRobustnessSpec(str(trained_ckpts["mae"])), cached_only=True)
    assert "\n" not in str(e.value)
    for kw in ({"corruptions": ("fog",)}, {"severities": (0,)}, {"severities": ()}, {"samples": 0}):
        with pytest.raises(LandscapeError):
            InputRobustnessSpec("x.pt", **kw)
