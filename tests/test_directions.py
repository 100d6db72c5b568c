import pytest
import torch
from torch import nn

import core.geometry.directions as D
from core.errors import LandscapeError


class TinyNet(nn.Module):
    """Conv + Linear + LayerNorm with ViT-like token parameters, names sorted by core.geometry.params scopes."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 4), requires_grad=False)  # frozen sin-cos-like table
        self.conv = nn.Conv2d(2, 3, 3)
        self.fc = nn.Linear(12, 4)
        self.norm = nn.LayerNorm(4)
        self.decoder_embed = nn.Linear(4, 6)
        self.head = nn.Linear(4, 2)


def make(seed: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def trainable(model):
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def raw_direction(model, seed):
    # Independent statement of the drawing convention: one randn per trainable parameter, in order.
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(tuple(p.shape), generator=gen) for n, p in trainable(model).items()}


def test_filter_normalization_matches_weight_slice_norms():
    model = make(0)
    d = D.random_direction(model, seed=3)
    for name, p in trainable(model).items():
        assert d[name].dtype == torch.float32 and d[name].shape == p.shape
        if p.dim() >= 2:
            d_rows = d[name].reshape(p.shape[0], -1).norm(dim=1)
            w_rows = p.detach().reshape(p.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(d_rows, w_rows, rtol=1e-5, atol=1e-6)
            # Each row keeps the raw direction's orientation (only rescaled).
            raw = raw_direction(model, 3)[name].reshape(p.shape[0], -1)
            cos = torch.nn.functional.cosine_similarity(raw, d[name].reshape(p.shape[0], -1), dim=1)
            torch.testing.assert_close(cos, torch.ones_like(cos))
        else:
            assert not d[name].any(), f"{name} should be zero under ignore=biasbn"
    # cls_token (1, 1, D) is one filter: the whole tensor has the norm of the whole weight.
    assert d["cls_token"].norm().item() == pytest.approx(model.cls_token.norm().item(), rel=1e-5)
    assert "conv.weight" in d and d["conv.weight"].dim() == 4


def test_ignore_none_rescales_1d_tensors_to_weight_norm():
    model = make(0)
    d = D.random_direction(model, seed=1, norm="filter", ignore="none")
    for name in ("fc.bias", "norm.weight", "norm.bias", "head.bias"):
        w = trainable(model)[name].detach()
        assert d[name].norm().item() == pytest.approx(w.norm().item(), rel=1e-5)


def test_layer_weight_and_none_norms():
    model = make(0)
    raw = raw_direction(model, 5)
    none = D.random_direction(model, seed=5, norm="none", ignore="none")
    for name in raw:
        torch.testing.assert_close(none[name], raw[name], rtol=0, atol=0)
    layer = D.random_direction(model, seed=5, norm="layer", ignore="none")
    weight = D.random_direction(model, seed=5, norm="weight", ignore="none")
    for name, p in trainable(model).items():
        assert layer[name].norm().item() == pytest.approx(p.detach().norm().item(), rel=1e-5)
        torch.testing.assert_close(weight[name], raw[name] * p.detach())
    # normalize_direction is pure.
    raw_copy = {n: t.clone() for n, t in raw.items()}
    D.normalize_direction(raw, {n: p.detach() for n, p in trainable(model).items()}, norm="layer")
    assert all(torch.equal(raw[n], raw_copy[n]) for n in raw)


def test_same_seed_same_raw_direction_across_models():
    a, b = make(0), make(1)
    assert not torch.equal(a.fc.weight, b.fc.weight)
    da = D.random_direction(a, seed=7, norm="none", ignore="none")
    db = D.random_direction(b, seed=7, norm="none", ignore="none")
    dc = D.random_direction(a, seed=8, norm="none", ignore="none")
    assert all(torch.equal(da[n], db[n]) for n in da)
    assert not torch.equal(da["fc.weight"], dc["fc.weight"])
    # Filter-normalized directions of the two models are the same raw draw, rescaled per row.
    fa, fb = D.random_direction(a, seed=7), D.random_direction(b, seed=7)
    cos = torch.nn.functional.cosine_similarity(fa["fc.weight"], fb["fc.weight"], dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_scope_zeroes_out_of_scope_but_keeps_the_same_draw():
    model = make(0)
    full = D.random_direction(model, seed=2)
    head = D.random_direction(model, seed=2, scope="head")
    dec = D.random_direction(model, seed=2, scope="decoder")
    assert set(head) == set(full)
    for name in full:
        if name.startswith("head."):
            assert torch.equal(head[name], full[name])
        else:
            assert not head[name].any()
        if name.startswith("decoder_"):
            assert torch.equal(dec[name], full[name])
        else:
            assert not dec[name].any()
    excl = D.random_direction(model, seed=2, exclude=("fc",))
    assert not excl["fc.weight"].any() and torch.equal(excl["conv.weight"], full["conv.weight"])


def test_frozen_parameters_absent_and_errors():
    model = make(0)
    d = D.random_direction(model, seed=0)
    assert "pos_embed" not in d
    assert set(d) == set(trainable(model))
    with pytest.raises(LandscapeError):
        D.random_direction(model, seed=0, norm="bogus")
    with pytest.raises(LandscapeError):
        D.random_direction(model, seed=0, include=("bias",))  # only biases, which biasbn zeroes
    with pytest.raises(LandscapeError):
        D.random_direction(model, seed=0, scope="nowhere")


def test_dot_norm_flatten_unflatten():
    model = make(0)
    a, b = D.random_direction(model, seed=1), D.random_direction(model, seed=2)
    names = list(a)
    va, vb = D.flatten(a, names), D.flatten(b, names)
    assert D.dot(a, b) == pytest.approx(float(va.double() @ vb.double()), rel=1e-9)
    assert D.norm(a) == pytest.approx(float(va.double().norm()), rel=1e-9)
    back = D.unflatten(va, a)
    assert all(torch.equal(back[n], a[n]) for n in a)
    with pytest.raises(ValueError):
        D.unflatten(va[:-1], a)


def test_orthogonalize():
    model = make(0)
    d1, d2 = D.random_direction(model, seed=1), D.random_direction(model, seed=2)
    o = D.orthogonalize(d2, d1)
    assert abs(D.dot(o, d1)) < 1e-5 * D.norm(o) * D.norm(d1)
    assert D.norm(o) == pytest.approx(D.norm(d2), rel=1e-6)
    plain = D.orthogonalize(d2, d1, keep_norm=False)
    expected = D.flatten(d2) - D.dot(d2, d1) / D.dot(d1, d1) * D.flatten(d1)
    torch.testing.assert_close(D.flatten(plain), expected, rtol=1e-5, atol=1e-6)


def test_interpolation_and_plane_through():
    w0, w1, w2 = (D.model_weights(make(s)) for s in (0, 1, 2))
    d = D.interpolation_direction(w0, w1)
    assert all(torch.equal(d[n], w1[n] - w0[n]) for n in d)
    d1, d2 = D.plane_through(w0, w1, w2)
    coords = D.plane_coordinates([w0, w1, w2], w0, d1, d2)
    torch.testing.assert_close(
        torch.from_numpy(coords), torch.tensor([[0.0, 0], [1, 0], [0, 1]]).double(), atol=1e-5, rtol=0
    )
    o1, o2 = D.plane_through(w0, w1, w2, orthogonal=True)
    assert abs(D.dot(o1, o2)) < 1e-5 * D.norm(o1) * D.norm(o2)
    coords = D.plane_coordinates([w1, w2], w0, o1, o2)
    expected_a = D.dot(D.interpolation_direction(w0, w2), o1) / D.dot(o1, o1)
    torch.testing.assert_close(
        torch.from_numpy(coords), torch.tensor([[1.0, 0], [expected_a, 1]]).double(), atol=1e-5, rtol=0
    )
    with pytest.raises(LandscapeError):
        D.interpolation_direction(w0, {"fc.weight": torch.zeros(3)})


@pytest.mark.parametrize("centered", [True, False])
def test_pca_recovers_a_planar_trajectory(centered):
    gen = torch.Generator().manual_seed(0)
    shapes = {"a.weight": (6, 5), "a.bias": (6,), "b.weight": (3, 2, 2)}
    n = sum(torch.Size(s).numel() for s in shapes.values())
    basis, _ = torch.linalg.qr(torch.randn(n, 2, generator=gen, dtype=torch.float64))
    center_vec = torch.randn(n, generator=gen, dtype=torch.float64)
    ab = torch.randn(8, 2, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    ab[-1] = 0.0  # the final snapshot is the centre
    like = {k: torch.zeros(s) for k, s in shapes.items()}
    snaps = [D.unflatten((center_vec + basis @ c).float(), like) for c in ab]
    d1, d2, coords, explained = D.pca_directions(snaps, centered=centered)
    assert coords.shape == (8, 2) and explained.shape == (2,)
    assert explained.sum() == pytest.approx(1.0, abs=1e-6) and explained[0] >= explained[1]
    v1, v2 = D.flatten(d1, shapes).double(), D.flatten(d2, shapes).double()
    assert v1.norm().item() == pytest.approx(1.0, abs=1e-5) and abs(float(v1 @ v2)) < 1e-5
    # The recovered axes span the known plane.
    proj = basis @ (basis.T @ torch.stack([v1, v2], dim=1))
    torch.testing.assert_close(proj, torch.stack([v1, v2], dim=1), atol=1e-5, rtol=0)
    # Coordinates reproduce the snapshots.
    center = D.flatten(snaps[-1], shapes).double()
    for s, snap in enumerate(snaps):
        rebuilt = center + coords[s, 0] * v1 + coords[s, 1] * v2
        torch.testing.assert_close(rebuilt, D.flatten(snap, shapes).double(), atol=1e-4, rtol=0)


def test_pca_explained_variance_and_errors():
    gen = torch.Generator().manual_seed(1)
    like = {"w": torch.zeros(50)}
    pts = torch.randn(10, 3, generator=gen, dtype=torch.float64) * torch.tensor([4.0, 2.0, 0.5], dtype=torch.float64)
    pts -= pts.mean(0)
    basis, _ = torch.linalg.qr(torch.randn(50, 3, generator=gen, dtype=torch.float64))
    snaps = [D.unflatten((basis @ p).float(), like) for p in pts]
    _, _, _, explained = D.pca_directions(snaps, center={"w": torch.zeros(50)})
    sv = torch.linalg.svdvals(pts) ** 2
    torch.testing.assert_close(torch.from_numpy(explained), (sv[:2] / sv.sum()), atol=1e-5, rtol=0)
    with pytest.raises(LandscapeError):
        D.pca_directions(snaps[:2])
    line = [{"w": torch.full((50,), float(t))} for t in range(4)]
    with pytest.raises(LandscapeError):
        D.pca_directions(line)
