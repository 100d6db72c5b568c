"""Executive summary: sentences follow the numbers (cost, flatness, inference), missing numbers are said to be
missing, the Japanese text carries the same numbers, and latency is measured on a real (tiny) module."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

import core.report.summary as summary
from core.report.summary import ModelFacts, executive_summary, fmt, fmt_pct

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _rob(drop: float, sigmas=(0.0, 0.05, 0.1), std: float = 0.01) -> dict:
    acc = [0.8 - drop * s / sigmas[-1] for s in sigmas]
    return {"sigmas": list(sigmas), "acc_mean": acc, "acc_std": [0.0] + [std] * (len(sigmas) - 1)}


def _facts(kind: str, times=(2.0, 2.1, 1.9), flat: float = 1.0, label: str | None = None, **kw) -> ModelFacts:
    """A model whose flatness numbers scale with `flat` (larger = sharper)."""
    base = dict(
        label=label or kind,
        kind=kind,
        params_deployed=212_000,
        params_training=800_000 if kind == "rcmae" else 400_000,
        flops_per_image=1_200_000,
        latency_ms=(0.40, 0.02),
        epoch_times=tuple(times),
        probe_acc=0.6,
        top_eigenvalue=10.0 * flat,
        trace=100.0 * flat,
        sharpness=0.02 * flat,
        robustness=_rob(0.1 * flat),
        basin_width=0.5 / flat,
        centre_loss=1.0,  # loss-unit numbers compared across losses are divided by it
    )
    return ModelFacts(**(base | kw))


def _set(**kinds: ModelFacts) -> dict[str, ModelFacts]:
    """label -> facts; an RC-MAE on its own objective also gets the same numbers on its MAE term (what the first-run
    job gathers), unless the set names its MAE-term facts itself."""
    out = {f.label: f for f in kinds.values()}
    if not any(f.function == "rcmae_mae" for f in out.values()):
        for f in list(out.values()):
            if f.kind == "rcmae" and not f.function:
                out[f.label + " (MAE term)"] = replace(f, function="rcmae_mae")
    return out


def _point(s: summary.Summary, i: int) -> summary.Point:
    return s.points[i]


# --------------------------------------------------------------------------------------------------------------
# Training cost


def test_training_cost_more_is_reported_with_its_uncertainty() -> None:
    rc, m = (2.4, 2.35, 2.45, 2.5), (2.1, 2.0, 2.2, 2.05)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    ratio = np.mean(rc) / np.mean(m)
    se = ratio * math.hypot(np.std(rc, ddof=1) / 2 / np.mean(rc), np.std(m, ddof=1) / 2 / np.mean(m))
    assert p.numbers["epoch_time_ratio"] == pytest.approx(ratio)
    assert p.numbers["epoch_time_ratio_se"] == pytest.approx(se)
    assert p.verdict == "supports"
    assert f"costs {fmt_pct((ratio - 1) * 100)} more" in p.sentence
    assert f"±{fmt_pct(200 * se)}" in p.sentence
    assert "2.00x" in p.sentence  # student + teacher held in training


def test_faster_rcmae_says_no_extra_cost() -> None:
    rc, m = (1.8, 1.85, 1.75), (2.1, 2.0, 2.2)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    assert p.verdict == "contradicts"
    assert "less time" in p.sentence and "no extra training cost" in p.sentence
    assert fmt_pct((np.mean(rc) / np.mean(m) - 1) * 100) in p.sentence
    assert "more per" not in p.sentence


def test_cost_within_noise_is_inconclusive() -> None:
    rc, m = (2.0, 2.6, 1.5), (2.1, 1.6, 2.5)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    assert p.verdict == "inconclusive" and "within the measurement spread" in p.sentence


def test_single_epoch_uses_the_tolerance() -> None:
    facts = _set(a=_facts("rcmae", (2.05,)), b=_facts("mae", (2.0,)))
    p = _point(executive_summary(facts, tolerance=0.05), 0)
    assert p.verdict == "inconclusive" and "spread unknown" in p.sentence
    assert _point(executive_summary(facts, tolerance=0.01), 0).verdict == "supports"


# --------------------------------------------------------------------------------------------------------------
# Stability


def test_flatter_rcmae_and_mae_support_the_claim() -> None:
    facts = _set(a=_facts("rcmae", flat=0.5), b=_facts("mae", flat=1.0), c=_facts("sup", flat=3.0))
    s = executive_summary(facts)
    p = _point(s, 1)
    assert p.verdict == "supports"
    assert "RC-MAE is flatter than MAE on all 5 measured numbers" in p.sentence
    assert "MAE is flatter than the supervised ViT on all 5" in p.sentence
    assert p.numbers["rcmae_top_eigenvalue"] == 5.0 and p.numbers["mae_top_eigenvalue"] == 10.0
    # robustness: accuracy drop at the largest common sigma, in percentage points
    assert p.numbers["rcmae_acc_drop_vs_mae"] == pytest.approx(5.0)
    assert p.numbers["mae_acc_drop_vs_rcmae"] == pytest.approx(10.0)
    assert "flatter (more stable)" in s.takeaway


def test_flatter_supervised_vit_contradicts() -> None:
    facts = _set(a=_facts("rcmae", flat=2.0), b=_facts("mae", flat=1.5), c=_facts("sup", flat=0.5))
    s = executive_summary(facts)
    p = _point(s, 1)
    assert p.verdict == "contradicts"
    assert "The supervised ViT is flatter than MAE" in p.sentence
    assert "opposite of the paper's claim" in p.sentence
    # the flatter model's numbers come first: sup 5 vs MAE 15
    assert f"top Hessian eigenvalue / L(centre): {fmt(5.0)} vs {fmt(15.0)}" in p.sentence
    assert "opposite" in s.takeaway


def test_disagreeing_numbers_are_inconclusive_with_counts() -> None:
    rc = _facts("rcmae", flat=0.5, basin_width=0.1, trace=400.0)  # eigenvalue etc. flatter, basin + trace sharper
    facts = _set(a=rc, b=_facts("mae", flat=1.0))
    p = _point(executive_summary(facts), 1)
    assert p.verdict == "inconclusive"
    assert p.numbers["rcmae_vs_mae_rcmae_flatter"] == 3 and p.numbers["rcmae_vs_mae_mae_flatter"] == 2
    assert "3 favour RC-MAE, 2 favour MAE" in p.sentence


def test_differences_within_the_seed_spread_do_not_count() -> None:
    # two seeds each: eigenvalues 9/12 vs 10/11 overlap -> within spread; other numbers missing
    def f(kind: str, label: str, ev: float) -> ModelFacts:
        return _facts(
            kind, label=label, top_eigenvalue=ev, trace=None, sharpness=None, robustness=None, basin_width=None
        )

    facts = _set(a=f("rcmae", "rc0", 9.0), b=f("rcmae", "rc1", 12.0), c=f("mae", "m0", 10.0), d=f("mae", "m1", 11.0))
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_top_eigenvalue"] == pytest.approx(10.5)
    assert p.numbers["rcmae_vs_mae_within_spread"] == 1
    assert p.verdict == "inconclusive" and "within spread" in p.sentence
    assert "Not measured yet: Hessian trace, sharpness, basin width, accuracy drop under weight noise" in p.sentence
    # the same means with no spread but 5% apart count
    facts = _set(a=f("rcmae", "rc0", 10.0), c=f("mae", "m0", 11.0))
    assert _point(executive_summary(facts), 1).verdict == "supports"


def test_largest_common_sigma_is_used_for_robustness() -> None:
    rc = _facts("rcmae", robustness=_rob(0.04, sigmas=(0.0, 0.05, 0.1, 0.2)))  # drop 0.02 at sigma 0.1
    m = _facts("mae", robustness=_rob(0.08, sigmas=(0.0, 0.05, 0.1)))
    p = _point(executive_summary(_set(a=rc, b=m)), 1)
    assert p.numbers["rcmae_vs_mae_sigma"] == 0.1
    assert p.numbers["rcmae_acc_drop_vs_mae"] == pytest.approx(100 * (0.8 - rc.robustness["acc_mean"][2]))
    assert p.numbers["mae_acc_drop_vs_rcmae"] == pytest.approx(8.0)
    assert "σ = 0.1" in p.sentence


def test_missing_flatness_says_not_measured() -> None:
    def bare(kind: str) -> ModelFacts:
        return _facts(kind, top_eigenvalue=None, trace=None, sharpness=None, robustness=None, basin_width=None)

    s = executive_summary(_set(a=bare("rcmae"), b=bare("mae")))
    p = _point(s, 1)
    assert p.verdict == "inconclusive"
    assert "not measured yet" in p.sentence and "flatter" not in p.sentence
    assert "no supervised ViT" in p.sentence
    assert "not measured yet" in s.takeaway
    ja = _point(executive_summary(_set(a=bare("rcmae"), b=bare("mae")), "ja"), 1)
    assert "測定されていません" in ja.sentence and ja.verdict == "inconclusive"


def test_missing_models_give_not_measured_points() -> None:
    s = executive_summary(_set(a=_facts("sup")))
    assert [p.verdict for p in s.points] == ["inconclusive"] * 3
    assert all("not measured yet" in p.sentence for p in s.points)


# --------------------------------------------------------------------------------------------------------------
# Inference


def test_equal_architectures_report_equal_deployed_cost() -> None:
    facts = _set(a=_facts("rcmae", latency_ms=(0.41, 0.02)), b=_facts("mae", latency_ms=(0.40, 0.02)))
    p = _point(executive_summary(facts), 2)
    assert p.numbers["same_architecture"] == "yes" and p.numbers["params_ratio"] == 1.0
    assert p.verdict == "supports"
    assert "same architecture" in p.sentence and "212k parameters" in p.sentence
    assert p.numbers["latency_ratio"] == pytest.approx(0.41 / 0.40)
    assert "1.02x" in p.sentence and "no extra inference cost" in p.sentence


def test_a_bigger_deployed_model_contradicts() -> None:
    facts = _set(a=_facts("rcmae", params_deployed=424_000, flops_per_image=2_400_000), b=_facts("mae"))
    p = _point(executive_summary(facts), 2)
    assert p.verdict == "contradicts" and p.numbers["params_ratio"] == 2.0 and "costs more" in p.sentence


def test_slower_latency_on_the_same_architecture_is_inconclusive() -> None:
    facts = _set(a=_facts("rcmae", latency_ms=(0.8, 0.02)), b=_facts("mae", latency_ms=(0.4, 0.02)))
    p = _point(executive_summary(facts), 2)
    assert p.verdict == "inconclusive" and "re-measure" in p.sentence
    p = _point(executive_summary(_set(a=_facts("rcmae", latency_ms=(math.nan, math.nan)), b=_facts("mae"))), 2)
    assert "Latency is not measured yet" in p.sentence


def test_deployed_encoders_of_real_mae_and_rcmae_are_equal() -> None:
    from core.models.vit import build_model, encoder_of, preset

    cfg = preset("micro")

    def deployed(kind: str) -> int:  # the encoder without the decoder
        enc = encoder_of(build_model(kind, cfg))
        return sum(p.numel() for n, p in enc.named_parameters() if not n.startswith(("decoder", "mask_token")))

    def training(kind: str) -> int:
        return sum(p.numel() for p in build_model(kind, cfg).parameters())

    facts = {
        k: _facts(k, params_deployed=deployed(k), params_training=training(k), latency_ms=(0.4, 0.02))
        for k in ("mae", "rcmae")
    }
    s = executive_summary(facts)
    assert s.points[2].numbers["same_architecture"] == "yes"
    assert s.points[0].numbers["training_params_ratio"] == pytest.approx(2.0)


# --------------------------------------------------------------------------------------------------------------
# Languages


@pytest.mark.parametrize("flat", [(0.5, 1.0, 3.0), (2.0, 1.5, 0.5)])
def test_japanese_has_the_same_numbers(flat) -> None:
    facts = _set(
        a=_facts("rcmae", (2.4, 2.35, 2.45), flat=flat[0], latency_ms=(0.41, 0.02)),
        b=_facts("mae", flat=flat[1]),
        c=_facts("sup", flat=flat[2]),
    )
    en, ja = executive_summary(facts, "en"), executive_summary(facts, "ja")
    assert ja.lang == "ja" and en.lang == "en"
    for pe, pj in zip(en.points, ja.points, strict=True):
        assert pe.numbers == pj.numbers and pe.verdict == pj.verdict
        assert JAPANESE.search(pj.sentence) and JAPANESE.search(pj.title)
        assert not JAPANESE.search(pe.sentence)
        # every number written in English is written the same way in Japanese
        assert set(NUMBER.findall(pe.sentence)) <= set(NUMBER.findall(pj.sentence)), pe.sentence
    assert JAPANESE.search(ja.takeaway)
    assert set(NUMBER.findall(en.takeaway)) <= set(NUMBER.findall(ja.takeaway))


def test_japanese_wording_follows_the_numbers() -> None:
    more = _set(a=_facts("rcmae", (2.4, 2.35, 2.45)), b=_facts("mae"))
    p = _point(executive_summary(more, "ja"), 0)
    assert "多く時間がかかります" in p.sentence
    less = _set(a=_facts("rcmae", (1.5, 1.55, 1.45)), b=_facts("mae"))
    assert "短い時間" in _point(executive_summary(less, "ja"), 0).sentence
    sharp_sup = _set(a=_facts("rcmae", flat=2.0), b=_facts("mae", flat=1.5), c=_facts("sup", flat=0.5))
    assert "論文の主張とは逆" in _point(executive_summary(sharp_sup, "ja"), 1).sentence


def test_unknown_language_is_refused() -> None:
    with pytest.raises(Exception, match="language"):
        executive_summary({}, "fr")


# --------------------------------------------------------------------------------------------------------------
# Latency measurement


def test_measure_inference_times_a_tiny_module() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 4))
    net.train()
    calls = []

    def forward(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls.append((m.training, torch.is_grad_enabled()))
        return m(x)

    mean, std = summary.measure_inference(net, torch.randn(4, 8), forward=forward, repeats=5, warmup=2)
    assert math.isfinite(mean) and mean > 0 and math.isfinite(std) and std >= 0
    assert len(calls) == 7 and all(c == (False, False) for c in calls)  # eval mode, no grad, warmup + repeats
    assert net.training  # restored
    mean1, std1 = summary.measure_inference(net, torch.randn(2, 8), repeats=1, warmup=0)
    assert mean1 > 0 and std1 == 0.0


def test_fact_objects_are_frozen() -> None:
    f = _facts("mae")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.trace = 1.0  # type: ignore[misc]


def test_mae_vs_supervised_compares_loss_unit_numbers_relative_to_each_centre_loss():
    # MAE's raw Hessian numbers are larger, but its loss is 10x larger too: relative to the centre it is flatter.
    mae = _facts("mae", flat=2.0, centre_loss=10.0, robustness=None, basin_width=None)
    sup = _facts("sup", flat=1.0, centre_loss=1.0, robustness=None, basin_width=None)
    p = _point(executive_summary(_set(a=mae, b=sup)), 1)
    assert p.numbers["mae_top_eigenvalue_rel"] == pytest.approx(2.0) and p.numbers["sup_top_eigenvalue_rel"] == 10.0
    assert p.numbers["mae_vs_sup_verdict"] == "supports"
    assert "/ L(centre)" in p.sentence
    # Without a centre loss these numbers cannot be put on one scale: they count as not measured.
    p = _point(executive_summary(_set(a=replace(mae, centre_loss=None), b=sup)), 1)
    assert p.numbers["mae_vs_sup_verdict"] == "not measured"


# --------------------------------------------------------------------------------------------------------------
# Same function (core.report.comparison)


def test_rcmae_is_compared_with_mae_on_its_mae_term_and_the_full_objective_is_a_secondary_line():
    full = _facts("rcmae", flat=2.0, label="rc")  # its full objective: sharper (the consistency term adds curvature)
    term = replace(full, label="rc (MAE term)", function="rcmae_mae", **_flat_fields(0.5))
    facts = {f.label: f for f in (full, term, _facts("mae", flat=1.0), _facts("sup", flat=3.0))}
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "supports"  # decided on the MAE term
    assert p.numbers["rcmae_top_eigenvalue"] == pytest.approx(5.0)
    assert p.numbers["full_rcmae_vs_mae_verdict"] == "contradicts"  # shown, not counted
    assert p.verdict == "supports"
    assert "masked-patch MSE" in p.sentence and "student" in p.sentence
    assert "Secondary line, not counted" in p.sentence and "positive semi-definite" in p.sentence
    # The verdict follows the MAE-term numbers: make them sharper and it turns.
    facts[term.label] = replace(term, **_flat_fields(2.0))
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "contradicts" and p.verdict == "inconclusive"
    ja = _point(executive_summary(facts, "ja"), 1)
    assert "判定には数えない" in ja.sentence and "半正定値" in ja.sentence


def test_without_the_mae_term_rcmae_vs_mae_is_not_measured_and_costs_count_once():
    full = _facts("rcmae", flat=0.5, label="rc")
    s = executive_summary({"rc": full, "m": _facts("mae")})
    p = _point(s, 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "not measured"  # never ranked on two different functions
    assert p.numbers["full_rcmae_vs_mae_verdict"] == "supports"
    assert p.verdict == "inconclusive"
    # The MAE-term facts are the same model: its epochs are counted once.
    both = _set(a=_facts("rcmae", (2.4, 2.35, 2.45)), b=_facts("mae"))
    assert len(both) == 3 and executive_summary(both).points[0].numbers["n_epochs_rcmae"] == 3


def test_other_values_in_the_facts_are_ignored_by_the_summary():
    facts = _set(a=_facts("rcmae"), b=_facts("mae")) | {"generalization": {"val_acc": {}}}
    assert executive_summary(facts).points[2].verdict == "supports"


def _flat_fields(flat: float) -> dict:
    return dict(
        top_eigenvalue=10.0 * flat,
        trace=100.0 * flat,
        sharpness=0.02 * flat,
        robustness=_rob(0.1 * flat),
        basin_width=0.5 / flat,
    )
