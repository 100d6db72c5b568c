"""Which parameters a landscape, a direction or a Hessian is about.

Every model the project builds names its parameters the official way (timm / facebookresearch/mae), so one
naming rule sorts them into scopes:
- `decoder`: `decoder_*` and `mask_token` (the MAE decoder side),
- `head`: `head.*` (the supervised classifier or the linear probe),
- `encoder`: everything else (patch embedding, cls token, blocks, final norm).
A leading `encoder.` (the linear-probe wrapper) is ignored when sorting.
"""

import fnmatch
from collections.abc import Sequence

import torch

SCOPES = ("all", "encoder", "decoder", "head")


def param_scope(name: str) -> str:
    """The scope ('encoder', 'decoder' or 'head') that a parameter name belongs to."""
    if name.startswith("encoder."):
        name = name[len("encoder.") :]
    if name.startswith("decoder_") or name == "mask_token":
        return "decoder"
    if name.startswith("head."):
        return "head"
    return "encoder"


def _matches(name: str, patterns: Sequence[str]) -> bool:
    # A bare word matches any name containing it ("pos_embed"); a pattern with wildcards is a glob.
    return any(fnmatch.fnmatchcase(name, p) if any(c in p for c in "*?[") else p in name for p in patterns)


def select_parameters(
    model: torch.nn.Module,
    scope: str = "all",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """Names of the trainable parameters in a scope, in `model.named_parameters()` order.

    Args:
        model: the module whose parameters are selected.
        scope: one of `SCOPES`.
        include: if given, keep only names matching one of these (substring, or glob when it has wildcards).
        exclude: drop names matching one of these.

    Frozen parameters (requires_grad=False, e.g. the fixed sin-cos position tables) are never selected.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    names = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if scope != "all" and param_scope(name) != scope:
            continue
        if include and not _matches(name, include):
            continue
        if exclude and _matches(name, exclude):
            continue
        names.append(name)
    return names
