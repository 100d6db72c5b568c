"""Tests for core.measure.exports: the reference loss-landscape tool's h5 surface layout (read back with its readers'
logic) and the .vtp PolyData, from `landscape --out` and `cache export`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

from core.app.cli import main
from core.errors import LandscapeError
from core.measure import export_landscape


def _surface(nx: int, ny: int):
    xs, ys = np.linspace(-1, 1, nx), np.linspace(-0.5, 0.5, ny)
    loss = xs[None, :] + 10 * ys[:, None]  # (ny, nx), ours: loss[j, i] at (x_i, y_j); x and y told apart
    return xs, ys, loss, loss / 100


@pytest.mark.parametrize(("nx", "ny"), [(5, 5), (3, 4)])
def test_h5_reads_back_as_the_reference_tool_reads_it(tmp_path, nx, ny):
    xs, ys, loss, acc = _surface(nx, ny)
    out = export_landscape(xs, ys, loss, acc, {"grid": nx}, tmp_path / "s.h5")
    with h5py.File(out, "r") as f:
        assert f["train_loss"].shape == (nx, ny) and f["train_acc"].shape == (nx, ny)  # plot_surface.py's shape
        x, y, z = f["xcoordinates"][:], f["ycoordinates"][:], f["train_loss"][:]
        assert json.loads(f.attrs["meta"]) == {"grid": nx}
    # h52vtp.py / scheduler.py: value k of the flat array is at meshgrid(x, y)[.].ravel()[k]
    gx, gy = np.meshgrid(x, y)
    np.testing.assert_allclose(z.ravel(), gx.ravel() + 10 * gy.ravel())
    if nx == ny:  # plot_2D.py: contour(X, Y, Z) with X, Y = meshgrid(x, y)
        np.testing.assert_allclose(z, gx + 10 * gy)


def test_h5_curve_and_no_acc(tmp_path):
    xs = np.linspace(-1, 1, 7)
    out = export_landscape(xs, np.zeros(0), xs**2, None, {}, tmp_path / "c.h5")
    with h5py.File(out, "r") as f:
        assert set(f.keys()) == {"xcoordinates", "train_loss"} and f["train_loss"].shape == (7,)
    with pytest.raises(LandscapeError, match="2-D"):
        export_landscape(xs, np.zeros(0), xs**2, None, {}, tmp_path / "c.vtp")


def test_vtp_is_a_quad_surface(tmp_path):
    xs, ys, loss, acc = _surface(4, 3)
    loss[1, 2] = np.nan
    root = ET.parse(export_landscape(xs, ys, loss, acc, {}, tmp_path / "s.vtp")).getroot()
    piece = root.find("PolyData/Piece")
    assert (piece.get("NumberOfPoints"), piece.get("NumberOfPolys")) == ("12", "6")
    pts = np.array(piece.find("Points/DataArray").text.split(), dtype=float).reshape(-1, 3)
    finite = np.isfinite(loss.ravel())
    np.testing.assert_allclose(pts[finite, 2], loss.ravel()[finite])
    np.testing.assert_allclose(pts[:, 0], np.tile(xs, 3))
    arrays = {a.get("Name"): a.text.split() for a in piece.iter("DataArray")}
    assert arrays["finite"][6] == "0" and arrays["connectivity"][:4] == ["0", "1", "5", "4"]


def test_landscape_out_and_cache_export(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ViTMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    cfg.update(dict(image_size=16, patch_size=4, num_channels=1, decoder_hidden_size=16, decoder_num_hidden_layers=1))
    cfg.update(dict(decoder_num_attention_heads=2, decoder_intermediate_size=32))
    transformers.ViTMAEForPreTraining(cfg).save_pretrained(tmp_path / "m")
    args = ["landscape", str(tmp_path / "m"), "--data", "synthetic", "--grid", "3", "--samples", "4"]
    assert main([*args, "--out", str(tmp_path / "l.h5")]) == 0
    with h5py.File(tmp_path / "l.h5", "r") as f:
        assert f["train_loss"].shape == (3, 3) and "train_acc" not in f  # no labels in an MAE loss
        assert np.isfinite(f["train_loss"][:]).all()
    capsys.readouterr()
    assert main(["cache", "list", "--kind", "landscape"]) == 0
    key = capsys.readouterr().err.split()[1]
    assert main(["cache", "export", key, str(tmp_path / "e.vtp"), "--kind", "landscape"]) == 0
    assert ET.parse(tmp_path / "e.vtp").getroot().find("PolyData/Piece").get("NumberOfPolys") == "4"
