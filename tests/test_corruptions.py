"""The corruption suite: identity at severity 0, distance from the clean image growing with severity, the same
draws for the same seed, one-line errors."""

from __future__ import annotations

import pytest
import torch

from core.errors import LandscapeError
from core.measure.corruptions import CORRUPTIONS, NAMES, SEVERITIES, corrupt, from_pixels, gallery, to_pixels


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """64 16x16 images with structure (a bright square on a dark, slightly noisy background) and 3 channels."""
    g = torch.Generator().manual_seed(0)
    x = 0.1 + 0.05 * torch.rand(64, 3, 16, 16, generator=g)
    x[:, :, 4:11, 5:12] += 0.7
    return x.clamp(0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_identity_at_zero_and_distance_grows_with_severity(images: torch.Tensor, name: str):
    assert torch.equal(corrupt(images, name, 0, seed=3), images)
    dist = [float((corrupt(images, name, s, seed=3) - images).pow(2).mean().sqrt()) for s in (0, *SEVERITIES)]
    assert dist[0] == 0.0
    assert all(b > a for a, b in zip(dist, dist[1:], strict=False)), (name, dist)
    out = corrupt(images, name, 5, seed=3)
    assert out.shape == images.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(images: torch.Tensor, name: str):
    a, b = corrupt(images, name, 3, seed=7), corrupt(images, name, 3, seed=7)
    assert torch.equal(a, b)
    if name in ("gaussian_noise", "shot_noise", "translate", "rotate", "occlusion"):  # the random ones
        assert not torch.equal(a, corrupt(images, name, 3, seed=8))


def test_levels_are_physical_and_errors_are_one_line(images: torch.Tensor):
    assert CORRUPTIONS["translate"].describe(3) == "3 px" and CORRUPTIONS["rotate"].describe(5) == "35 deg"
    assert all(len(c.levels) == len(SEVERITIES) and c.unit for c in CORRUPTIONS.values())
    for bad in (lambda: corrupt(images, "fog", 1), lambda: corrupt(images, "rotate", 6)):
        with pytest.raises(LandscapeError) as e:
            bad()
        assert "\n" not in str(e.value)
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)
    assert torch.allclose(to_pixels(from_pixels(images, mean, std), mean, std), images, atol=1e-6)
    g = gallery(images[0], ("gaussian_blur", "occlusion"))
    assert [len(v) for v in g.values()] == [6, 6] and torch.equal(g["occlusion"][0], images[0])
