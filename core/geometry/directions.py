"""Directions in parameter space: random filter-normalized ones, lines and planes between checkpoints, trajectory PCA.

A direction is a `dict[str, torch.Tensor]` keyed by names from `model.named_parameters()`. It holds an fp32 entry,
on the parameter's device, for EVERY trainable parameter (requires_grad=True) of the model, with zero tensors for
the parameters it does not move (out of scope, ignored biases / norm weights), so that dot products and
orthogonalization need no special cases. Frozen parameters (requires_grad=False, e.g. MAE's fixed sin-cos
position tables) never appear in a direction and never move.

Normalizations (`normalize_direction`, after Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"):
- `filter`: every tensor with >= 2 dims is cut into slices along dim 0 (one conv output filter, one Linear output
  row, one output row of a fused qkv weight) and each slice is rescaled to the norm of the same slice of the
  weights: d[i] *= ||w[i]|| / (||d[i]|| + 1e-10). A ViT's `cls_token` / `mask_token` (1, 1, D) and a learned
  `pos_embed` (1, L, D) have a single slice along dim 0, so each is ONE filter: the whole tensor is rescaled to
  the norm of the whole weight tensor. Tensors with <= 1 dim (biases, norm scales) are rescaled as a whole when
  `ignore="none"`.
- `layer`: every tensor rescaled as a whole to ||w||.
- `weight`: d * w (elementwise).
- `none`: d unchanged.
`ignore="biasbn"` (the default, as in Li et al.) gives tensors with <= 1 dim a zero direction.
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from core.errors import LandscapeError
from core.geometry.params import select_parameters

NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "none")

Direction = dict[str, torch.Tensor]

_EPS = 1e-10


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The model's trainable parameters by name, in `named_parameters()` order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def model_weights(model: torch.nn.Module) -> Direction:
    """Detached fp32 copies of the model's trainable parameters (the `weights` of `normalize_direction`)."""
    return {name: p.detach().to(torch.float32, copy=True) for name, p in trainable_parameters(model).items()}


def zero_direction(model: torch.nn.Module) -> Direction:
    """A direction that moves nothing: fp32 zeros for every trainable parameter."""
    return {
        name: torch.zeros(p.shape, dtype=torch.float32, device=p.device)
        for name, p in trainable_parameters(model).items()
    }


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise LandscapeError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


def random_direction(
    model: torch.nn.Module,
    seed: int,
    norm: str = "filter",
    ignore: str = "biasbn",
    scope: str = "all",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Direction:
    """A random Gaussian direction, zero outside the scope, then normalized to the model's weights.

    The raw direction is drawn from a CPU `torch.Generator` seeded with `seed`, one `randn` per trainable
    parameter in `named_parameters()` order, for every trainable parameter (also the ones zeroed afterwards).
    Two models of the same architecture therefore get the same raw direction for the same seed whatever the
    scope, include and exclude, so side-by-side landscapes are comparable.

    Args:
        model: the model; its current weights are the normalization reference.
        seed: seed of the generator.
        norm: one of `NORMS` (see the module docstring).
        ignore: one of `IGNORES`; "biasbn" zeroes tensors with <= 1 dim.
        scope: parameter scope (`core.geometry.params.SCOPES`).
        include: keep only parameters matching one of these (see `core.geometry.params.select_parameters`).
        exclude: drop parameters matching one of these.

    Returns:
        A direction with an fp32 entry on the parameter's device for every trainable parameter.

    Raises:
        LandscapeError: unknown norm / ignore / scope, or nothing left to move.
    """
    _check_choice(norm, NORMS, "normalization")
    _check_choice(ignore, IGNORES, "ignore option")
    try:
        selected = set(select_parameters(model, scope, include, exclude))
    except ValueError as err:
        raise LandscapeError(str(err)) from err
    params = trainable_parameters(model)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    raw: Direction = {}
    for name, p in params.items():
        d = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32)  # drawn even if zeroed below
        if name not in selected:
            d.zero_()
        raw[name] = d.to(p.device)
    weights = {name: p.detach() for name, p in params.items()}
    direction = normalize_direction(raw, weights, norm=norm, ignore=ignore)
    if not any(bool(t.any()) for t in direction.values()):
        raise LandscapeError(
            f"the direction moves no parameter (scope {scope!r}, include {list(include)}, exclude "
            f"{list(exclude)}, ignore {ignore!r}); widen the selection"
        )
    return direction


def normalize_direction(
    direction: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
    norm: str = "filter",
    ignore: str = "biasbn",
) -> Direction:
    """Rescale a direction to the weights (pure: the inputs are not modified).

    Args:
        direction: raw direction, one tensor per parameter name.
        weights: the reference weights, same names and shapes.
        norm: one of `NORMS` (see the module docstring).
        ignore: one of `IGNORES`.

    Returns:
        A new fp32 direction on the devices of `direction`'s tensors. Zero tensors stay zero.
    """
    _check_choice(norm, NORMS, "normalization")
    _check_choice(ignore, IGNORES, "ignore option")
    out: Direction = {}
    for name, d in direction.items():
        if name not in weights:
            raise ValueError(f"no weights for direction entry {name!r}")
        d = d.detach().to(torch.float32, copy=True)
        w = weights[name].detach().to(device=d.device, dtype=torch.float32)
        if tuple(w.shape) != tuple(d.shape):
            raise ValueError(f"shape mismatch for {name!r}: direction {tuple(d.shape)}, weights {tuple(w.shape)}")
        if d.dim() <= 1 and ignore == "biasbn":
            d.zero_()
        elif norm == "filter":
            if d.dim() >= 2:
                d_norms = d.reshape(d.shape[0], -1).norm(dim=1)
                w_norms = w.reshape(w.shape[0], -1).norm(dim=1)
                scale = w_norms / (d_norms + _EPS)
                d.mul_(scale.reshape((-1,) + (1,) * (d.dim() - 1)))
            else:
                d.mul_(w.norm() / (d.norm() + _EPS))
        elif norm == "layer":
            d.mul_(w.norm() / (d.norm() + _EPS))
        elif norm == "weight":
            d.mul_(w)
        out[name] = d
    return out


def dot(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Global dot product over the names both directions hold, accumulated in float64."""
    total = 0.0
    for name, x in a.items():
        y = b.get(name)
        if y is None:
            continue
        total += float(torch.dot(x.detach().reshape(-1).double(), y.detach().reshape(-1).to(x.device).double()))
    return total


def norm(a: Mapping[str, torch.Tensor]) -> float:
    """Global Euclidean norm of a direction."""
    return float(np.sqrt(max(dot(a, a), 0.0)))


def add(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float = 1.0) -> Direction:
    """a + alpha * b over a's names (names missing from b count as zero)."""
    out = {}
    for name, x in a.items():
        y = b.get(name)
        out[name] = x.clone() if y is None else x + alpha * y.to(device=x.device, dtype=x.dtype)
    return out


def scale(a: Mapping[str, torch.Tensor], factor: float) -> Direction:
    """factor * a."""
    return {name: x * factor for name, x in a.items()}


def flatten(d: Mapping[str, torch.Tensor], names: Iterable[str] | None = None) -> torch.Tensor:
    """Concatenate the tensors of `names` (default: all, in dict order) into one 1-D tensor on the first's device."""
    names = list(d) if names is None else list(names)
    if not names:
        return torch.zeros(0)
    device = d[names[0]].device
    return torch.cat([d[n].detach().reshape(-1).to(device) for n in names])


def unflatten(vec: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Direction:
    """Split a 1-D tensor back into `like`'s names, shapes, devices and dtypes (inverse of `flatten(like)`)."""
    total = sum(t.numel() for t in like.values())
    if vec.numel() != total:
        raise ValueError(f"vector has {vec.numel()} elements, the direction needs {total}")
    out, offset = {}, 0
    for name, t in like.items():
        n = t.numel()
        out[name] = vec[offset : offset + n].reshape(t.shape).to(device=t.device, dtype=t.dtype)
        offset += n
    return out


def orthogonalize(d2: Mapping[str, torch.Tensor], d1: Mapping[str, torch.Tensor], keep_norm: bool = True) -> Direction:
    """Remove from d2 its component along d1 (global dot product over all parameters).

    Args:
        d2: the direction to orthogonalize.
        d1: the direction to be orthogonal to.
        keep_norm: if True (default) the result is rescaled to d2's original global norm, so a filter-normalized
            d2 keeps its overall size (its per-filter norms then hold only approximately: for random directions
            over many parameters the removed component is tiny). If False the plain projection is returned.

    Returns:
        A new direction with dot(result, d1) == 0 up to rounding. If d1 is zero, a copy of d2.
    """
    d1_sq = dot(d1, d1)
    if d1_sq == 0.0:
        return {name: x.clone() for name, x in d2.items()}
    out = add(d2, d1, alpha=-dot(d2, d1) / d1_sq)
    if keep_norm:
        before, after = norm(d2), norm(out)
        if after > 0.0:
            out = scale(out, before / after)
    return out


def interpolation_direction(w_from: Mapping[str, torch.Tensor], w_to: Mapping[str, torch.Tensor]) -> Direction:
    """w_to - w_from over the names both hold (pass trainable weights, e.g. `model_weights(model)`).

    With the model set to w_from, coordinate 0 of this direction is w_from and coordinate 1 is w_to.
    Non-floating entries (e.g. BatchNorm's num_batches_tracked in a state dict) are skipped. Tensors are fp32 on
    w_from's devices.

    Raises:
        LandscapeError: no common names, or a shape differs.
    """
    out: Direction = {}
    for name, a in w_from.items():
        b = w_to.get(name)
        if b is None or not torch.is_floating_point(a) or not torch.is_floating_point(b):
            continue
        if tuple(a.shape) != tuple(b.shape):
            raise LandscapeError(f"checkpoints differ in the shape of {name}: {tuple(a.shape)} vs {tuple(b.shape)}")
        out[name] = b.detach().to(device=a.device, dtype=torch.float32) - a.detach().to(torch.float32)
    if not out:
        raise LandscapeError("the two checkpoints share no parameter names")
    return out


def plane_through(
    w0: Mapping[str, torch.Tensor],
    w1: Mapping[str, torch.Tensor],
    w2: Mapping[str, torch.Tensor],
    orthogonal: bool = False,
) -> tuple[Direction, Direction]:
    """Axes of the plane through three weight sets, centred at w0.

    d1 = w1 - w0 and d2 = w2 - w0, so w0 is at (0, 0), w1 at (1, 0) and w2 at (0, 1). With `orthogonal=True`, d2 is
    replaced by its plain projection orthogonal to d1 (no rescaling): w1 stays at (1, 0) and w2 is then at
    (dot(w2 - w0, d1) / dot(d1, d1), 1); `plane_coordinates` computes it.
    """
    d1 = interpolation_direction(w0, w1)
    d2 = interpolation_direction(w0, w2)
    common = d1.keys() & d2.keys()
    d1 = {n: t for n, t in d1.items() if n in common}
    d2 = {n: t for n, t in d2.items() if n in common}
    if orthogonal:
        d2 = orthogonalize(d2, d1, keep_norm=False)
    return d1, d2


def plane_coordinates(
    points: Sequence[Mapping[str, torch.Tensor]],
    center: Mapping[str, torch.Tensor],
    d1: Mapping[str, torch.Tensor],
    d2: Mapping[str, torch.Tensor],
) -> np.ndarray:
    """Least-squares coordinates (a, b) of weight sets in the plane center + a*d1 + b*d2.

    Returns:
        Array (len(points), 2): the (a, b) minimizing ||point - center - a*d1 - b*d2|| for each point.
    """
    gram = np.array([[dot(d1, d1), dot(d1, d2)], [dot(d2, d1), dot(d2, d2)]])
    coords = np.zeros((len(points), 2))
    for s, w in enumerate(points):
        diff = {n: w[n].detach().float().to(c.device) - c.detach().float() for n, c in center.items() if n in w}
        rhs = np.array([dot(diff, d1), dot(diff, d2)])
        coords[s] = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return coords


def pca_directions(
    snapshots: Sequence[Mapping[str, torch.Tensor]],
    center: Mapping[str, torch.Tensor] | None = None,
    centered: bool = True,
) -> tuple[Direction, Direction, np.ndarray, np.ndarray]:
    """Top-2 principal axes of a training trajectory (Li et al. 2018, section 7).

    The vectors x_s = snapshot_s - center (center defaults to the last snapshot, the final weights) are analysed
    through their S x S Gram matrix accumulated per parameter in float64, so no S x N matrix is ever built. As in
    Li et al. (sklearn PCA) the x_s are mean-centred before the decomposition (`centered=False` skips this, giving
    the best plane through `center` itself). The axes are unit vectors; each axis's sign is fixed so that the
    largest-magnitude snapshot loading is positive (as sklearn's svd_flip).

    Args:
        snapshots: weight sets along the trajectory (trainable names; names missing from `center` are ignored).
        center: the plane's origin; defaults to `snapshots[-1]`.
        centered: subtract the mean of the x_s before the decomposition.

    Returns:
        (d1, d2, coords, explained): the two fp32 unit directions on center's devices; coords (S, 2), the
        projections dot(x_s, d_k) (exact coordinates when the trajectory lies in the plane); explained (2,),
        the variance ratios of the two axes.

    Raises:
        LandscapeError: fewer than 3 snapshots, or a trajectory that does not span a plane.
    """
    if len(snapshots) < 3:
        raise LandscapeError(f"a PCA plane needs at least 3 snapshots, got {len(snapshots)}")
    center = snapshots[-1] if center is None else center
    names = [n for n, t in center.items() if torch.is_floating_point(t) and all(n in s for s in snapshots)]
    if not names:
        raise LandscapeError("the snapshots share no parameter names with the centre")
    n_snap = len(snapshots)

    def stacked(name: str) -> torch.Tensor:
        c = center[name].detach().to(torch.float64)
        return torch.stack([s[name].detach().to(device=c.device, dtype=torch.float64) - c for s in snapshots])

    gram = np.zeros((n_snap, n_snap))
    for name in names:
        x = stacked(name).reshape(n_snap, -1)
        gram += (x @ x.T).cpu().numpy()
    g = gram
    if centered:
        c_mat = np.eye(n_snap) - 1.0 / n_snap
        g = c_mat @ gram @ c_mat
    eigvals, eigvecs = np.linalg.eigh((g + g.T) / 2)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = np.clip(eigvals[order], 0.0, None), eigvecs[:, order]
    total = float(eigvals.sum())
    if total <= 0.0 or eigvals[1] <= 1e-12 * eigvals[0]:
        raise LandscapeError("the snapshots do not span a plane (identical or on one line)")
    u = eigvecs[:, :2].copy()
    for k in range(2):  # deterministic sign, as sklearn's svd_flip
        if u[np.argmax(np.abs(u[:, k])), k] < 0:
            u[:, k] = -u[:, k]
    sing = np.sqrt(eigvals[:2])
    # Axis k = sum_s u[s, k] x_s / sigma_k; with centring u[:, k] sums to zero, so using the uncentred x_s is exact.
    weights_mat = torch.from_numpy(u / sing)
    d1: Direction = {}
    d2: Direction = {}
    for name in names:
        x = stacked(name)
        w = weights_mat.to(x.device)
        axes = torch.tensordot(w.T, x, dims=1)  # (2, *shape)
        d1[name] = axes[0].to(torch.float32)
        d2[name] = axes[1].to(torch.float32)
    coords = gram @ (u / sing)  # dot(x_s, d_k) = (G u_k)_s / sigma_k
    explained = eigvals[:2] / total
    return d1, d2, coords, explained
