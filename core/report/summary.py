"""The executive summary: the seed's three points, measured on the models at hand, in English or Japanese.

The seed tells a manager three things about RC-MAE: (1) training costs a little more (the EMA teacher), (2) the
model is more stable (a flatter minimum; the paper also finds MAE flatter than a supervised ViT), (3) inference
costs nothing extra (the teacher's encoder is deployed, the same architecture as MAE's). `executive_summary`
checks each point against the numbers measured here and writes the sentence from them: "supports" when the
paired interval excludes no difference on the claimed side, "contradicts" when it does on the other (and the
sentence says so plainly), "no meaningful difference" when it lies within the declared margin, and "undetermined"
otherwise or when not measured yet (and the sentence says which, and how many seeds would decide it).

Decision rules: the one rule of `core.report.verdicts` (paired by seed; docs/FINDINGS.md uses the same):

- Time per epoch: RC-MAE's epochs against MAE's of the same seed, paired epoch by epoch (log-ratios), with the
  margin MARGINS["time"]; "supports" (costs more) when the interval lies above 1, "no meaningful difference" when the
  90% interval lies within the margin.
- Flatness (`stability_comparisons`): each counted comparison of `core.report.comparison` is decided by its declared
  primary number (`PRIMARY`: RC-MAE vs MAE on one function by the top Hessian eigenvalue, MAE vs Sup-ViT by the basin
  width), models of the two kinds paired by seed (in label order when no seed is recorded); the other numbers are
  shown with their intervals. The stability point holds when every counted comparison supports after Holm.
- Inference: parameters and FLOPs of the deployed encoder are counted exactly and decide; latency is shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import LandscapeError
from core.report.comparison import OWN_FUNCTION, Measured, comparisons, moving_text, reason_text
from core.report.summary_text import KIND as _KIND
from core.report.summary_text import METRIC as _METRIC
from core.report.summary_text import T
from core.report.verdicts import (
    CONTRADICTS,
    MARGINS,
    NO_DIFFERENCE,
    POINT_READING,
    READINGS,
    SUPPORTS,
    UNDETERMINED,
    Estimate,
    claim_verdict,
    format_estimate,
    paired,
    reading_sentence,
)

LANGS = ("en", "ja")
VERDICTS = READINGS  # a point's verdict: supports / contradicts / no meaningful difference / undetermined

# The primary number of each counted comparison, declared before measuring; the others are shown, never counted.
PRIMARY = {("rcmae", "mae"): "top_eigenvalue", ("mae", "sup"): "basin_width"}
PRIMARY_REASON = (
    "RC-MAE vs MAE: the top Hessian eigenvalue, the seed's 'flatter minimum' and the Overview's headline, measured "
    "for every model at the default settings; MAE vs Sup-ViT: the basin width, as claim 1 of docs/FINDINGS.md (the "
    "paper's pictures)."
)


@dataclass(frozen=True)
class ModelFacts:
    """What is known about one model, as plain numbers.

    Attributes:
        label: display name, e.g. "RC-MAE (seed 0)".
        kind: "mae" | "rcmae" | "sup".
        seed: its training seed (the unit of evidence: models of one seed are compared with each other); None
            when not recorded.
        params_deployed: parameters of what is deployed (RC-MAE: the teacher encoder only, no decoder).
        params_training: parameters held during training (RC-MAE: student + teacher, decoders included).
        flops_per_image: FLOPs of the deployed encoder on a full image.
        latency_ms: measured per-image latency of the deployed encoder, (mean, std); NaN when not measured.
        epoch_times: wall seconds per training epoch (from the checkpoint history).
        probe_acc: linear-probe (or supervised) validation accuracy.
        top_eigenvalue: Hessian lambda_max of its own training loss (smaller = flatter).
        trace: Hessian trace (smaller = flatter).
        sharpness: average-case loss increase at a radius (smaller = flatter).
        robustness: {"sigmas": [...], "acc_mean": [...], "acc_std": [...]} under random weight noise.
        basin_width: from the landscape numbers (larger = flatter).
    """

    label: str
    kind: str
    params_deployed: int
    params_training: int
    flops_per_image: int
    latency_ms: tuple[float, float]
    epoch_times: tuple[float, ...]
    probe_acc: float | None
    top_eigenvalue: float | None = None
    trace: float | None = None
    sharpness: float | None = None
    robustness: dict | None = None
    basin_width: float | None = None
    centre_loss: float | None = None  # its own training loss at the trained weights (scales cross-loss comparisons)
    # which function the flatness numbers are of (`core.report.comparison` keys); "": its own objective
    function: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class Point:
    """One of the three points.

    Attributes:
        title: a short heading.
        sentence: the plain-language finding, written from the numbers.
        numbers: the numbers behind it (the same in every language).
        verdict: one of `VERDICTS` (of the seed's claim).
    """

    title: str
    sentence: str
    numbers: dict[str, float | str]
    verdict: str


@dataclass(frozen=True)
class Summary:
    """The three points (training cost, stability, inference cost), a one-line takeaway, and the language."""

    points: tuple[Point, ...]
    takeaway: str
    lang: str


# --------------------------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------------------------


def measure_inference(
    encoder: torch.nn.Module,
    example: torch.Tensor,
    forward: Callable | None = None,
    repeats: int = 20,
    warmup: int = 3,
) -> tuple[float, float]:
    """Per-image latency of one batched forward, in milliseconds: (mean, std over repeats).

    Runs in eval mode under torch.no_grad (the training flag is restored afterwards), times each repeat with
    time.perf_counter and divides by the batch size; on CUDA the device is synchronized around each repeat.

    Args:
        encoder: the deployed encoder.
        example: a batch of inputs, (B, ...).
        forward: `forward(encoder, x)`; defaults to `encoder(x)`.
        repeats: timed repeats (the std uses ddof=1; 0.0 with one repeat).
        warmup: untimed repeats first (allocator, caches).

    Returns:
        (mean, std) in ms per image.
    """
    if repeats < 1:
        raise LandscapeError("repeats must be at least 1")
    fwd = forward or (lambda m, x: m(x))
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            for _ in range(max(warmup, 0)):
                fwd(encoder, example)
            times = [_ms_per_image(fwd, encoder, example) for _ in range(repeats)]
    finally:
        encoder.train(was_training)
    arr = np.asarray(times)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _ms_per_image(fwd: Callable, module: torch.nn.Module, example: torch.Tensor) -> float:
    """One timed `fwd(module, example)` in milliseconds per image (on CUDA, synchronized before and after)."""
    if example.is_cuda:
        torch.cuda.synchronize(example.device)
    t0 = time.perf_counter()
    fwd(module, example)
    if example.is_cuda:
        torch.cuda.synchronize(example.device)
    return (time.perf_counter() - t0) * 1000.0 / (int(example.shape[0]) if example.dim() else 1)


def measure_paired_latency(
    a: torch.nn.Module,
    b: torch.nn.Module,
    example: torch.Tensor,
    forward_a: Callable | None = None,
    forward_b: Callable | None = None,
    rounds: int = 16,
    warmup: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image latency of two encoders timed interleaved, in milliseconds: one value per round for each.

    Each round times A and B back to back, alternating which goes first (ABBA...), so that a change in the machine's
    load falls on both sides of a pair; `core.report.verdicts.paired` then compares them round by round.

    Args:
        a: the first encoder.
        b: the second encoder.
        example: a batch of inputs, (B, ...), the same for both.
        forward_a: `forward(encoder, x)` for A; defaults to `encoder(x)`.
        forward_b: the same for B.
        rounds: timed rounds (pairs).
        warmup: untimed forwards of each first.

    Returns:
        (A's ms per image, B's ms per image), each of length `rounds`.
    """
    if rounds < 2:
        raise LandscapeError("rounds must be at least 2 for an interval")
    runs = [(a, forward_a or (lambda m, x: m(x))), (b, forward_b or (lambda m, x: m(x)))]
    modes = [m.training for m, _ in runs]
    out = np.zeros((2, rounds))
    try:
        for m, _ in runs:
            m.eval()
        with torch.no_grad():
            for m, fwd in runs:
                for _ in range(max(warmup, 0)):
                    fwd(m, example)
            for r in range(rounds):
                for i in (0, 1) if r % 2 == 0 else (1, 0):
                    m, fwd = runs[i]
                    out[i, r] = _ms_per_image(fwd, m, example)
    finally:
        for (m, _), mode in zip(runs, modes, strict=True):
            m.train(mode)
    return out[0], out[1]


# --------------------------------------------------------------------------------------------------------------
# Number formatting (shared by both languages, so the same numbers appear in each)
# --------------------------------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    """Three significant digits; thousands without exponent."""
    if not math.isfinite(x):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def fmt_pct(x: float) -> str:
    """A percentage magnitude with one decimal, e.g. 12.3%."""
    return f"{abs(x):.1f}%"


def fmt_count(n: float) -> str:
    """A count with an SI prefix: 5.8M, 212k, 1.23G."""
    for div, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{p}"
    return f"{n:.3g}"


def fmt_ratio(x: float, lang: str = "en") -> str:
    """A ratio with two decimals: 1.12x (en), 1.12倍 (ja)."""
    return f"{x:.2f}" + ("倍" if lang == "ja" else "x")


# (key, smaller value is flatter)
_FLATNESS = (
    ("top_eigenvalue", True),
    ("trace", True),
    ("sharpness", True),
    ("basin_width", False),
    ("acc_drop", True),
)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# --------------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------------


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(float(x))


def seed_pairs(ga: Sequence[Any], gb: Sequence[Any]) -> list[tuple[Any, Any, int]]:
    """(a, b, seed) for the seeds both sides have; models without a recorded seed are paired in label order."""
    seeded = all(getattr(f, "seed", None) is not None for f in (*ga, *gb))
    if seeded:
        sa, sb = {f.seed: f for f in ga}, {f.seed: f for f in gb}
        return [(sa[k], sb[k], int(k)) for k in sorted(set(sa) & set(sb))]
    a, b = sorted(ga, key=lambda f: f.label), sorted(gb, key=lambda f: f.label)
    return [(x, y, i) for i, (x, y) in enumerate(zip(a, b, strict=False))]


def _acc_scale(curves: Sequence[dict]) -> float:
    """100 when accuracies are fractions (shown as percentage points), else 1."""
    top = max((float(a) for c in curves for a in c["acc_mean"] if _finite(a)), default=0.0)
    return 100.0 if top <= 1.0 else 1.0


def _acc_drops(models: Sequence[ModelFacts], others: Sequence[ModelFacts]) -> tuple[float, list, list] | None:
    """Accuracy drop from the smallest sigma to the largest sigma common to every model, per side.

    Returns:
        (sigma, [(drop, draw std)] for `models`, the same for `others`), or None when no common sigma > 0.
    """
    every = list(models) + list(others)
    curves = [m.robustness for m in every]
    if not every or any(c is None or c.get("acc_mean") is None or not c.get("sigmas") for c in curves):
        return None
    keyed = [{round(float(s), 12): i for i, s in enumerate(c["sigmas"])} for c in curves]
    common = set(keyed[0]).intersection(*keyed[1:])
    common = {s for s in common if s > 0}
    if not common:
        return None
    sigma = max(common)
    scale = _acc_scale(curves)

    def drop(c: dict, key: dict) -> tuple[float, float | None]:
        acc = [float(a) if _finite(a) else math.nan for a in c["acc_mean"]]
        base = int(np.argmin([float(s) for s in c["sigmas"]]))
        i = key[sigma]
        std = c.get("acc_std")
        s = float(std[i]) * scale if std is not None and _finite(std[i]) else None
        return (acc[base] - acc[i]) * scale, s

    n = len(models)
    drops = [drop(c, k) for c, k in zip(curves, keyed, strict=True)]
    if any(not math.isfinite(d) for d, _ in drops):
        return None
    return sigma, drops[:n], drops[n:]


# --------------------------------------------------------------------------------------------------------------
# The three points
# --------------------------------------------------------------------------------------------------------------


def _training_point(g: dict[str, list[ModelFacts]], lang: str) -> tuple[Point, dict]:
    t = T[lang]
    missing = [
        k for k in ("rcmae", "mae") if not any(_finite(x) and x > 0 for m in g.get(k, []) for x in m.epoch_times)
    ]
    if missing:
        who = " / ".join(_KIND[lang][k] for k in missing)
        return Point(t["t_cost"], t["cost_missing"].format(who=who), {}, UNDETERMINED), {"state": "missing"}
    # Epoch i of RC-MAE seed k against epoch i of MAE seed k: the same data order, the same machine period.
    xa, xb, ids = [], [], []
    for r, m, seed in seed_pairs(g["rcmae"], g["mae"]):
        for i, (x, y) in enumerate(zip(r.epoch_times, m.epoch_times, strict=False)):
            if _finite(x) and _finite(y) and x > 0 and y > 0:
                xa.append(float(x))
                xb.append(float(y))
                ids.append(seed * 100_000 + i)
    e = paired("time per epoch", xa, xb, "higher", MARGINS["time"], ids)
    mr, mm = (float(np.mean(v)) if v else math.nan for v in (xa, xb))
    extra = (e.shown - 1) * 100 if e.n else math.nan
    one = "1組: 区間なし" if lang == "ja" else "one epoch pair: no interval"
    est = format_estimate(e, ".3g", "", lang, count="") if e.n >= 2 else f"×{e.shown:.3g} ({one})"
    detail = t["cost_detail"].format(a=fmt(mr), b=fmt(mm), est=est, n=e.n)
    verdict = e.reading
    key = {SUPPORTS: "cost_more", CONTRADICTS: "cost_less", NO_DIFFERENCE: "cost_same"}.get(verdict, "cost_open")
    sentence = t[key].format(x=fmt_pct(abs(extra)), detail=detail)
    numbers: dict[str, float | str] = {
        "rcmae_epoch_s": mr,
        "mae_epoch_s": mm,
        "epoch_time_ratio": e.shown,
        "epoch_time_ratio_lo": e.shown_lo,
        "epoch_time_ratio_hi": e.shown_hi,
        "extra_pct": extra,
        "n_epoch_pairs": float(e.n),
        "epoch_time_seeds_needed": float(e.seeds_needed) if e.seeds_needed else math.nan,
    }
    pr, pm = g["rcmae"][0].params_training, g["mae"][0].params_training
    if pr and pm:
        numbers |= {"rcmae_params_training": float(pr), "mae_params_training": float(pm)}
        numbers["training_params_ratio"] = pr / pm
        sentence += t["cost_params"].format(r=fmt_ratio(pr / pm, lang), a=fmt_count(pr), b=fmt_count(pm))
    return Point(t["t_cost"], sentence, numbers, verdict), {"state": verdict, "x": fmt_pct(abs(extra))}


def _compare_pair(
    a: str,
    b: str,
    ga: list[ModelFacts],
    gb: list[ModelFacts],
    lang: str,
    numbers: dict,
    relative: bool,
    tag: str = "",
) -> tuple[str, str | None, Estimate | None]:
    """The sentence, reading (None when not measured) and primary estimate for "a is flatter than b".

    `ga` / `gb` hold the models of each side measured on the function `core.report.comparison` picks, paired by seed
    (`seed_pairs`); every flatness number gets a paired estimate (`core.report.verdicts.paired`: log-ratios, the
    accuracy drop as a difference), and the comparison's primary (`PRIMARY`) decides. `relative` divides loss-unit
    numbers by each model's centre loss (two different functions); `tag` prefixes the number keys.
    """
    t, kn = T[lang], _KIND[lang]
    A, B = kn[a], kn[b]
    if not ga or not gb:
        gone = b if ga else a
        return t["pair_nomodel"].format(A=A, B=B, C=kn[gone].removeprefix("the ")), None, None
    pairs = seed_pairs(ga, gb)
    seeds = [k for _, _, k in pairs]
    vs = f"{tag}{a}_vs_{b}"
    estimates: dict[str, Estimate] = {}
    missing = []
    for key, smaller_flatter in _FLATNESS:
        name = _METRIC[lang][key]
        if key == "acc_drop":
            found = _acc_drops([p[0] for p in pairs], [p[1] for p in pairs])
            if found is None:
                missing.append(name)
                continue
            sigma, da, db = found
            name += t["at_sigma"].format(s=fmt(sigma))
            numbers[f"{vs}_sigma"] = sigma
            xa, xb, margin = [d / 100 for d, _ in da], [d / 100 for d, _ in db], "accuracy"  # points -> fractions
        else:
            xa, xb = [_value(p[0], key, relative) for p in pairs], [_value(p[1], key, relative) for p in pairs]
            if relative and key in _LOSS_SCALED:
                name += " / L(中心)" if lang == "ja" else " / L(centre)"
            if not any(map(math.isfinite, xa)) or not any(map(math.isfinite, xb)):
                missing.append(name)
                continue
            margin = "ratio"
        e = paired(name, xa, xb, "lower" if smaller_flatter else "higher", MARGINS[margin], seeds)
        estimates[key] = e
        numbers[f"{vs}_{key}"] = e.shown
        numbers[f"{vs}_{key}_reading"] = e.reading
    not_yet = t["not_yet"].format(names=t["list_sep"].join(missing)) if missing else ""
    primary = PRIMARY.get((a, b), "top_eigenvalue")
    e = estimates.get(primary)
    if e is None:
        numbers[f"{vs}_verdict"] = "not measured"
        return t["pair_missing"].format(A=A, B=B, name=_METRIC[lang][primary]) + not_yet, None, None
    numbers |= {
        f"{vs}_verdict": e.reading,
        f"{vs}_primary": primary,
        f"{vs}_estimate": e.shown,
        f"{vs}_lo": e.shown_lo,
        f"{vs}_hi": e.shown_hi,
        f"{vs}_n": float(e.n),
        f"{vs}_seeds_needed": float(e.seeds_needed) if e.seeds_needed else math.nan,
    }
    said = reading_sentence(e.reading, e.n, e.seeds_needed, e.beyond, e.margin, lang)
    s = t["pair_rule"].format(A=A, B=B, name=e.name, est=format_estimate(e, ".3g", "", lang), said=said)
    others = [
        t["pair_other"].format(name=x.name, est=format_estimate(x, ".3g", "", lang), reading=t["r"][x.reading])
        for k, x in estimates.items()
        if k != primary
    ]
    if others:
        s += t["pair_others"].format(others=t["sep"].join(others))
    return s + not_yet + (t["caveat"] if relative and not tag else ""), e.reading, e


# Numbers in loss units: across two different losses (MAE's pixel MSE vs cross-entropy) they are compared relative to
# each model's loss at the centre, as docs/FINDINGS.md does; basin width and accuracy drops need no scaling.
_LOSS_SCALED = ("top_eigenvalue", "trace", "sharpness")


def _value(m: Any, key: str, across_losses: bool) -> float:
    """One flatness number of one model (NaN when unknown: the rule drops that seed's pair)."""
    v = getattr(m, key)
    if not _finite(v):
        return math.nan
    if across_losses and key in _LOSS_SCALED:
        if not (_finite(m.centre_loss) and m.centre_loss > 0):
            return math.nan  # cannot be put on a common scale
        return float(v) / float(m.centre_loss)
    return float(v)


def stability_comparisons(
    groups: dict[str, list[ModelFacts]], fn: dict[str, list[ModelFacts]], lang: str = "en"
) -> tuple[list[tuple[Any, str, str | None]], dict[str, float | str], list[Estimate]]:
    """Every comparison of `core.report.comparison` (counted ones first, then the secondary lines), each on its
    function.

    Args:
        groups: kind -> models loaded (as `group_facts` returns).
        fn: function key -> models measured on it; any objects with the flatness attributes of `ModelFacts` do.
        lang: "en" or "ja".

    Returns:
        ([(comparison, text, reading or None when not measured)], numbers, the counted comparisons' primary
        estimates).
    """

    t, kn = T[lang], _KIND[lang]
    numbers: dict[str, float | str] = {}
    out: list[tuple[Any, str, str | None]] = []
    primaries: list[Estimate] = []
    for c in comparisons(counted=True):
        lacking = [k for k, f in ((c.a, c.fa), (c.b, c.fb)) if groups.get(k) and not fn.get(f)]
        if lacking:  # the model is loaded but not measured on the compared function: never ranked on another one
            numbers[f"{c.a}_vs_{c.b}_verdict"] = "not measured"
            out.append((c, t["pair_nofunction"].format(A=kn[c.a], B=kn[c.b], C=kn[lacking[0]]), None))
            continue
        s, v, e = _compare_pair(c.a, c.b, fn.get(c.fa, []), fn.get(c.fb, []), lang, numbers, c.relative)
        if c.same_function:
            s = t["cmp_same"].format(moving=moving_text(c.fa, lang)) + s
        out.append((c, s, v))
        if e is not None:
            primaries.append(e)
    for c in comparisons(counted=False):
        if not fn.get(c.fa) or not fn.get(c.fb):
            out.append((c, t["cmp_full_missing"].strip(), None))
            continue
        s, v, _ = _compare_pair(c.a, c.b, fn[c.fa], fn[c.fb], lang, numbers, c.relative, tag="full_")
        out.append((c, t["cmp_full"].format(pair=s, reason=reason_text(c, lang)).strip(), v))
    return out, numbers, primaries


def compare_measured(items: list[Measured], lang: str = "en") -> list[tuple]:
    """Every comparison (counted first, then the secondary lines) over models measured on their functions:
    [(Comparison, text, reading or None)] from `stability_comparisons`, the one rule of `core.report.verdicts`."""
    groups: dict[str, list] = {}
    fn: dict[str, list] = {}
    for m in items:
        fn.setdefault(m.function, []).append(m)
        if m.function == OWN_FUNCTION.get(m.kind):
            groups.setdefault(m.kind, []).append(m)
    found, _, _ = stability_comparisons(groups, fn, lang)
    return found


def _stability_point(
    groups: dict[str, list[ModelFacts]], fn: dict[str, list[ModelFacts]], lang: str
) -> tuple[Point, dict]:
    """Flatness: the counted comparisons of `core.report.comparison`, each on its function and decided by its primary,
    Holm over them (`claim_verdict`), then the secondary lines."""
    t, kn = T[lang], _KIND[lang]
    found, numbers, primaries = stability_comparisons(groups, fn, lang)
    sentence = ("" if lang == "ja" else " ").join(text for _, text, _ in found)
    counted = [(c, v) for c, _, v in found if c.counted and v is not None]
    if not primaries:
        state, verdict = "missing", UNDETERMINED
    else:
        cv = claim_verdict(primaries)
        state = verdict = POINT_READING[cv.verdict]
        if len(primaries) < sum(c.counted for c, _, _ in found) and verdict != CONTRADICTS:
            state = verdict = UNDETERMINED  # a counted comparison is not measured: the conjunction cannot hold yet
        numbers |= {"stability_n": float(cv.n), "stability_seeds_needed": float(cv.seeds_needed or math.nan)}
    first, later, sep = t["k_stab_who"]
    who = sep.join((later if i else first).format(A=kn[c.a], B=kn[c.b]) for i, (c, _) in enumerate(counted))
    return Point(t["t_stab"], sentence, numbers, verdict), {"state": state, "who": who}


def _inference_point(g: dict[str, list[ModelFacts]], lang: str) -> tuple[Point, dict]:
    """Parameters and FLOPs of the deployed encoders are counted exactly and decide. Latency is not part of it: two
    models timed one after the other measure the machine's load as much as the models, so the briefing shows latency
    only as an interleaved, paired measurement (`measure_paired_latency`)."""
    t = T[lang]
    missing = [k for k in ("rcmae", "mae") if not g.get(k)]
    if missing:
        who = " / ".join(_KIND[lang][k] for k in missing)
        return Point(t["t_inf"], t["inf_missing"].format(who=who), {}, UNDETERMINED), {"state": "missing"}
    r, m = g["rcmae"][0], g["mae"][0]
    same = r.params_deployed == m.params_deployed and r.flops_per_image == m.flops_per_image
    numbers: dict[str, float | str] = {
        "rcmae_params_deployed": float(r.params_deployed),
        "mae_params_deployed": float(m.params_deployed),
        "params_ratio": r.params_deployed / m.params_deployed if m.params_deployed else math.nan,
        "rcmae_flops_per_image": float(r.flops_per_image),
        "mae_flops_per_image": float(m.flops_per_image),
        "flops_ratio": r.flops_per_image / m.flops_per_image if m.flops_per_image else math.nan,
        "same_architecture": "yes" if same else "no",
    }
    if same:
        sentence = t["inf_same"].format(p=fmt_count(r.params_deployed), f=fmt_count(r.flops_per_image))
        verdict = SUPPORTS
    else:
        sentence = t["inf_diff"].format(
            pa=fmt_count(r.params_deployed),
            fa=fmt_count(r.flops_per_image),
            pb=fmt_count(m.params_deployed),
            fb=fmt_count(m.flops_per_image),
            r=fmt_ratio(numbers["params_ratio"], lang),
        )
        larger = r.params_deployed > m.params_deployed or r.flops_per_image > m.flops_per_image
        verdict = CONTRADICTS if larger else SUPPORTS
        sentence += t["inf_more"] if larger else t["inf_less"]
    return Point(t["t_inf"], sentence, numbers, verdict), {"state": verdict}


def _takeaway(cost: dict, stab: dict, inf: dict, lang: str) -> str:
    t = T[lang]
    cost_s = t["k_cost"][cost["state"]].format(x=cost.get("x", ""))
    stab_s = t["k_stab"][stab["state"]].format(who=stab.get("who", ""))
    inf_s = t["k_inf"][inf["state"]]
    if stab["state"] == "supports" and inf["state"] != "contradicts":
        rec = t["k_rec"]["good"]
    elif stab["state"] == "contradicts":
        rec = t["k_rec"]["bad"]
    else:
        rec = t["k_rec"]["wait"]
    return t["k_join"].format(cost=_cap(cost_s), stab=stab_s, inf=inf_s, rec=rec)


def group_facts(facts: dict) -> tuple[dict[str, list[ModelFacts]], dict[str, list[ModelFacts]]]:
    """(kind -> models, function key -> models) from label -> facts; other values (e.g. "generalization") are left
    out. A model measured on its own objective counts once per kind; a kind measured only on another function (the
    same model's extra numbers) still counts for training and inference cost."""

    every = [f for f in facts.values() if isinstance(f, ModelFacts)]
    by_function: dict[str, list[ModelFacts]] = {}
    for f in every:
        by_function.setdefault(f.function or OWN_FUNCTION.get(f.kind, f.kind), []).append(f)
    groups: dict[str, list[ModelFacts]] = {}
    for f in every:
        if not f.function or f.function == OWN_FUNCTION.get(f.kind):
            groups.setdefault(f.kind, []).append(f)
    missing = {f.kind for f in every} - set(groups)
    for f in every:
        if f.kind in missing:
            groups.setdefault(f.kind, []).append(f)
    return groups, by_function


def executive_summary(facts: dict[str, ModelFacts], lang: str = "en") -> Summary:
    """The seed's three points (training cost, stability, inference cost) from the measured numbers.

    Models are grouped by kind and compared seed by seed with the one rule of `core.report.verdicts`; see the module
    docstring.

    Args:
        facts: label -> facts, for any of the kinds "mae", "rcmae", "sup".
        lang: "en" or "ja".

    Returns:
        A `Summary` whose points come in the order training cost, stability, inference cost.
    """
    if lang not in LANGS:
        raise LandscapeError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    groups, by_function = group_facts(facts)
    p1, s1 = _training_point(groups, lang)
    p2, s2 = _stability_point(groups, by_function, lang)
    p3, s3 = _inference_point(groups, lang)
    return Summary(points=(p1, p2, p3), takeaway=_takeaway(s1, s2, s3, lang), lang=lang)
