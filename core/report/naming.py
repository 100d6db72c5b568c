"""What things are called on the dashboard, so that one thing has one name on every page.

- Accuracy: three different measures carry the word "probe". Each has one name here (`accuracy_name`), and pages
  show it under that name, never as a bare "probe accuracy":
  - `linear_probe`: a linear probe trained on the frozen encoder, scored on the whole validation split (the
    supervised ViT: its own classifier on the same split). The number a model is known by (Models, Runs, the
    flatness-vs-accuracy scatter).
  - `ridge_training`: the closed-form ridge probe the training loop fits at evaluated epochs (training curves).
  - `clean_on_n`: the probe's (classifier's) accuracy on the N evaluation images of a flatness report, with no
    weight noise: the start of the weight-noise curve (Flatness numbers, the Overview's table).
- Functions: which loss a landscape panel draws (`function_family`), so that a page can say when side-by-side
  panels are different functions and refuse to subtract them.
- Runs: the fields that tell apart cache entries whose short descriptions coincide (`distinguishing_fields`).
- Errors: core's one-line errors are written for the CLI ("use --loss probe"); `gui_error` gives the dashboard's
  wording (the control to change) without touching the CLI's text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core.report.comparison import function_of_spec
from core.report.i18n import t

ACCURACY_MEASURES = ("linear_probe", "ridge_training", "clean_on_n")


def accuracy_name(measure: str, lang: str = "en", *, n: int | None = None, kind: str | None = None) -> str:
    """The name of an accuracy measure, with its images.

    Args:
        measure: one of ACCURACY_MEASURES.
        lang: "en" or "ja".
        n: the number of images (`clean_on_n`).
        kind: the model kind; "sup" names its classifier instead of a probe.
    """
    if measure not in ACCURACY_MEASURES:
        raise ValueError(f"unknown accuracy measure {measure!r}; choose one of {', '.join(ACCURACY_MEASURES)}")
    key = f"acc.{measure}" + ("_sup" if kind == "sup" and measure != "ridge_training" else "")
    text = t(key, lang)
    return text.format(n=n if n is not None else "?") if "{n}" in text else text


# (loss kind resolved for the model kind, rcmae terms) -> family; see `function_family`.
_FAMILIES = {"mae_own": "mse", "rcmae_mae": "mse", "rcmae_full": "mse_consistency", "sup_own": "ce"}


def function_family(kind: str, spec: Any) -> str:
    """The function a surface / flatness spec of a model of `kind` measures, as a family whose values share a scale:
    "mse" (MAE's masked-patch MSE, RC-MAE's MAE term), "mse_consistency" (RC-MAE's full objective), "ce" (the
    supervised ViT's cross-entropy), "probe" (a linear probe's cross-entropy), or "other"."""
    if getattr(spec, "loss", None) == "probe" or kind == "probe":
        return "probe"
    key = function_of_spec(kind, spec)
    return _FAMILIES.get(key or "", "other")


def function_label(family: str, lang: str = "en") -> str:
    """A short name of a function family (`function_family`)."""
    return t(f"fn.{family}", lang)


def distinguishing_fields(items: Sequence[dict[str, Any]], skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """For each item, the fields (and its values) in which it differs from at least one other item.

    Args:
        items: flat dicts of plain values (the specs of cache entries that share a short description).
        skip: fields never shown (hashes, devices, paths).

    Returns:
        One dict per item, in order: field -> value for every field whose values are not all equal (a field an item
        lacks counts as None).
    """
    keys = [k for k in dict.fromkeys(k for it in items for k in it) if k not in skip]
    differ = [k for k in keys if len({repr(it.get(k)) for it in items}) > 1]
    return [{k: it.get(k) for k in differ} for it in items]


# CLI phrasing in core's errors -> the dashboard's (the control a user changes). Applied in order.
_GUI_RULES: tuple[tuple[str, str], ...] = (
    (r"use --loss (\w+) or probe", "gui.use_loss_or_probe"),
    (r"use --loss probe \(a linear probe\) instead", "gui.use_probe"),
    (r"\(train one with `python -m core probe [^`]*`\)", "gui.train_probe"),
)


def gui_error(text: str, lang: str = "en") -> str:
    """An error line as the dashboard says it: command-line flags become the names of the page's controls.

    Core's messages stay written for the CLI (`error: ...`); the pages pass them through this function.
    """
    for pattern, key in _GUI_RULES:

        def repl(m: re.Match, key: str = key) -> str:
            loss = t(f"loss.{m.group(1)}", lang) if m.groups() else ""
            return t(key, lang).format(loss=loss, probe=t("loss.probe", lang))

        text = re.sub(pattern, repl, text)
    # Any other flag: the setting of the same name.
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", lambda m: t("gui.setting", lang).format(name=m.group(1)), text)
