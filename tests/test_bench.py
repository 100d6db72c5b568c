"""The benchmark on a micro model: every contestant computes the same losses at the same points, and the output
line has its fixed format. Timings are not checked (they are noise at this size)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from bench import run as bench

LINE = re.compile(r"^speedup_vs_reference=(\S+) overhead_ratio=(\S+) prefix_speedup=(\S+) hessian_speedup=(\S+)$")
MICRO = bench.BenchSettings(
    grid=3,
    samples=64,
    repeats=1,
    warmup=0,
    hessian_samples=32,
    hessian_ks=(2,),
    hessian_max_iter=40,
    surface_grid=5,
)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_state(before: dict[str, torch.Tensor], module: torch.nn.Module) -> None:
    after = module.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"{k} was not restored"


def test_contestants_agree_at_every_point(trained_ckpts):
    case = bench.make_case(trained_ckpts["mae"], MICRO)
    before = _state(case.module)
    ours = bench.plane_ours(case)
    ref = bench.plane_reference(case)
    _assert_same_state(before, case.module)
    assert ours.shape == ref.shape == (3, 3)
    # The plane is not flat, so agreement below says something.
    assert np.ptp(ours) > 1e-3
    np.testing.assert_allclose(ref, ours, rtol=0, atol=1e-5)
    for i, b in enumerate(case.ys):
        for j, a in enumerate(case.xs):
            assert abs(bench.bare_at(case, a, b) - ours[i, j]) <= 1e-5
    _assert_same_state(before, case.module)
    # The timed bare forward stays at the centre: every value is the centre's loss.
    bare = bench.plane_bare(case)
    np.testing.assert_allclose(bare, np.full((3, 3), ours[1, 1]), rtol=0, atol=1e-5)


def test_prefix_cached_scopes_agree_with_full_forwards(trained_ckpts):
    head = bench.make_case(trained_ckpts["probe"], MICRO, loss="probe", scope="head")
    dec = bench.make_case(trained_ckpts["mae"], MICRO, scope="decoder")
    for case in (head, dec):
        ours, ref = bench.plane_ours(case), bench.plane_reference(case)
        assert np.ptp(ours) > 1e-4
        np.testing.assert_allclose(ref, ours, rtol=0, atol=1e-5)
    # Only the head / the decoder moves.
    assert all(not t.any() for n, t in head.d1.items() if not n.startswith("head."))
    assert all(not t.any() for n, t in dec.d1.items() if not (n.startswith("decoder_") or n == "mask_token"))


def test_run_benchmark_micro(trained_ckpts):
    results = bench.run_benchmark(MICRO, trained_ckpts["mae"], trained_ckpts["probe"])
    json.dumps(results, allow_nan=True)  # the results file's content is plain values
    plane = results["plane"]
    assert set(plane["contestants"]) >= {"ours", "reference", "bare_forward"}
    assert plane["agreement"]["max_abs_diff_reference"] <= 1e-5
    assert plane["agreement"]["max_abs_diff_bare"] <= 1e-5
    for sec in results["prefix"].values():
        assert sec["agreement"]["max_abs_diff_reference"] <= 1e-5
    hess = results["hessian"]["k2"]
    c = hess["contestants"]
    assert c["ours"]["rel_err_top_vs_tight"] < 1e-3
    assert len(c["ours"]["values"]) == 2 and c["ours"]["values"][0] >= c["ours"]["values"][1]
    # The journaled run records every step and gives the same numbers.
    assert c["ours_journaled"]["values"] == c["ours"]["values"] and "ours_journaled/ours" in hess["ratios"]
    if "pyhessian" in c:  # optional peer
        assert hess["rel_diff_top"] < 0.05
    fp = results["first_picture"]
    assert 0 < fp["coarse"]["median_s"] <= fp["full"]["median_s"]

    line = bench.summary_line(results["summary"])
    m = LINE.match(line)
    assert m, line
    x, y, z = (float(v) for v in m.groups()[:3])
    assert x > 0 and y > 0 and z > 0
    table = bench.format_table(results)
    assert "reference" in table and "first picture" in table


def test_summary_line_format_and_missing_parts():
    line = bench.summary_line(bench.summarize({}))
    assert LINE.match(line)
    assert line == "speedup_vs_reference=nan overhead_ratio=nan prefix_speedup=nan hessian_speedup=nan"
    results = {
        "plane": {"ratios": {"reference/ours": {"median": 2.0}, "bare_forward/ours": {"median": 0.98765}}},
        "prefix": {"head_probe": {"ratios": {"reference/ours": {"median": 123.4}}}},
        "hessian": {"headline_k": 3, "k3": {"ratios": {"pyhessian/ours": {"median": 1.5}}}},
    }
    s = bench.summarize(results)
    expected = {"speedup_vs_reference": 2.0, "overhead_ratio": 0.98765, "prefix_speedup": 123.4, "hessian_speedup": 1.5}
    assert s == expected
    assert bench.summary_line(s) == "speedup_vs_reference=2 overhead_ratio=0.988 prefix_speedup=123 hessian_speedup=1.5"


def test_interleaving_rotates_and_keeps_errors():
    calls: list[str] = []

    def failing():
        calls.append("c")
        raise RuntimeError("peer broke")

    timings, last = bench.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"), "c": failing},
        repeats=3,
        warmup=1,
        device=torch.device("cpu"),
    )
    assert calls[:3] == ["a", "b", "c"] and calls[3:5] == ["b", "a"]  # round 2 starts with b; c dropped
    assert len(timings["a"].times) == 3 and "c" not in timings
    assert isinstance(last["c"], RuntimeError)


def test_vit_b_estimate_scales_with_grid_images_and_gpus():
    plane = {"points": 9, "contestants": {"ours": {"median_s": 0.9}}}
    e = bench.vit_b_estimate(plane, samples=128)
    expected_s = 51 * 51 * 0.1 * 2048 / 128
    assert math.isclose(e["hours_1_gpu"], expected_s / 3600)
    assert math.isclose(e["hours_8_gpus"], expected_s / 8 / 3600)


@pytest.mark.parametrize("quick", [True, False])
def test_settings_from_args(quick):
    a = bench.build_parser().parse_args(["--quick"] if quick else ["--repeats", "7"])
    s = bench.settings_from_args(a)
    assert s.mode == ("quick" if quick else "full")
    assert (s.grid, s.repeats) == ((5, 3) if quick else (21, 7))
