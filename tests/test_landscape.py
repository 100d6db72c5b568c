import numpy as np
import pytest
import torch
from torch import nn

import core.geometry.landscape as L
from core.errors import LandscapeError


class LinearModel(nn.Module):
    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3, dtype=dtype)
        self.frozen = nn.Parameter(torch.randn(4, dtype=dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MSE:
    """loss_fn(model) -> scalar: MSE of the model on fixed data; counts calls."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 5, generator=gen, dtype=torch.float64).to(dtype)
        self.y = torch.randn(16, 3, generator=gen, dtype=torch.float64).to(dtype)
        self.calls = 0

    def __call__(self, model: nn.Module) -> torch.Tensor:
        self.calls += 1
        return ((model(self.x) - self.y) ** 2).mean()


def setup(seed: int = 0, dtype: torch.dtype = torch.float32):
    torch.manual_seed(seed)
    model = LinearModel(dtype).eval()
    gen = torch.Generator().manual_seed(seed + 100)
    d1 = {"fc.weight": torch.randn(3, 5, generator=gen), "fc.bias": torch.randn(3, generator=gen)}
    d2 = {"fc.weight": torch.randn(3, 5, generator=gen), "fc.bias": torch.zeros(3)}  # zero tensor is skipped
    return model, MSE(dtype), d1, d2


def closed_form(model, loss, d1, d2, a, b):
    # MSE of a linear model is exactly quadratic in (a, b): mean((r + a s1 + b s2)^2), computed in float64.
    w = model.fc.weight.detach().double().numpy()
    bias = model.fc.bias.detach().double().numpy()
    x, y = loss.x.double().numpy(), loss.y.double().numpy()
    r = x @ w.T + bias - y
    s1 = x @ d1["fc.weight"].double().numpy().T + d1["fc.bias"].double().numpy()
    s2 = x @ d2["fc.weight"].double().numpy().T + d2["fc.bias"].double().numpy()
    a, b = np.asarray(a)[..., None, None], np.asarray(b)[..., None, None]
    return ((r + a * s1 + b * s2) ** 2).mean(axis=(-2, -1))


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same(model, snap):
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), snap[n]), n


def test_grid_axis():
    np.testing.assert_array_equal(L.grid_axis(1.0, 5), [-1, -0.5, 0, 0.5, 1])
    assert L.grid_axis(0.5, 5).dtype == np.float64
    np.testing.assert_array_equal(L.grid_axis(1.0, 1), [0.0])
    with pytest.raises(LandscapeError):
        L.grid_axis(1.0, 0)
    with pytest.raises(LandscapeError):
        L.grid_axis(-1.0, 3)


@pytest.mark.parametrize("n", list(range(1, 20)) + [33])
def test_nested_order_covers_every_index_once(n):
    order = L.nested_order(n)
    assert sorted(order.tolist()) == list(range(n))
    assert len(L.nested_levels(n)) == n


def test_nested_order_prefixes_are_coarse_grids():
    order = L.nested_order(17)
    assert order[0] == 8  # centre first
    for m in (3, 5, 9, 17):
        step = 16 // (m - 1)
        assert set(order[:m].tolist()) == set(range(0, 17, step))
    levels = L.nested_levels(9)
    assert levels[[0, 4, 8]].tolist() == [0, 0, 0] and levels[[2, 6]].tolist() == [1, 1]
    assert levels[[1, 3, 5, 7]].tolist() == [2, 2, 2, 2]
    # Points of the same grid over the same span coincide.
    xs17, xs5 = L.grid_axis(1.0, 17), L.grid_axis(1.0, 5)
    np.testing.assert_array_equal(np.sort(xs17[order[:5]]), xs5)


def test_plane_order():
    nx, ny = 17, 9
    pairs = L.plane_order(nx, ny)
    assert pairs.shape == (nx * ny, 2)
    assert len({tuple(p) for p in pairs.tolist()}) == nx * ny
    assert pairs[:, 0].max() == ny - 1 and pairs[:, 1].max() == nx - 1  # (row over ys, column over xs)
    assert tuple(pairs[0]) == (4, 8)  # centre first
    rows3, cols3 = {0, 4, 8}, {0, 8, 16}
    assert {tuple(p) for p in pairs[:9].tolist()} == {(i, j) for i in rows3 for j in cols3}
    rows5, cols5 = {0, 2, 4, 6, 8}, {0, 4, 8, 12, 16}
    assert {tuple(p) for p in pairs[:25].tolist()} == {(i, j) for i in rows5 for j in cols5}
    # Odd sizes still cover everything once.
    pairs = L.plane_order(6, 4)
    assert sorted(map(tuple, pairs.tolist())) == [(i, j) for i in range(4) for j in range(6)]


def test_evaluate_line_and_plane_match_closed_form():
    model, loss, d1, d2 = setup()
    xs, ys = L.grid_axis(1.0, 9), L.grid_axis(0.5, 5)
    line = L.evaluate_line(model, loss, d1, xs)
    np.testing.assert_allclose(line, closed_form(model, loss, d1, d2, xs, 0 * xs), rtol=1e-5, atol=1e-6)
    plane = L.evaluate_plane(model, loss, d1, d2, xs, ys)
    assert plane.shape == (len(ys), len(xs))
    a, b = np.meshgrid(xs, ys)
    np.testing.assert_allclose(plane, closed_form(model, loss, d1, d2, a, b), rtol=1e-5, atol=1e-6)
    assert loss.calls == len(xs) + len(xs) * len(ys)


def test_non_fp32_parameters():
    model, loss, d1, d2 = setup(dtype=torch.float64)
    snap = snapshot(model)
    xs, ys = L.grid_axis(1.0, 3), L.grid_axis(1.0, 3)
    plane = L.evaluate_plane(model, loss, d1, d2, xs, ys)
    a, b = np.meshgrid(xs, ys)
    np.testing.assert_allclose(plane, closed_form(model, loss, d1, d2, a, b), rtol=1e-6)
    assert_same(model, snap)


def test_parameters_restored_bit_for_bit_and_mode_kept():
    model, loss, d1, d2 = setup()
    model.train()  # the engine must not change the mode, whatever it is
    snap = snapshot(model)
    L.evaluate_plane(model, loss, d1, d2, L.grid_axis(0.7, 5), L.grid_axis(0.3, 5))
    assert_same(model, snap)
    assert model.training

    loss.calls = 0

    def failing(m):
        if loss.calls == 6:
            raise RuntimeError("boom")
        return loss(m)

    with pytest.raises(RuntimeError, match="boom"):
        L.evaluate_plane(model, failing, d1, d2, L.grid_axis(0.7, 5), L.grid_axis(0.3, 5))
    assert_same(model, snap)
    assert all(p.requires_grad for p in model.fc.parameters())


def test_frozen_parameters_never_move():
    model, loss, d1, d2 = setup()
    snap = snapshot(model)
    seen = []
    L.evaluate_line(model, lambda m: (seen.append(m.frozen.detach().clone()), loss(m))[1], d1, [0.5, 1.0])
    assert all(torch.equal(t, snap["frozen"]) for t in seen)
    bad = dict(d1, frozen=torch.ones(4))
    with pytest.raises(LandscapeError, match="frozen"):
        L.evaluate_line(model, loss, bad, [1.0])
    # A zero entry for a frozen parameter is harmless.
    L.evaluate_line(model, loss, dict(d1, frozen=torch.zeros(4)), [1.0])
    with pytest.raises(LandscapeError, match="shape"):
        L.evaluate_line(model, loss, {"fc.weight": torch.ones(2, 2)}, [1.0])


def test_skip_and_on_point_resume_is_bit_identical():
    model, loss, d1, d2 = setup()
    xs, ys = L.grid_axis(1.0, 5), L.grid_axis(1.0, 5)
    full = L.evaluate_plane(model, loss, d1, d2, xs, ys)

    store: dict[int, float] = {}
    n_half = 12
    first = L.evaluate_plane(
        model,
        loss,
        d1,
        d2,
        xs,
        ys,
        on_point=lambda p, v: store.__setitem__(p, v["loss"]),
        check_stop=lambda: len(store) >= n_half,
        return_all=True,
    )
    assert first.stopped and first.n_evaluated == n_half == len(store)
    assert np.isnan(first["loss"]).sum() == 25 - n_half
    # The flat indices of on_point are row-major indices of the returned array.
    for p, v in store.items():
        assert first["loss"].ravel()[p] == v

    first_points = list(store)
    loss.calls = 0
    progress = []
    second = L.evaluate_plane(
        model,
        loss,
        d1,
        d2,
        xs,
        ys,
        skip=list(store),
        on_point=lambda p, v: store.__setitem__(p, v["loss"]),
        progress=lambda done, total: progress.append((done, total)),
    )
    assert loss.calls == 25 - n_half
    assert progress[0] == (n_half, 25) and progress[-1] == (25, 25)
    assert np.isnan(second.ravel()[first_points]).all()  # skipped points are not evaluated
    merged = np.array([store[p] for p in range(25)]).reshape(5, 5)
    np.testing.assert_array_equal(merged, full)


def test_nonfinite_losses_are_nan_and_counted():
    model, loss, _, _ = setup()
    xs = L.grid_axis(1.0, 5)

    def weird(m):
        v = loss(m)
        a = float(m.fc.weight[0, 0].detach()) - loss_center
        if a > 0.3:
            return v * float("inf")
        if a < -0.3:
            return v * float("nan")
        return v

    loss_center = float(model.fc.weight[0, 0].detach())
    d = {"fc.weight": torch.zeros(3, 5), "fc.bias": torch.zeros(3)}
    d["fc.weight"][0, 0] = 1.0
    got = {}
    res = L.evaluate_line(model, weird, d, xs, return_all=True, on_point=lambda p, v: got.__setitem__(p, v["loss"]))
    assert res.n_nonfinite == 4 and res.n_evaluated == 5
    assert np.isnan(res["loss"][[0, 1, 3, 4]]).all() and np.isfinite(res["loss"][2])
    assert all(np.isnan(got[p]) for p in (0, 1, 3, 4))


def test_evaluate_dict_path_records_acc():
    model, loss, d1, d2 = setup()

    class WithAcc:
        def __call__(self, m):
            raise AssertionError("evaluate() must be used when present")

        def evaluate(self, m):
            out = m(loss.x)
            return {"loss": float(((out - loss.y) ** 2).mean()), "acc": float((out.argmax(1) == 0).float().mean())}

    xs, ys = L.grid_axis(1.0, 3), L.grid_axis(1.0, 3)
    res = L.evaluate_plane(model, WithAcc(), d1, d2, xs, ys, return_all=True)
    assert set(res) == {"loss", "acc"} and res["acc"].shape == (3, 3)
    a, b = np.meshgrid(xs, ys)
    np.testing.assert_allclose(res["loss"], closed_form(model, loss, d1, d2, a, b), rtol=1e-5)
    with L.perturbed(model, [d1, d2], [xs[2], ys[0]]):
        expected_acc = float((model(loss.x).argmax(1) == 0).float().mean())
    assert res["acc"][0, 2] == expected_acc


def test_check_stop_aborts_and_restores():
    model, loss, d1, d2 = setup()
    snap = snapshot(model)
    res = L.evaluate_points(model, loss, [d1, d2], np.ones((6, 2)), check_stop=lambda: loss.calls >= 2)
    assert res.stopped and res.n_evaluated == 2
    assert np.isfinite(res["loss"][:2]).all() and np.isnan(res["loss"][2:]).all()
    assert_same(model, snap)
    with pytest.raises(ValueError):
        L.evaluate_points(model, loss, [d1, d2], np.ones((6, 3)))


def test_perturbed_context_manager():
    model, loss, d1, d2 = setup()
    snap = snapshot(model)
    with L.perturbed(model, [d1, d2], [0.5, -2.0]):
        expected = snap["fc.weight"] + 0.5 * d1["fc.weight"] + -2.0 * d2["fc.weight"]
        torch.testing.assert_close(model.fc.weight.detach(), expected)
        value = float(loss(model).detach())
    assert_same(model, snap)
    assert value == pytest.approx(float(closed_form(model, loss, d1, d2, 0.5, -2.0)), rel=1e-5)
    with pytest.raises(KeyError):
        with L.perturbed(model, [d1], [1.0]):
            raise KeyError("x")
    assert_same(model, snap)
    # Gradients can be taken at the perturbed point.
    with L.perturbed(model, [d1], [1.0]):
        loss(model).backward()
    assert model.fc.weight.grad is not None
    assert_same(model, snap)
