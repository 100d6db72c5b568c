"""Executive summary: each point is decided by the one paired rule of `core.report.verdicts` (time per epoch paired
epoch by epoch within a seed, flatness by each counted comparison's primary number paired by seed, inference by the
exact counts), the sentences follow the numbers, missing numbers are said to be missing, the Japanese text carries the
same numbers, and latency is measured on a real (tiny) module."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats

import core.report.summary as summary
from core.errors import LandscapeError
from core.report.summary import ModelFacts, executive_summary, fmt_pct, measure_paired_latency
from core.report.verdicts import MARGINS, claim_verdict, paired

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
RATIO = MARGINS["ratio"]
# Seed-to-seed variation of each kind's flatness numbers (independent between kinds, a few percent).
JITTER = {
    "rcmae": (1.00, 1.04, 0.97, 1.02, 0.99),
    "mae": (1.02, 0.98, 1.01, 0.97, 1.03),
    "sup": (0.98, 1.01, 1.03, 0.99, 1.00),
}


def _rob(drop: float, sigmas=(0.0, 0.05, 0.1), std: float = 0.01) -> dict:
    acc = [0.8 - drop * s / sigmas[-1] for s in sigmas]
    return {"sigmas": list(sigmas), "acc_mean": acc, "acc_std": [0.0] + [std] * (len(sigmas) - 1)}


def _flat_fields(flat: float) -> dict:
    return dict(
        top_eigenvalue=10.0 * flat,
        trace=100.0 * flat,
        sharpness=0.02 * flat,
        robustness=_rob(0.1 * flat),
        basin_width=0.5 / flat,
    )


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
        centre_loss=1.0,  # loss-unit numbers compared across losses are divided by it
    )
    return ModelFacts(**(base | _flat_fields(flat) | kw))


def _set(**kinds: ModelFacts) -> dict[str, ModelFacts]:
    """label -> facts; an RC-MAE on its own objective also gets the same numbers on its MAE term (what the first-run
    job gathers), unless the set names its MAE-term facts itself."""
    out = {f.label: f for f in kinds.values()}
    if not any(f.function == "rcmae_mae" for f in out.values()):
        for f in list(out.values()):
            if f.kind == "rcmae" and not f.function:
                out[f.label + " (MAE term)"] = replace(f, function="rcmae_mae")
    return out


def _seeded(
    seeds: int = 4, rc: float | None = 0.5, mae: float = 1.0, sup: float | None = 3.0, kw: dict | None = None
) -> dict[str, ModelFacts]:
    """`seeds` models of each kind (RC-MAE on its own objective and on its MAE term), the flatness factors `rc`,
    `mae`, `sup` times a few percent of seed-to-seed jitter; `kw` per kind: {"rcmae": {field: value}, ...}."""
    out, kw = {}, kw or {}
    for k in range(seeds):
        for kind, flat in (("rcmae", rc), ("mae", mae), ("sup", sup)):
            if flat is None:
                continue
            f = _facts(kind, flat=flat * JITTER[kind][k], label=f"{kind} s{k}", seed=k, **kw.get(kind, {}))
            out[f.label] = f
    return _set(**out)


def _point(s: summary.Summary, i: int) -> summary.Point:
    return s.points[i]


def _expected_ratio(a, b) -> tuple[float, float, float]:
    """The geometric mean ratio a / b and its 95% paired t-interval, computed here independently."""
    d = np.log(np.asarray(a, float)) - np.log(np.asarray(b, float))
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return math.exp(d.mean()), math.exp(d.mean() - half), math.exp(d.mean() + half)


def _same_numbers(x: dict, y: dict) -> bool:
    """Equal dicts, NaN equal to NaN."""
    same = lambda u, v: u == v or (isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v))  # noqa: E731
    return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)


# --------------------------------------------------------------------------------------------------------------
# Training cost: epoch i of RC-MAE seed k against epoch i of MAE seed k, log-ratios, margin a factor of 1.05


def test_a_clear_paired_cost_difference_supports_with_its_interval() -> None:
    rc, m = (2.4, 2.35, 2.45, 2.5), (2.1, 2.0, 2.2, 2.05)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    ratio, lo, hi = _expected_ratio(rc, m)
    assert p.numbers["epoch_time_ratio"] == pytest.approx(ratio)  # geometric: exp of the mean log-ratio
    assert (p.numbers["epoch_time_ratio_lo"], p.numbers["epoch_time_ratio_hi"]) == pytest.approx((lo, hi))
    assert p.numbers["n_epoch_pairs"] == 4 and p.numbers["extra_pct"] == pytest.approx((ratio - 1) * 100)
    assert lo > 1 and p.verdict == "supports"
    assert f"costs {fmt_pct((ratio - 1) * 100)} more" in p.sentence
    assert f"×{ratio:.3g} [{lo:.3g}, {hi:.3g}]" in p.sentence and "4 epoch pairs" in p.sentence
    assert "2.00x" in p.sentence  # student + teacher held in training


def test_faster_rcmae_contradicts_and_says_no_extra_cost() -> None:
    rc, m = (1.8, 1.85, 1.75, 1.8), (2.1, 2.0, 2.2, 2.1)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    ratio, _, hi = _expected_ratio(rc, m)
    assert hi < 1 and p.verdict == "contradicts"
    assert "less time" in p.sentence and "no extra training cost" in p.sentence
    assert fmt_pct((ratio - 1) * 100) in p.sentence
    assert "more per" not in p.sentence


def test_epoch_times_within_5_percent_read_no_meaningful_difference() -> None:
    load = 2.0 + 0.5 * np.random.default_rng(0).random(40)  # the machine's load moves both runs' epoch i alike
    noise = np.exp(0.02 * (-1.0) ** np.arange(40))  # RC-MAE's epoch i 2% slower or faster than MAE's, alternately
    same = _point(executive_summary(_set(a=_facts("rcmae", load * noise), b=_facts("mae", load))), 0)
    assert same.verdict == "no meaningful difference"
    assert same.numbers["epoch_time_ratio"] == pytest.approx(1.0)
    assert 1 / 1.05 < same.numbers["epoch_time_ratio_lo"] and same.numbers["epoch_time_ratio_hi"] < 1.05
    assert "within 5%" in same.sentence and "no meaningful extra training cost" in same.sentence
    # the same noise with RC-MAE 10% slower: decided the other way
    more = _point(executive_summary(_set(a=_facts("rcmae", load * 1.10 * noise), b=_facts("mae", load))), 0)
    assert more.verdict == "supports" and more.numbers["epoch_time_ratio"] == pytest.approx(1.10, rel=0.01)


def test_noisy_epoch_times_are_undetermined_with_the_pairs_that_would_decide() -> None:
    rc, m = (2.0, 2.6, 1.5, 2.3), (2.1, 1.6, 2.5, 2.0)
    p = _point(executive_summary(_set(a=_facts("rcmae", rc), b=_facts("mae", m))), 0)
    assert p.verdict == "undetermined" and "not yet told apart" in p.sentence
    _, lo, hi = _expected_ratio(rc, m)
    assert lo < 1 < hi
    needed = p.numbers["epoch_time_seeds_needed"]
    assert math.isnan(needed) or needed > 4


def test_one_epoch_per_model_is_undetermined() -> None:
    p = _point(executive_summary(_set(a=_facts("rcmae", (2.5,)), b=_facts("mae", (2.0,)))), 0)
    assert p.verdict == "undetermined" and p.numbers["n_epoch_pairs"] == 1
    assert p.numbers["epoch_time_ratio"] == pytest.approx(1.25) and math.isnan(p.numbers["epoch_time_ratio_lo"])
    assert "no interval" in p.sentence and "not yet told apart" in p.sentence


def test_epoch_times_are_paired_within_a_seed() -> None:
    # seed 0 ran on a busy machine (4 s per epoch), seed 1 on a quiet one (1 s); RC-MAE 10% slower in both
    def models(seeded: bool) -> dict:
        return _set(
            a=_facts("rcmae", (4.4,) * 5, label="rc b", seed=0 if seeded else None),
            b=_facts("rcmae", (1.1,) * 5, label="rc a", seed=1 if seeded else None),
            c=_facts("mae", (4.0,) * 5, label="m a", seed=0 if seeded else None),
            d=_facts("mae", (1.0,) * 5, label="m b", seed=1 if seeded else None),
        )

    p = _point(executive_summary(models(True)), 0)
    assert p.verdict == "supports" and p.numbers["epoch_time_ratio"] == pytest.approx(1.10)
    assert p.numbers["n_epoch_pairs"] == 10
    # without seeds the models pair in label order, busy against quiet: the same geometric mean, nothing decided
    p = _point(executive_summary(models(False)), 0)
    assert p.numbers["epoch_time_ratio"] == pytest.approx(1.10) and p.verdict == "undetermined"


# --------------------------------------------------------------------------------------------------------------
# Stability: each counted comparison decided by its primary, paired by seed; Holm over the counted ones


def test_flatter_rcmae_on_the_primary_supports_even_if_a_secondary_number_disagrees() -> None:
    facts = _seeded(rc=0.5, kw={"rcmae": {"trace": 400.0}})  # top eigenvalue flatter, Hessian trace sharper
    s = executive_summary(facts)
    p = _point(s, 1)
    n = p.numbers
    assert n["rcmae_vs_mae_primary"] == "top_eigenvalue" and n["rcmae_vs_mae_verdict"] == "supports"
    assert n["rcmae_vs_mae_trace_reading"] == "contradicts"  # shown, not counted
    assert n["mae_vs_sup_primary"] == "basin_width" and n["mae_vs_sup_verdict"] == "supports"
    assert p.verdict == "supports" and n["stability_n"] == 4
    # the estimate, computed here by seed
    rc = [0.5 * JITTER["rcmae"][k] for k in range(4)]
    mae = [JITTER["mae"][k] for k in range(4)]
    ratio, lo, hi = _expected_ratio(rc, mae)
    assert (n["rcmae_vs_mae_estimate"], n["rcmae_vs_mae_lo"], n["rcmae_vs_mae_hi"]) == pytest.approx((ratio, lo, hi))
    assert n["rcmae_vs_mae_n"] == 4 and n["rcmae_vs_mae_top_eigenvalue"] == pytest.approx(ratio)
    assert "decided by the top Hessian eigenvalue" in p.sentence and "Supported at 4 seeds." in p.sentence
    assert "Shown, not counted: Hessian trace ×" in p.sentence and "(the other way)" in p.sentence
    assert "RC-MAE is flatter (more stable) than MAE" in s.takeaway and "steadier model" in s.takeaway


def test_the_stability_point_is_claim_verdict_over_the_counted_primaries() -> None:
    # log-ratios by seed chosen so that each primary alone supports (p ~ 0.03), but not both after Holm (p ~ 0.06)
    d = np.array([-0.30, -0.12, -0.28, -0.10])
    out = {}
    for k in range(4):
        rc = _facts("rcmae", label=f"rc{k}", seed=k, top_eigenvalue=10.0 * math.exp(d[k]))
        sup = _facts("sup", label=f"sup{k}", seed=k, basin_width=0.5 * math.exp(d[k]))
        out |= {rc.label: rc, f"m{k}": _facts("mae", label=f"m{k}", seed=k), sup.label: sup}
    p = _point(executive_summary(_set(**out)), 1)
    rc = paired("rc", 10.0 * np.exp(d), [10.0] * 4, "lower", RATIO)
    ms = paired("ms", [0.5] * 4, 0.5 * np.exp(d), "higher", RATIO)
    assert rc.reading == ms.reading == "supports"  # each alone
    assert (p.numbers["rcmae_vs_mae_verdict"], p.numbers["mae_vs_sup_verdict"]) == ("supports", "supports")
    cv = claim_verdict([rc, ms])
    assert cv.verdict == p.verdict == "undetermined"  # together, after Holm
    assert p.numbers["stability_seeds_needed"] == cv.seeds_needed and p.numbers["stability_n"] == 4
    # a little less spread and both hold after Holm
    p = _point(executive_summary(_seeded(rc=math.exp(d.mean()), sup=math.exp(-d.mean()))), 1)
    assert p.verdict == "supports"


def test_a_sharper_rcmae_on_the_primary_contradicts_even_if_a_secondary_number_agrees() -> None:
    s = executive_summary(_seeded(rc=2.0, kw={"rcmae": {"trace": 25.0}}))
    p = _point(s, 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "contradicts"
    assert p.numbers["rcmae_vs_mae_trace_reading"] == "supports"
    assert p.verdict == "contradicts" and "Contradicted at 4 seeds." in p.sentence
    assert "opposite of the paper's stability claim" in s.takeaway


def test_flatter_supervised_vit_contradicts() -> None:
    s = executive_summary(_seeded(rc=0.5, sup=0.3))
    p = _point(s, 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "supports" and p.numbers["mae_vs_sup_verdict"] == "contradicts"
    assert p.verdict == "contradicts"
    assert "MAE vs the supervised ViT, decided by the basin width" in p.sentence
    assert "/ L(centre)" in p.sentence  # the loss-unit numbers across two losses, relative to each centre loss
    assert "opposite" in s.takeaway


def test_models_carrying_seed_are_paired_by_seed_not_by_label_order() -> None:
    # seed k's models share a factor 10**k (a seed that lands in a sharper region for both kinds); RC-MAE is 0.8x
    # MAE within each seed. The labels sort in the opposite order to the seeds.
    def models(seeded: bool) -> dict:
        out = {}
        for k in range(4):
            scale, wobble = 10.0**k, (1.0, 1.01, 0.99, 1.02)[k]
            rc = _facts("rcmae", label=f"rc {3 - k}", top_eigenvalue=8.0 * scale * wobble, seed=k if seeded else None)
            m = _facts("mae", label=f"m {k}", top_eigenvalue=10.0 * scale, seed=k if seeded else None)
            out |= {rc.label: rc, m.label: m}
        return _set(**out)

    by_seed = _point(executive_summary(models(True)), 1).numbers
    assert by_seed["rcmae_vs_mae_verdict"] == "supports"
    assert by_seed["rcmae_vs_mae_estimate"] == pytest.approx(0.8, rel=0.02)
    # paired in label order instead, seed 3 meets seed 0: the same models decide nothing
    by_order = _point(executive_summary(models(False)), 1).numbers
    assert by_order["rcmae_vs_mae_verdict"] == "undetermined"


def test_a_single_seed_per_kind_is_undetermined_and_says_two_are_needed() -> None:
    facts = _set(a=_facts("rcmae", flat=0.5), b=_facts("mae", flat=1.0), c=_facts("sup", flat=3.0))
    s = executive_summary(facts)
    p = _point(s, 1)
    assert p.verdict == "undetermined"
    assert p.numbers["rcmae_vs_mae_n"] == 1 and math.isnan(p.numbers["rcmae_vs_mae_lo"])
    assert p.numbers["rcmae_vs_mae_estimate"] == pytest.approx(0.5)  # the ratio is still shown
    assert "Undetermined at 1 seed: at least 2 are needed for an interval." in p.sentence
    assert "not settled yet" in s.takeaway
    ja = _point(executive_summary(facts, "ja"), 1)
    assert "少なくとも2シードが必要" in ja.sentence and ja.verdict == "undetermined"


def test_differences_within_the_seed_spread_are_undetermined() -> None:
    # two seeds each: eigenvalues 9 / 12 vs 10 / 11, ratios 0.9 and 1.09; the other numbers missing
    def f(kind: str, seed: int, ev: float) -> ModelFacts:
        return _facts(
            kind, label=f"{kind}{seed}", seed=seed, top_eigenvalue=ev, trace=None, sharpness=None, robustness=None,
            basin_width=None,
        )  # fmt: skip

    facts = _set(a=f("rcmae", 0, 9.0), b=f("rcmae", 1, 12.0), c=f("mae", 0, 10.0), d=f("mae", 1, 11.0))
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "undetermined" and p.numbers["rcmae_vs_mae_n"] == 2
    assert p.numbers["rcmae_vs_mae_estimate"] == pytest.approx(math.sqrt(0.9 * 12 / 11))
    assert "Undetermined after 2 seeds" in p.sentence
    assert "Not measured yet: Hessian trace, sharpness, basin width, accuracy drop under weight noise" in p.sentence
    # the same spread of the eigenvalues, but RC-MAE 0.8x MAE in each seed: decided
    facts = _set(a=f("rcmae", 0, 8.0), b=f("rcmae", 1, 8.8), c=f("mae", 0, 10.0), d=f("mae", 1, 11.0))
    assert _point(executive_summary(facts), 1).numbers["rcmae_vs_mae_verdict"] == "supports"


def test_largest_common_sigma_is_used_for_robustness() -> None:
    rc_rob = _rob(0.04, sigmas=(0.0, 0.05, 0.1, 0.2))  # drop 0.02 at sigma 0.1
    facts = _seeded(kw={"rcmae": {"robustness": rc_rob}, "mae": {"robustness": _rob(0.08)}})
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_sigma"] == 0.1
    assert p.numbers["rcmae_vs_mae_acc_drop"] == pytest.approx(0.02 - 0.08)  # RC-MAE's drop minus MAE's
    assert p.numbers["rcmae_vs_mae_acc_drop_reading"] == "supports"
    assert "σ = 0.1" in p.sentence


def test_missing_flatness_says_not_measured() -> None:
    def bare(kind: str) -> ModelFacts:
        return _facts(kind, top_eigenvalue=None, trace=None, sharpness=None, robustness=None, basin_width=None)

    s = executive_summary(_set(a=bare("rcmae"), b=bare("mae")))
    p = _point(s, 1)
    assert p.verdict == "undetermined" and p.numbers["rcmae_vs_mae_verdict"] == "not measured"
    assert "not measured yet" in p.sentence and "flatter" not in p.sentence
    assert "no supervised ViT" in p.sentence
    assert "not measured yet" in s.takeaway
    ja = _point(executive_summary(_set(a=bare("rcmae"), b=bare("mae")), "ja"), 1)
    assert "測定されていません" in ja.sentence and ja.verdict == "undetermined"


def test_missing_models_give_not_measured_points() -> None:
    s = executive_summary(_set(a=_facts("sup")))
    assert [p.verdict for p in s.points] == ["undetermined"] * 3
    assert all("not measured yet" in p.sentence for p in s.points)


# --------------------------------------------------------------------------------------------------------------
# Inference: the exact counts decide, latency is shown


def test_equal_architectures_support_whatever_the_latency() -> None:
    facts = _set(a=_facts("rcmae", latency_ms=(0.41, 0.02)), b=_facts("mae", latency_ms=(0.40, 0.02)))
    p = _point(executive_summary(facts), 2)
    assert p.numbers["same_architecture"] == "yes" and p.numbers["params_ratio"] == 1.0
    assert p.verdict == "supports"
    assert "same architecture" in p.sentence and "212k parameters" in p.sentence
    # twice the latency on the same architecture, timed separately: the machine's load, not the model. It neither
    # decides nor appears (the briefing shows latency only timed interleaved and paired).
    slow = _point(executive_summary(_set(a=_facts("rcmae", latency_ms=(0.8, 0.02)), b=_facts("mae"))), 2)
    assert slow.verdict == "supports" and slow.sentence == p.sentence and "latency_ratio" not in slow.numbers


def test_paired_latency_is_timed_interleaved_on_real_modules() -> None:
    a, b = torch.nn.Linear(16, 16), torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.Linear(256, 16))
    a.train(), b.eval()
    ta, tb = measure_paired_latency(a, b, torch.randn(8, 16), rounds=6, warmup=1)
    assert ta.shape == tb.shape == (6,) and (ta > 0).all() and (tb > 0).all()
    assert a.training and not b.training  # each module's mode is restored
    with pytest.raises(LandscapeError, match="at least 2"):
        measure_paired_latency(a, b, torch.randn(8, 16), rounds=1)


def test_a_bigger_deployed_model_contradicts_and_a_smaller_one_supports() -> None:
    facts = _set(a=_facts("rcmae", params_deployed=424_000, flops_per_image=2_400_000), b=_facts("mae"))
    p = _point(executive_summary(facts), 2)
    assert p.verdict == "contradicts" and p.numbers["params_ratio"] == 2.0 and "costs more" in p.sentence
    # the same parameters, twice the FLOPs per image: it costs more to run
    p = _point(executive_summary(_set(a=_facts("rcmae", flops_per_image=2_400_000), b=_facts("mae"))), 2)
    assert p.verdict == "contradicts" and p.numbers["flops_ratio"] == 2.0 and "costs more" in p.sentence
    small = _set(a=_facts("rcmae", params_deployed=106_000, flops_per_image=600_000), b=_facts("mae"))
    p = _point(executive_summary(small), 2)
    assert p.verdict == "supports" and p.numbers["params_ratio"] == 0.5 and "costs more" not in p.sentence
    assert "0.50x" in p.sentence


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
    assert s.points[2].numbers["same_architecture"] == "yes" and s.points[2].verdict == "supports"
    assert s.points[0].numbers["training_params_ratio"] == pytest.approx(2.0)


# --------------------------------------------------------------------------------------------------------------
# Languages


@pytest.mark.parametrize("flat", [(0.5, 1.0, 3.0), (2.0, 1.5, 0.5), (0.5, 1.0, None)])
def test_japanese_has_the_same_numbers(flat) -> None:
    facts = _seeded(rc=flat[0], mae=flat[1], sup=flat[2], kw={"rcmae": {"epoch_times": (2.4, 2.35, 2.45)}})
    en, ja = executive_summary(facts, "en"), executive_summary(facts, "ja")
    assert ja.lang == "ja" and en.lang == "en"
    for pe, pj in zip(en.points, ja.points, strict=True):
        assert _same_numbers(pe.numbers, pj.numbers) and pe.verdict == pj.verdict
        assert JAPANESE.search(pj.sentence) and JAPANESE.search(pj.title)
        assert not JAPANESE.search(pe.sentence)
        # every number written in English is written the same way in Japanese
        assert set(NUMBER.findall(pe.sentence)) <= set(NUMBER.findall(pj.sentence)), pe.sentence
    assert JAPANESE.search(ja.takeaway)
    assert set(NUMBER.findall(en.takeaway)) <= set(NUMBER.findall(ja.takeaway))
    # without a supervised ViT, MAE vs Sup-ViT is not measured and the stability point cannot hold yet
    assert en.points[1].verdict == ({0.5: "supports", 2.0: "contradicts"}[flat[0]] if flat[2] else "undetermined")


def test_japanese_wording_follows_the_numbers() -> None:
    more = _set(a=_facts("rcmae", (2.4, 2.35, 2.45)), b=_facts("mae"))
    p = _point(executive_summary(more, "ja"), 0)
    assert p.verdict == "supports" and "多く時間がかかります" in p.sentence
    less = _set(a=_facts("rcmae", (1.5, 1.55, 1.45)), b=_facts("mae"))
    p = _point(executive_summary(less, "ja"), 0)
    assert p.verdict == "contradicts" and "短い時間" in p.sentence
    same = _set(a=_facts("rcmae"), b=_facts("mae"))
    assert "5%以内" in _point(executive_summary(same, "ja"), 0).sentence
    s = executive_summary(_seeded(rc=0.5, sup=0.3), "ja")
    assert "4シードで反証。" in s.points[1].sentence and "論文の安定性の主張と逆" in s.takeaway
    s = executive_summary(_seeded(rc=0.5), "ja")
    assert "4シードで支持。" in s.points[1].sentence and "RC-MAEはMAEより" in s.takeaway


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
    # MAE's raw Hessian numbers are 2x the supervised ViT's, but its loss is 10x larger: relative to the centre it
    # is 5x flatter. The basin width (no loss unit) decides.
    facts = _seeded(rc=None, mae=2.0, sup=1.0, kw={"mae": {"centre_loss": 10.0, "basin_width": 1.0}})
    p = _point(executive_summary(facts), 1)
    assert p.numbers["mae_vs_sup_top_eigenvalue"] == pytest.approx(0.2, rel=0.06)
    assert p.numbers["mae_vs_sup_top_eigenvalue_reading"] == "supports"
    assert p.numbers["mae_vs_sup_verdict"] == "supports" and p.numbers["mae_vs_sup_primary"] == "basin_width"
    assert "top Hessian eigenvalue / L(centre)" in p.sentence
    # Without a centre loss these numbers cannot be put on one scale: they count as not measured, the basin decides.
    facts = {k: replace(f, centre_loss=None) if f.kind == "mae" else f for k, f in facts.items()}
    p = _point(executive_summary(facts), 1)
    assert "mae_vs_sup_top_eigenvalue" not in p.numbers and p.numbers["mae_vs_sup_verdict"] == "supports"
    assert "Not measured yet: top Hessian eigenvalue / L(centre)" in p.sentence


# --------------------------------------------------------------------------------------------------------------
# Same function (core.report.comparison)


def test_rcmae_is_compared_with_mae_on_its_mae_term_and_the_full_objective_is_a_secondary_line():
    full = _seeded(rc=2.0)  # its full objective: sharper (the consistency term adds curvature)
    facts = {k: f for k, f in full.items() if f.function != "rcmae_mae"}
    for f in [f for f in facts.values() if f.kind == "rcmae"]:
        term = replace(
            f, label=f"{f.label} (MAE term)", function="rcmae_mae", **_flat_fields(0.5 * JITTER["rcmae"][f.seed])
        )
        facts[term.label] = term
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "supports"  # decided on the MAE term
    assert p.numbers["full_rcmae_vs_mae_verdict"] == "contradicts"  # shown, not counted
    assert p.verdict == "supports"
    assert "masked-patch MSE" in p.sentence and "student" in p.sentence
    assert "Secondary line, not counted" in p.sentence and "positive semi-definite" in p.sentence
    # The verdict follows the MAE-term numbers: make them sharper and it turns.
    facts = {
        k: replace(f, **_flat_fields(2.0 * JITTER["rcmae"][f.seed])) if f.function == "rcmae_mae" else f
        for k, f in facts.items()
    }
    p = _point(executive_summary(facts), 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "contradicts" and p.verdict == "contradicts"
    ja = _point(executive_summary(facts, "ja"), 1)
    assert "判定には数えない" in ja.sentence and "半正定値" in ja.sentence


def test_without_the_mae_term_rcmae_vs_mae_is_not_measured_and_costs_count_once():
    full_only = {k: f for k, f in _seeded(rc=0.5).items() if f.function != "rcmae_mae"}
    s = executive_summary(full_only)
    p = _point(s, 1)
    assert p.numbers["rcmae_vs_mae_verdict"] == "not measured"  # never ranked on two different functions
    assert p.numbers["full_rcmae_vs_mae_verdict"] == "supports"
    assert p.numbers["mae_vs_sup_verdict"] == "supports"
    # a counted comparison not measured: the point cannot hold yet, however the other one reads
    assert p.verdict == "undetermined" and "steadier" not in s.takeaway
    # The MAE-term facts are the same model: its epochs are counted once.
    both = _set(a=_facts("rcmae", (2.4, 2.35, 2.45)), b=_facts("mae"))
    assert len(both) == 3 and executive_summary(both).points[0].numbers["n_epoch_pairs"] == 3


def test_other_values_in_the_facts_are_ignored_by_the_summary():
    facts = _set(a=_facts("rcmae"), b=_facts("mae")) | {"generalization": {"val_acc": {}}}
    assert executive_summary(facts).points[2].verdict == "supports"
