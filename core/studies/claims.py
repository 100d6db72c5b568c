"""From measurements to claims for `python -m core reproduce`: the flatness numbers of each measured objective, the
comparison tables of the paper's claims, the flatness-vs-accuracy follow-up, and the report's setup and caveats.

Scales: models compared on different functions (MAE vs Sup-ViT on their own objectives) are compared by relative
numbers (a threshold that is a fraction of each surface's centre loss; increases, curvatures and Hessian numbers divided
by it); models compared on one and the same function (RC-MAE vs MAE, every probe loss) directly, with one absolute
threshold for both. The verdict rule and the markdown are `core.report.findings`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.geometry import surface_metrics
from core.measure import convexity_table
from core.models import TrainConfig, code_version
from core.report import (
    Claim,
    CorrelationRow,
    Findings,
    Row,
    Table,
    centre_index,
    compared_function,
    convergence_target,
    epochs_to_reach,
    format_mean_std,
    rule_text,
)
from core.studies.measuring import KINDS, LABEL, Measured, ReproduceSpec, RunResults


def landscape_numbers(
    m: Measured, spec: ReproduceSpec, *, relative: bool, threshold: float | None = None
) -> dict[str, float]:
    """The flatness numbers of one measured objective.

    Args:
        m: the landscape and Hessian numbers.
        spec: radii and the relative threshold.
        relative: divide increases, curvatures and Hessian numbers by the centre loss, and use a threshold of
            `spec.rel_threshold` x the centre loss (for comparisons across different loss functions).
        threshold: the absolute basin / flat-area threshold when not `relative` (one value for every model compared).
    """
    sm = surface_metrics(
        m.xs,
        m.ys,
        m.loss,
        radii=spec.radii,
        threshold=None if relative else threshold,
        rel_threshold=spec.rel_threshold,
    )
    c = sm.centre_loss
    k = 1.0 / c if relative else 1.0
    kh = 1.0 / m.hessian["centre_loss"] if relative else 1.0
    out = {
        "centre_loss": c,
        "basin_width": sm.basin_width,
        "basin_at_edge": float(any(sm.basin_at_edge)),
        "flat_fraction": sm.flat_fraction,
        "curvature_max": sm.curvature_max * k,
        "curvature_min": sm.curvature_min * k,
        "convex_fraction": sm.convex_fraction,
        "lambda_max": m.hessian["lambda_max"] * kh,
        "trace": m.hessian["trace"] * kh,
        "lambda_max_raw": m.hessian["lambda_max"],
        "trace_raw": m.hessian["trace"],
        "lambda_max_rel": m.hessian["lambda_max"] / m.hessian["centre_loss"],
        "trace_rel": m.hessian["trace"] / m.hessian["centre_loss"],
    }
    for r, v in zip(sm.radii, sm.increase_at_radius, strict=True):
        out[f"increase_r{r:g}"] = v * k
    if not relative:
        own = surface_metrics(m.xs, m.ys, m.loss, radii=(), rel_threshold=spec.rel_threshold)
        out["basin_width_own"] = own.basin_width
    return out


@dataclass(frozen=True)
class NumberDef:
    key: str
    name: str
    flatter: str  # "higher" / "lower": the flatter side; "" for numbers shown without a reading
    margin: str = "ratio"  # core.report.verdicts.MARGINS key: log-ratios for positive scale-free numbers
    fmt: str = ".3g"
    variant: bool = False  # another form of a number above (raw, divided by L(centre), own threshold): not correlated


def number_defs(spec: ReproduceSpec, relative: bool, threshold_text: str = "") -> tuple[NumberDef, ...]:
    """The rows of a comparison table, in order (`landscape_numbers` keys)."""
    per = " / L(centre)" if relative else ""
    thr = f"{spec.rel_threshold:.0%} of L(centre)" if relative else threshold_text
    defs = [
        NumberDef("basin_width", f"basin width (increase < {thr})", "higher"),
        NumberDef("flat_fraction", f"flat-area fraction (increase < {thr})", "higher", "fraction"),
        NumberDef("curvature_max", f"centre curvature, sharpest axis{per}", "lower"),
        NumberDef("curvature_min", f"centre curvature, flattest axis{per}", ""),
        NumberDef("convex_fraction", "convex fraction of the slice", "higher", "fraction"),
    ]
    defs += [NumberDef(f"increase_r{r:g}", f"loss increase at radius {r:g}{per}", "lower") for r in spec.radii]
    defs += [
        NumberDef("lambda_max", f"Hessian top eigenvalue{per}", "lower"),
        NumberDef("trace", f"Hessian trace{per}", "lower"),
    ]
    if relative:
        defs += [
            NumberDef("lambda_max_raw", "Hessian top eigenvalue (raw)", "lower", variant=True),
            NumberDef("trace_raw", "Hessian trace (raw)", "lower", variant=True),
        ]
    else:
        defs += [
            NumberDef(
                "basin_width_own",
                f"basin width (increase < {spec.rel_threshold:.0%} of each model's own L(centre))",
                "higher",
                variant=True,
            ),
            NumberDef("lambda_max_rel", "Hessian top eigenvalue / L(centre)", "lower", variant=True),
            NumberDef("trace_rel", "Hessian trace / L(centre)", "lower", variant=True),
        ]
    defs.append(NumberDef("centre_loss", "loss at the centre", "", fmt=".4g"))
    return tuple(defs)


def common_threshold(r: RunResults, keys: Sequence[str]) -> float:
    """One absolute threshold for models compared on the same loss: rel_threshold x their mean centre loss."""
    centres = [float(surface_centre(r.measured[k, s])) for k in keys for s in r.seeds]
    return r.spec.rel_threshold * float(np.mean(centres))


def surface_centre(m: Measured) -> float:

    return float(m.loss[centre_index(m.xs, m.ys)])


def comparison_table(
    r: RunResults,
    title: str,
    a: str,
    b: str,
    a_label: str,
    b_label: str,
    *,
    relative: bool,
    primary: str = "",
    note: str = "",
) -> Table:
    """Every flatness number of measure `a` against measure `b`, A claimed to be the flatter one, paired by seed.

    `relative` for different loss functions (see `landscape_numbers`); otherwise both use one absolute threshold.
    `primary`: the key of the claim's primary number in this table ("" for none).
    """
    thr = None if relative else common_threshold(r, (a, b))
    thr_text = "" if relative else f"{thr:.4g}, {r.spec.rel_threshold:.0%} of the mean L(centre) of both"
    nums = {
        (k, s): landscape_numbers(r.measured[k, s], r.spec, relative=relative, threshold=thr)
        for k in (a, b)
        for s in r.seeds
    }
    rows = []
    for d in number_defs(r.spec, relative, thr_text):
        va = tuple(nums[a, s][d.key] for s in r.seeds)
        vb = tuple(nums[b, s][d.key] for s in r.seeds)
        context = title.split(" (")[0].lower()
        rows.append(Row(d.name, va, vb, d.flatter, d.key == primary, d.fmt, d.margin, tuple(r.seeds), context))
    return Table(title, a_label, b_label, tuple(rows), note)


def convergence_table(r: RunResults, primary: bool = True) -> Table:
    """Epochs until each pre-training run reaches a shared validation loss / ridge-probe accuracy; the first (the
    pre-training loss) is one of claim 2's primaries when `primary`."""
    h_mae = [r.histories["mae", s] for s in r.seeds]
    h_rc = [r.histories["rcmae", s] for s in r.seeds]
    t_loss = convergence_target(h_mae + h_rc, "val_loss", "below")
    t_acc = convergence_target(h_mae + h_rc, "probe_acc", "above")

    def per_seed(hs: list[list[dict]], key: str, target: float, mode: str) -> tuple[float, ...]:
        return tuple(epochs_to_reach(h, key, target, mode) for h in hs)

    def final(hs: list[list[dict]], key: str) -> tuple[float, ...]:
        return tuple(float(h[-1].get(key, math.nan)) if h else math.nan for h in hs)

    seeds = tuple(r.seeds)
    rows = (
        Row(
            f"epochs to reach validation pre-training loss {t_loss:.4g}",
            per_seed(h_rc, "val_loss", t_loss, "below"),
            per_seed(h_mae, "val_loss", t_loss, "below"),
            "lower",
            primary=primary,
            margin="epochs",
            seeds=seeds,
        ),
        Row(
            f"epochs to reach ridge-probe accuracy {t_acc:.4f}",
            per_seed(h_rc, "probe_acc", t_acc, "above"),
            per_seed(h_mae, "probe_acc", t_acc, "above"),
            "lower",
            margin="epochs",
            seeds=seeds,
        ),
        Row(
            "final validation pre-training loss",
            final(h_rc, "val_loss"),
            final(h_mae, "val_loss"),
            "lower",
            fmt=".4g",
            seeds=seeds,
        ),
        Row(
            "final ridge-probe accuracy",
            final(h_rc, "probe_acc"),
            final(h_mae, "probe_acc"),
            "higher",
            fmt=".4f",
            margin="accuracy",
            seeds=seeds,
        ),
    )
    note = (
        "From the training histories: the validation MAE loss (RC-MAE: of the student) with masks fixed by seed 0, "
        "and a ridge classifier on frozen features of the deployed encoder (RC-MAE: the teacher), after every "
        "epoch. Each target is the level every MAE and RC-MAE run reaches at some epoch (the worst run's best value)."
    )
    return Table("Convergence", "RC-MAE", "MAE", rows, note)


# Which function each kind is compared on (RC-MAE: its MAE term): decided by core.report.comparison, as on the
# dashboard.
OWN_MEASURE = {k: compared_function(k) for k in KINDS}


def flatness_points(r: RunResults) -> tuple[list[tuple[str, int]], dict[str, dict[tuple[str, int], dict]]]:
    """Per (kind, seed): the probe-loss numbers (one absolute threshold for all, the same loss type) and the
    own-objective numbers (relative: the losses differ)."""
    points = [(k, s) for k in KINDS for s in r.seeds]
    thr = common_threshold(r, [f"{k}_probe" for k in KINDS])
    fam = {
        "probe loss": {
            p: landscape_numbers(r.measured[f"{p[0]}_probe", p[1]], r.spec, relative=False, threshold=thr)
            for p in points
        },
        "own objective": {
            p: landscape_numbers(r.measured[compared_function(p[0]), p[1]], r.spec, relative=True) for p in points
        },
    }
    return points, fam


def generalization_claim(r: RunResults, figures: tuple[tuple[str, str], ...]) -> Claim:
    spec = r.spec
    acc = {k: tuple(r.probe_acc[k, s] for s in r.seeds) for k in KINDS}
    lines = [
        "| model | linear-probe validation accuracy |",
        "|---|---|",
        *[f"| {LABEL[k]} | {format_mean_std(acc[k], '.4f')} |" for k in KINDS],
        f"| Sup-ViT's own classifier (reference) | {format_mean_std([r.classifier_acc[s] for s in r.seeds], '.4f')} |",
    ]
    points, fam = flatness_points(r)
    y = tuple(r.probe_acc[p] for p in points)
    rows = []
    for family, nums in fam.items():
        relative = family == "own objective"
        for d in number_defs(spec, relative, "one threshold for all models"):
            if d.flatter and not d.variant:
                x = tuple(float(nums[p][d.key]) for p in points)
                name = f"{d.name.split(' (')[0]} ({family})"
                rows.append(CorrelationRow(name, x, y, 1 if d.flatter == "higher" else -1))
    text = "\n".join(lines) + (
        f"\n\nEach point is one model and seed: n = {len(points)} (3 model kinds x {len(r.seeds)} seeds), which is "
        "small; the points also cluster by model kind, so a correlation can reflect the kind rather than flatness. "
        f"Probe-loss numbers use one absolute threshold ({spec.rel_threshold:.0%} of the mean probe centre loss) "
        "and raw increases, curvatures and Hessian numbers (one loss type for all models; dividing by the centre "
        "loss would tie the numbers to accuracy by construction). Own-objective numbers are relative (MSE and "
        "cross-entropy differ in scale; RC-MAE: its MAE term). Expected sign: the one under which a flatter "
        "landscape goes with higher accuracy."
    )
    return Claim(
        title="Follow-up: flatter models generalize better",
        statement=(
            "Not a finding of the paper, which names it as future work: flatness numbers should correlate with "
            "generalization (here linear-probe validation accuracy; the seed's 'more stable' reading)."
        ),
        correlations=tuple(rows),
        figures=figures,
        text=text,
    )


# The primary numbers, declared before measuring (the issue "verdicts that sharpen with evidence"); every other number
# is shown with its interval and reading, never counted.
CLAIM1_PRIMARY = (
    "the basin width on each model's own objective (relative threshold: the two losses differ in scale) is what the "
    "paper's pictures show, a wider basin; curvature, loss increases and Hessian numbers measure nearly the same "
    "fact and would count it several times."
)
CLAIM2_PRIMARY = (
    "the claim has three parts, so three primaries, Holm-corrected, all of which must hold: the convex area of the "
    "full Hessian on the pre-training loss and on the linear-probe loss (the paper's 'region of convexity'; the "
    "slice's convex fraction where the maps were skipped), and the epochs to reach the shared validation "
    "pre-training loss ('converges faster')."
)


def build_findings(r: RunResults, figures: dict[str, tuple[tuple[str, str], ...]], command: str) -> Findings:
    """The report's content from the measurements."""
    rel = (
        "MAE's pixel MSE and cross-entropy live on different scales, so every number is relative: the threshold is "
        "a fraction of each surface's centre loss, and increases, curvatures and Hessian numbers are divided by the "
        "centre loss."
    )
    same = (
        "Both models are measured on the same loss function, so the numbers are compared directly, with one "
        "absolute threshold for both; the relative versions are shown below them."
    )
    # Claim 2's convex region: the convex area of the full Hessian's maps; where they were skipped
    # (--convexity-grid 0) the slice's convex fraction stands in, as it does in the regime cells.
    convex = "" if r.convexity else "convex_fraction"
    claim1 = Claim(
        title="MAE's pre-training landscape is flatter and wider than the supervised ViT's",
        statement=(
            "The paper (finding 1): MAE-ViT has a smoother, wider overall loss curvature than a supervised ViT, "
            "each on its own training objective."
        ),
        tables=(
            comparison_table(
                r,
                "Own training objective",
                "mae_own",
                "sup_own",
                "MAE",
                "Sup-ViT",
                relative=True,
                primary="basin_width",
                note="MAE: masked-patch pixel MSE; Sup-ViT: cross-entropy. " + rel,
            ),
            comparison_table(
                r,
                "Linear-probe loss",
                "mae_probe",
                "sup_probe",
                "MAE",
                "Sup-ViT",
                relative=False,
                note="Both through a linear probe trained on the frozen encoder by the same protocol (for the Sup-ViT "
                "a probe on its encoder, not its own classifier); the encoder and the probe head move. " + same,
            ),
        ),
        figures=figures.get("claim1", ()),
        primary_reason=CLAIM1_PRIMARY,
    )
    claim2 = Claim(
        title="RC-MAE widens the convex, flat region and converges faster than MAE",
        statement=(
            "The paper (finding 2): RC-MAE's EMA teacher widens the region of convexity of both the pre-training "
            "and the linear-probing landscape, and the model converges faster."
        ),
        tables=(
            comparison_table(
                r,
                "Pre-training loss",
                compared_function("rcmae", "mae"),
                compared_function("mae", "rcmae"),
                "RC-MAE",
                "MAE",
                relative=False,
                primary=convex,
                note="The masked-patch MSE for both (for RC-MAE its MAE term, the student moving). " + same,
            ),
            comparison_table(
                r,
                "Linear-probe loss",
                "rcmae_probe",
                "mae_probe",
                "RC-MAE",
                "MAE",
                relative=False,
                primary=convex,
                note="RC-MAE's probe reads its deployed EMA teacher; the encoder and the probe head move. " + same,
            ),
            convergence_table(r),
            comparison_table(
                r,
                "RC-MAE's full objective vs MAE's loss",
                "rcmae_full",
                "mae_own",
                "RC-MAE",
                "MAE",
                relative=True,
                note="RC-MAE's training objective adds the consistency term to the fixed teacher: a different "
                "function from MAE's loss, hence relative numbers.",
            ),
            *convexity_table(r),
        ),
        figures=figures.get("claim2", ()),
        primary_reason=CLAIM2_PRIMARY,
    )
    claim3 = generalization_claim(r, figures.get("generalization", ()))
    return Findings(
        title="Findings: the loss-landscape claims, re-measured",
        command=command,
        setup=setup_items(r),
        claims=(claim1, claim2, claim3),
        notes=caveats(r),
        preface=r.spec.note,
    )


def setup_items(r: RunResults) -> tuple[tuple[str, str], ...]:

    spec = r.spec
    p = spec.probe
    converged = np.mean([bool(m.hessian.get("converged")) for m in r.measured.values()])
    default_runs = " (for seed 0 the same runs as the dashboard's default models)" if not spec.quick else ""
    return (
        (
            "models",
            f"MAE, RC-MAE (EMA teacher, momentum {r.setup_facts.get('ema', TrainConfig.ema_momentum)}, gamma "
            f"{TrainConfig.gamma}) and a "
            f"supervised ViT (Sup-ViT), preset `{spec.preset}`: {r.setup_facts['architecture']}",
        ),
        (
            "training",
            f"{spec.epochs} epochs, batch {spec.batch_size}, AdamW lr {TrainConfig.lr}, {spec.warmup_epochs} warm-up "
            f"epochs, mask ratio {TrainConfig.mask_ratio}; cached by config{default_runs}",
        ),
        (
            "seeds",
            f"{len(r.seeds)} model seeds ({', '.join(map(str, r.seeds))}); seed k also moves every measurement seed "
            "(directions, evaluation images, masks, probe, Hessian start vectors) by k; tables give mean ± sample "
            "standard deviation over seeds beside the paired estimate of A vs B",
        ),
        ("data", r.setup_facts["data"]),
        (
            "linear probes",
            f"frozen cls feature, BatchNorm1d (no affine) + Linear, AdamW lr {p.lr}, {p.epochs} epochs; the same "
            "protocol on all three encoders (RC-MAE: the EMA teacher); accuracy on the whole validation split",
        ),
        (
            "landscapes",
            f"2-D slices L(theta + a d1 + b d2) on a {spec.grid}x{spec.grid} grid over [-{spec.span:g}, "
            f"{spec.span:g}]^2; random Gaussian directions, filter-normalized, biases and norm scales fixed, direction "
            f"seed {spec.direction_seed} + k for every model of seed k; {spec.samples} validation images (data seed "
            f"{spec.data_seed} + k), MAE masks fixed by mask seed {spec.mask_seed} + k; eval mode, fp32",
        ),
        (
            "numbers",
            "basin width: mean over the 4 axis directions of the distance from the centre at which the loss "
            "increase first reaches the threshold; flat-area fraction: share of grid points under the threshold; "
            "centre curvature: eigenvalues of a quadratic fit within radius 0.25; convex fraction: share of interior "
            "points whose finite-difference Hessian is positive definite; increase at radius r: mean over a circle",
        ),
        (
            "Hessian",
            f"top eigenvalue by Lanczos ({spec.hessian_iter} steps; converged in {converged:.0%} of the "
            f"objectives), trace by Hutchinson ({spec.trace_probes} Rademacher probes); the same parameters and "
            "images as the landscape",
        ),
        ("verdict rule", rule_text()),
        ("code version", f"`{code_version()}`"),
    )


def caveats(r: RunResults) -> tuple[str, ...]:
    spec = r.spec
    notes = [
        f"Scale: `{spec.preset}` models on `{spec.data}` with {len(r.seeds)} seed(s); the paper used ViT-B on "
        "ImageNet. A verdict here says what these small models show, not what holds at scale.",
        "Random 2-D slices mostly reflect the Hessian trace and rarely show saddles (Boettcher & Wheeler 2022); "
        "one direction seed per model seed k (shared by every model of seed k), so the spread over seeds covers it.",
        "Filter normalization is used throughout; other normalizations of the directions can change the picture.",
    ]
    edge = sum(bool(landscape_numbers(m, spec, relative=True)["basin_at_edge"]) for m in r.measured.values())
    if edge:
        notes.append(
            f"In {edge} of {len(r.measured)} surfaces the basin (at {spec.rel_threshold:.0%} of the centre loss) "
            "reached the grid edge along some axis: there the basin width is a lower bound."
        )
    if spec.quick:
        notes.append("This is the --quick version (micro models, synthetic data, coarse grids): a smoke test only.")
    return tuple(notes)
