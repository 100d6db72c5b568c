"""Common corruptions of small images in pixel space, five severities each, stated in physical units.

After Hendrycks & Dietterich 2019 ("Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ImageNet-C): each corruption has five severities; the levels here are our own, chosen for 16-32 px greyscale or
colour images whose intensities lie in [0, 1] (the dataset's standardization is undone first, `to_pixels`, and
redone after, `from_pixels`, so the model sees a corrupted image exactly as it would see a real one).

| name | unit of a level | levels 1..5 |
| gaussian_noise | sigma, fraction of the intensity range | 0.04 0.08 0.12 0.18 0.26 |
| shot_noise | photons per unit intensity (Poisson; fewer is noisier) | 60 25 12 5 3 |
| gaussian_blur | sigma in pixels | 0.5 0.75 1 1.5 2 |
| translate | shift in pixels, one of four axis directions per image | 1 2 3 4 5 |
| rotate | degrees, the sign drawn per image | 5 10 15 25 35 |
| contrast | share of the contrast kept (about the image mean) | 0.75 0.55 0.4 0.3 0.2 |
| brightness | intensity added (clipped at 1) | 0.1 0.2 0.3 0.4 0.5 |
| occlusion | side of a grey square, fraction of the image side | 0.15 0.25 0.35 0.45 0.55 |

Left out, as they do not make sense at 16 px: JPEG (an image is four 8x8 blocks; its artefacts there would be a blur
and a colour shift the suite already has); elastic warps (translations and rotations of single strokes); pixelation
(only resolutions dividing the image side are clean block averages: at 16 px, 12, 10 and 6 px alias, and the distance
from the clean image was measured not to grow with the level, e.g. 10 px further than 8 px).

Severity 0 is the identity for every corruption. Each corruption is deterministic for a seed: its random draws (noise,
shift direction, rotation sign, square position) come from a generator seeded by (seed, corruption name) and do not
depend on the severity, so a higher severity moves each image further along the same draw (the noise scales, the
square grows around the same centre, the shift lengthens in the same direction). Shot noise draws anew per level
(Poisson counts cannot be scaled), so its distance grows in expectation.

Pure functions of tensors; nothing here builds a model or touches the cache.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.errors import LandscapeError

SEVERITIES = (1, 2, 3, 4, 5)
OCCLUSION_GREY = 0.5  # the occluding square's intensity: mid-grey, visible on dark and light backgrounds


@dataclass(frozen=True)
class Corruption:
    """One corruption: its name, the unit of its levels, the five levels and the function that applies a level.

    Attributes:
        name: its key in CORRUPTIONS.
        unit: what a level measures, in words (shown in reports and on the page).
        levels: the physical level of severities 1..5.
        apply: apply(x, level, gen) -> corrupted x; x is (N, C, H, W) in [0, 1], gen a seeded CPU generator.
        symbol: a short label for the level (e.g. "sigma", "px", "deg").
    """

    name: str
    unit: str
    levels: tuple[float, ...]
    apply: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]
    symbol: str = ""

    def level(self, severity: int) -> float | None:
        """The physical level of a severity (None for 0, the identity)."""
        check_severity(severity)
        return None if severity == 0 else float(self.levels[severity - 1])

    def describe(self, severity: int) -> str:
        """e.g. "sigma 0.12" or "3 px"; "clean" for severity 0."""
        v = self.level(severity)
        if v is None:
            return "clean"
        return f"{v:g} {self.symbol}" if self.symbol in ("px", "deg") else f"{self.symbol} {v:g}"


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= len(SEVERITIES):
        raise LandscapeError(f"severities are whole numbers from 0 to {len(SEVERITIES)}, got {severity!r}")
    return severity


# ---------------------------------------------------------------------------------------------------------------------
# The corruptions (x in [0, 1], (N, C, H, W))


def _gaussian_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    z = torch.randn(x.shape, generator=gen)
    return (x + sigma * z).clamp(0.0, 1.0)


def _shot_noise(x: torch.Tensor, photons: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.poisson(x.clamp(0.0, 1.0) * photons, generator=gen) / photons).clamp(0.0, 1.0)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _gaussian_blur(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    k = _gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    # Replicate padding: the image's border continues outwards, so a blur does not darken the edges.
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def _background(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1): the mean of each image's outermost ring of pixels, its background's intensity."""
    ring = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], dim=-1)
    return ring.mean(-1, keepdim=True).unsqueeze(-1)


def _translate(x: torch.Tensor, pixels: float, gen: torch.Generator) -> torch.Tensor:
    d = int(round(pixels))
    direction = torch.randint(0, 4, (x.shape[0],), generator=gen)
    out = _background(x).expand_as(x).clone()
    h, w = x.shape[-2:]
    d = min(d, h, w)
    for i, k in enumerate(direction.tolist()):
        if d == 0:
            out[i] = x[i]
        elif k == 0:  # right
            out[i, :, :, d:] = x[i, :, :, : w - d]
        elif k == 1:  # left
            out[i, :, :, : w - d] = x[i, :, :, d:]
        elif k == 2:  # down
            out[i, :, d:, :] = x[i, :, : h - d, :]
        else:  # up
            out[i, :, : h - d, :] = x[i, :, d:, :]
    return out


def _rotate(x: torch.Tensor, degrees: float, gen: torch.Generator) -> torch.Tensor:
    sign = torch.randint(0, 2, (x.shape[0],), generator=gen).float() * 2 - 1
    a = sign * math.radians(degrees)
    cos, sin = torch.cos(a), torch.sin(a)
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    rotated = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # The corners that come in from outside the image take the background's intensity, not black.
    return rotated + (1 - inside) * _background(x)


def _contrast(x: torch.Tensor, kept: float, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + (x - mean) * kept).clamp(0.0, 1.0)


def _brightness(x: torch.Tensor, delta: float, gen: torch.Generator) -> torch.Tensor:
    return (x + delta).clamp(0.0, 1.0)


def _occlusion(x: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    # The centre is drawn per image (independent of the severity): a larger square covers the smaller one.
    cy = torch.rand(n, generator=gen) * h
    cx = torch.rand(n, generator=gen) * w
    side_h, side_w = max(1, round(fraction * h)), max(1, round(fraction * w))
    out = x.clone()
    for i in range(n):
        top = int(min(max(0, round(float(cy[i]) - side_h / 2)), h - side_h))
        left = int(min(max(0, round(float(cx[i]) - side_w / 2)), w - side_w))
        out[i, :, top : top + side_h, left : left + side_w] = OCCLUSION_GREY
    return out


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian_noise", "sigma, fraction of the intensity range", (0.04, 0.08, 0.12, 0.18, 0.26),
            _gaussian_noise, "sigma",
        ),
        Corruption(
            "shot_noise", "photons per unit intensity (fewer is noisier)", (60, 25, 12, 5, 3), _shot_noise, "photons"
        ),
        Corruption("gaussian_blur", "blur sigma in pixels", (0.5, 0.75, 1.0, 1.5, 2.0), _gaussian_blur, "sigma px"),
        Corruption("translate", "shift in pixels", (1, 2, 3, 4, 5), _translate, "px"),
        Corruption("rotate", "rotation in degrees", (5, 10, 15, 25, 35), _rotate, "deg"),
        Corruption("contrast", "share of the contrast kept", (0.75, 0.55, 0.4, 0.3, 0.2), _contrast, "kept"),
        Corruption("brightness", "intensity added", (0.1, 0.2, 0.3, 0.4, 0.5), _brightness, "+"),
        Corruption(
            "occlusion", "grey square, side as a fraction of the image", (0.15, 0.25, 0.35, 0.45, 0.55), _occlusion,
            "side",
        ),
    )
}  # fmt: skip
NAMES = tuple(CORRUPTIONS)


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """The names as a tuple, each checked (a one-line error naming the known ones)."""
    out = tuple(names)
    if not out:
        raise LandscapeError("no corruption given: choose from " + ", ".join(NAMES))
    for n in out:
        if n not in CORRUPTIONS:
            raise LandscapeError(f"unknown corruption {n!r}: choose from {', '.join(NAMES)}")
    if len(set(out)) != len(out):
        raise LandscapeError(f"a corruption is named twice in {', '.join(out)}")
    return out


def _generator(name: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63))


def corrupt(x: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt a batch of images in [0, 1].

    Args:
        x: (N, C, H, W) float images in [0, 1] (on any device; computed on the CPU).
        name: a key of CORRUPTIONS.
        severity: 0 (the identity) to 5.
        seed: the random draws (the same for every severity of one corruption).

    Returns:
        A new (N, C, H, W) tensor in [0, 1] on x's device.
    """
    check_names([name])
    check_severity(severity)
    if x.ndim != 4:
        raise LandscapeError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    if severity == 0:
        return x.clone()
    c = CORRUPTIONS[name]
    out = c.apply(x.detach().float().cpu(), c.levels[severity - 1], _generator(name, seed))
    return out.to(x.device, x.dtype)


def to_pixels(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Standardized images (as `core.models.data` stores them) back to [0, 1] intensities."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x * s + m).clamp(0.0, 1.0)


def from_pixels(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[0, 1] intensities to the model's standardized input."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def suite_table(names: Sequence[str] = NAMES) -> list[dict]:
    """One plain row per corruption: name, unit, symbol and the five levels (reports and the page state them)."""
    return [
        {"name": n, "unit": CORRUPTIONS[n].unit, "symbol": CORRUPTIONS[n].symbol, "levels": list(CORRUPTIONS[n].levels)}
        for n in check_names(names)
    ]


def gallery(
    image: torch.Tensor, names: Sequence[str] = NAMES, severities: Sequence[int] = (0, *SEVERITIES), seed: int = 0
) -> dict[str, list[torch.Tensor]]:
    """One image at each severity of each corruption: name -> [(C, H, W) in [0, 1] per severity].

    Args:
        image: (C, H, W) in [0, 1].
        names: the corruptions.
        severities: the severities shown (0: the clean image).
        seed: the draws, as `corrupt` uses them.
    """
    x = image.unsqueeze(0)
    return {n: [corrupt(x, n, int(s), seed)[0] for s in severities] for n in check_names(names)}
