"""Which function is compared: the one place that decides on which loss two model kinds are put side by side.

A flatness number is a property of a function at a point. RC-MAE's own training objective is its MAE loss plus
gamma * consistency to the frozen EMA teacher; the consistency term's Hessian at the trained weights is about
2 gamma J^T J, positive semi-definite, so it adds curvature by construction. Comparing RC-MAE's full objective with
MAE's loss therefore partly measures that term, not the landscape. So:

- RC-MAE vs MAE is compared on one and the same function, the masked-patch MSE (RC-MAE: its MAE term alone, the
  student's encoder and decoder moving, the teacher not used), with the numbers compared directly.
- MAE vs the supervised ViT is compared on each model's own objective (pixel MSE vs cross-entropy): different
  functions on different scales, so loss-unit numbers are compared relative to each model's loss at the centre
  (`relative=True`), as docs/FINDINGS.md does.
- RC-MAE's full objective vs MAE's loss is shown as a secondary, uncounted line that carries this reason.

The executive summary (`core.report.summary`), the briefing (`core.report.briefing`), the Overview and Flatness pages
and the reproduce report (`core.studies.reproduce`, docs/FINDINGS.md) all ask `compared_function` / `COMPARISONS`;
nothing else decides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Function:
    """A loss function a model kind is measured on.

    Attributes:
        key: the name used everywhere (the reproduce report's measure keys): mae_own, rcmae_mae, rcmae_full, sup_own.
        kind: the model kind it belongs to.
        overrides: the SurfaceSpec / FlatnessSpec fields that select it (empty: the model's own objective).
        moving: which weights a landscape or Hessian of it moves (English; `moving_text` for Japanese).
    """

    key: str
    kind: str
    overrides: tuple[tuple[str, Any], ...]
    moving: str


FUNCTIONS: dict[str, Function] = {
    "mae_own": Function("mae_own", "mae", (), "MAE's encoder and decoder move"),
    "rcmae_mae": Function(
        "rcmae_mae",
        "rcmae",
        (("rcmae_terms", "mae"),),
        "RC-MAE's student (encoder and decoder) moves; the MAE term alone, the EMA teacher not used",
    ),
    "rcmae_full": Function(
        "rcmae_full",
        "rcmae",
        (),
        "RC-MAE's student moves; the EMA teacher is held fixed at its checkpoint weights inside the consistency term",
    ),
    "sup_own": Function("sup_own", "sup", (), "the supervised ViT's encoder and classifier move"),
}
_MOVING_JA = {
    "mae_own": "MAEのエンコーダとデコーダを動かします",
    "rcmae_mae": "RC-MAEの生徒モデル(エンコーダとデコーダ)を動かし、MAE項のみでEMA教師は使いません",
    "rcmae_full": "RC-MAEの生徒モデルを動かし、EMA教師は一貫性項の中でチェックポイントの重みに固定します",
    "sup_own": "教師ありViTのエンコーダと分類器を動かします",
}
# Each kind's own training objective (what the dashboard's default landscapes and flatness numbers measure).
OWN_FUNCTION = {"mae": "mae_own", "rcmae": "rcmae_full", "sup": "sup_own"}


@dataclass(frozen=True)
class Comparison:
    """Kind `a` claimed flatter than kind `b`, each measured on its function.

    Attributes:
        a, b: model kinds.
        fa, fb: their function keys.
        counted: whether it decides a verdict (False: shown with `reason`, never counted).
        reason: why it is (not) counted, in English; `reason_text` gives the Japanese.
    """

    a: str
    b: str
    fa: str
    fb: str
    counted: bool
    reason: str

    @property
    def same_function(self) -> bool:
        """Both sides are the masked-patch MSE (numbers compared directly) rather than two different losses."""
        return {self.fa, self.fb} <= {"mae_own", "rcmae_mae"}

    @property
    def relative(self) -> bool:
        """Loss-unit numbers are divided by each model's centre loss (different functions, different scales)."""
        return not self.same_function


_REASONS = {
    "same": (
        "the same function for both, MAE's masked-patch MSE, compared directly",
        "両方とも同じ関数(MAEのマスクパッチ二乗誤差)で、数値をそのまま比較",
    ),
    "relative": (
        "different losses (pixel MSE vs cross-entropy): loss-unit numbers divided by each model's loss at the centre",
        "損失が異なる(画素の二乗誤差と交差エントロピー)ため、損失の単位を持つ数値は中心での損失で割って比較",
    ),
    "full": (
        "RC-MAE's full objective adds the consistency term, whose Hessian (about 2γJᵀJ) is positive semi-definite, "
        "so it adds curvature by construction",
        "RC-MAEの学習目的関数は一貫性項を加えており、そのヘッセ行列(約2γJᵀJ)は半正定値のため、構造上曲率が増えます",
    ),
}

COMPARISONS: tuple[Comparison, ...] = (
    Comparison("rcmae", "mae", "rcmae_mae", "mae_own", True, _REASONS["same"][0]),
    Comparison("mae", "sup", "mae_own", "sup_own", True, _REASONS["relative"][0]),
    Comparison("rcmae", "mae", "rcmae_full", "mae_own", False, _REASONS["full"][0]),
)


def compared_function(kind: str, against: str | None = None) -> str:
    """The function key a model kind is measured on when it is compared (with `against`, or with any kind).

    RC-MAE is compared on its MAE term (the same function as MAE's loss); every other kind on its own objective.
    The one rule behind the summary, the pages and docs/FINDINGS.md.

    Raises:
        KeyError: an unknown kind.
    """
    if kind not in OWN_FUNCTION:
        raise KeyError(f"unknown model kind {kind!r}")
    for c in COMPARISONS:
        if c.counted and (against is None or {c.a, c.b} == {kind, against}):
            if c.a == kind:
                return c.fa
            if c.b == kind:
                return c.fb
    return OWN_FUNCTION[kind]


def comparisons(counted: bool | None = None) -> tuple[Comparison, ...]:
    """The comparisons, counted ones first (`counted=True` / False selects one group)."""
    return tuple(c for c in COMPARISONS if counted is None or c.counted == counted)


def comparison_of(a: str, b: str, counted: bool = True) -> Comparison | None:
    """The (counted) comparison of kind `a` against kind `b`, or None."""
    found = [c for c in COMPARISONS if (c.a, c.b) == (a, b) and c.counted == counted]
    return found[0] if found else None


def overrides(function_key: str) -> dict[str, Any]:
    """SurfaceSpec / FlatnessSpec fields that select a function (empty for a model's own objective)."""
    return dict(FUNCTIONS[function_key].overrides)


def needs_extra(kind: str) -> str | None:
    """The function key to measure in addition to a kind's own objective for its comparison, or None."""
    if kind not in OWN_FUNCTION:
        return None  # e.g. a probe checkpoint: not part of the comparisons
    f = compared_function(kind)
    return f if f != OWN_FUNCTION[kind] else None


def variant_label(label: str, function_key: str, lang: str = "en") -> str:
    """A display label for a model measured on a function other than its own objective."""
    if function_key == "rcmae_mae":
        return f"{label} · " + ("MAE項" if lang == "ja" else "MAE term")
    return label


def moving_text(function_key: str, lang: str = "en") -> str:
    """Which weights move, in the language."""
    return _MOVING_JA[function_key] if lang == "ja" else FUNCTIONS[function_key].moving


def reason_text(c: Comparison, lang: str = "en") -> str:
    """Why a comparison is made the way it is, in the language."""
    for en, ja in _REASONS.values():
        if c.reason == en:
            return ja if lang == "ja" else en
    return c.reason


def same_function_specs(paths: dict[str, str], labels: dict[str, str], make_spec, **fields: Any) -> dict[str, Any]:
    """label -> spec for every model that is compared on a function other than its own objective.

    Args:
        paths: kind -> checkpoint path (the dashboard's default trio).
        labels: kind -> display label.
        make_spec: `make_spec(path, **fields)` builds a SurfaceSpec or FlatnessSpec.
        fields: the profile's fields; the function's overrides are applied on top.
    """
    out = {}
    for kind, path in paths.items():
        extra = needs_extra(kind)
        if extra:
            out[variant_label(labels.get(kind, kind), extra)] = make_spec(path, **(fields | overrides(extra)))
    return out


_TITLES = {
    "same": ("{A} vs {B} on one function, MAE's loss (counted)", "{A}と{B}: 同じ関数(MAEの損失)で比較(判定に数える)"),
    "relative": (
        "{A} vs {B}, each on its own objective, relative numbers (counted)",
        "{A}と{B}: それぞれの学習目的関数、相対値で比較(判定に数える)",
    ),
    "full": (
        "RC-MAE's full objective vs MAE's loss (shown, not counted)",
        "RC-MAEの学習目的関数とMAEの損失(参考、判定に数えない)",
    ),
}
_NAMES = {
    "en": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "Sup-ViT"},
    "ja": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "教師ありViT"},
}


def title_text(c: Comparison, lang: str = "en") -> str:
    """A short heading for a comparison."""
    key = "same" if c.counted and c.same_function else "relative" if c.counted else "full"
    en, ja = _TITLES[key]
    names = _NAMES["ja" if lang == "ja" else "en"]
    return (ja if lang == "ja" else en).format(A=names[c.a], B=names[c.b])


@dataclass(frozen=True)
class Measured:
    """The flatness numbers of one model on one function, as `core.report.summary.stability_comparisons` reads them."""

    label: str
    kind: str
    function: str
    top_eigenvalue: float | None = None
    trace: float | None = None
    sharpness: float | None = None
    robustness: dict | None = None
    basin_width: float | None = None
    centre_loss: float | None = None
    seed: int | None = None  # its training seed: the verdicts pair models by seed (None: paired in label order)


def from_report(
    label: str, kind: str, function: str, report: Any, robustness: dict | None = None, seed: int | None = None
) -> Measured:
    """A `core.measure.flatness.FlatnessReport` as `Measured`; the centre loss is the sharpness stage's loss at the
    trained weights (the scale of the relative comparisons), the robustness curve the report's or `robustness`."""
    sharp = report.sharpness or {}
    return Measured(
        label=label,
        kind=kind,
        function=function,
        top_eigenvalue=float(report.top_eigenvalues[0]) if report.top_eigenvalues else None,
        trace=report.trace,
        sharpness=sharp.get("average"),
        robustness=report.robustness or robustness,
        centre_loss=sharp.get("base_loss"),
        seed=seed,
    )


def function_of_spec(kind: str, spec: Any) -> str | None:
    """The function key a FlatnessSpec / SurfaceSpec of a model of `kind` measures (None: not one of the compared
    functions, e.g. a probe loss)."""
    if kind not in OWN_FUNCTION or spec.loss not in ("own", "pretrain" if kind in ("mae", "rcmae") else "supervised"):
        return None
    if kind == "rcmae":
        return "rcmae_mae" if spec.rcmae_terms == "mae" else "rcmae_full"
    return OWN_FUNCTION[kind]
