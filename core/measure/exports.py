"""Landscape files other tools read: the reference loss-landscape tool's HDF5 surface layout and VTK PolyData (.vtp)
for ParaView.

HDF5 (`FILE.h5`), as tomgoldstein/loss-landscape's `plot_surface.py` writes it and its `plot_1D.py`, `plot_2D.py` and
`h52vtp.py` read it:
- `xcoordinates` (nx,), and for a surface `ycoordinates` (ny,);
- `train_loss` shaped (nx, ny) for a surface, (nx,) for a curve; `train_acc` the same, only where the loss has labels.
  The reference fills `train_loss.ravel()[i]` with the loss at `meshgrid(xcoordinates, ycoordinates)[k].ravel()[i]`,
  i.e. its flat order runs over x fastest: the flat order of our (ny, nx) arrays. So the values are written in that
  flat order under the reference's shape (for the square grids this project makes, the array is ours as it is:
  `train_loss[j, i]` is the loss at (x_i, y_j), as the reference's readers take it).
- the result's meta as JSON in the file's `meta` attribute. The name `train_loss` is the reference's, kept so its
  scripts run unchanged; which images it is the loss of (`split`, `samples`) is in the meta.

VTK (`FILE.vtp`): the surface as an ASCII PolyData of (x, y, loss) points joined by quads, with `zvalue` per point and
`averaged zvalue` per quad, as `h52vtp.py` writes it, plus `acc` where defined and `finite` (0 where a point was not
finite; its height is then the largest finite loss, as ParaView cannot draw a NaN height).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core.errors import LandscapeError
from core.store import atomic_write_bytes, ensure_folder

EXPORT_FORMATS = (".h5", ".vtp")


def export_landscape(
    xs: np.ndarray,
    ys: np.ndarray,
    loss: np.ndarray,
    acc: np.ndarray | None,
    meta: dict[str, Any],
    out: str | os.PathLike,
) -> Path:
    """Write a surface (loss (ny, nx)) or curve (loss (nx,)) to FILE.h5 or FILE.vtp (atomically).

    Raises:
        LandscapeError: another suffix, a curve asked for as .vtp, or arrays whose shapes do not fit.
    """
    out = Path(out)
    xs, ys, loss = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64), np.asarray(loss)
    acc = None if acc is None else np.asarray(acc)
    want = (len(xs),) if loss.ndim == 1 else (len(ys), len(xs))
    if loss.shape != want or (acc is not None and acc.shape != loss.shape):
        raise LandscapeError(f"landscape arrays do not fit: loss {loss.shape}, expected {want}")
    ensure_folder(out.parent)
    if out.suffix == ".h5":
        atomic_write_bytes(out, _h5_bytes(xs, ys, loss, acc, meta))
    elif out.suffix == ".vtp":
        if loss.ndim != 2:
            raise LandscapeError("a .vtp file needs a 2-D surface (--dim 2); write a 1-D curve to .h5, .npz or .csv")
        atomic_write_bytes(out, vtp_text(xs, ys, loss, acc).encode())
    else:
        raise LandscapeError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {out.name}")
    return out


def _h5_bytes(xs, ys, loss, acc, meta) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["xcoordinates"] = xs
        if loss.ndim == 2:
            f["ycoordinates"] = ys
            # Same flat order (x fastest), the reference's declared shape (len(x), len(y)).
            f["train_loss"] = np.ascontiguousarray(loss, dtype=np.float64).reshape(len(xs), len(ys))
            if acc is not None:
                f["train_acc"] = np.ascontiguousarray(acc, dtype=np.float64).reshape(len(xs), len(ys))
        else:
            f["train_loss"] = loss.astype(np.float64)
            if acc is not None:
                f["train_acc"] = acc.astype(np.float64)
        f.attrs["meta"] = json.dumps({k: v for k, v in meta.items() if k != "nan_ids"}, default=str)
        f.attrs["layout"] = "tomgoldstein/loss-landscape surface file"
    return buf.getvalue()


def vtp_text(xs: np.ndarray, ys: np.ndarray, loss: np.ndarray, acc: np.ndarray | None = None) -> str:
    """The VTK XML PolyData text of a surface loss[j, i] at (xs[i], ys[j]): points, quads, per-point and per-quad
    values."""
    nx, ny = len(xs), len(ys)
    finite = np.isfinite(loss)
    top = float(loss[finite].max()) if finite.any() else 0.0
    z = np.where(finite, loss, top).astype(np.float64)
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx): point k = j * nx + i, as h52vtp.py numbers them
    pts = np.stack([gx.ravel(), gy.ravel(), z.ravel()], axis=1)
    corners = [j * nx + i for j in range(ny - 1) for i in range(nx - 1)]
    quads = [(k, k + 1, k + nx + 1, k + nx) for k in corners]
    cell_z = [float(z.ravel()[list(q)].mean()) for q in quads]

    def floats(v) -> str:
        return " ".join(repr(float(a)) for a in np.asarray(v).ravel())

    def array(name: str, values, kind: str = "Float64", comps: int = 1) -> str:
        return (
            f'        <DataArray type="{kind}" Name="{name}" NumberOfComponents="{comps}" format="ascii">\n'
            f"          {values}\n        </DataArray>\n"
        )

    point_data = array("zvalue", floats(z)) + array("finite", " ".join(str(int(b)) for b in finite.ravel()), "UInt8")
    if acc is not None:
        point_data += array("acc", floats(np.where(np.isfinite(acc), acc, 0.0)))
    conn = " ".join(str(k) for q in quads for k in q)
    offsets = " ".join(str(4 * (n + 1)) for n in range(len(quads)))
    return (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        "  <PolyData>\n"
        f'    <Piece NumberOfPoints="{nx * ny}" NumberOfVerts="0" NumberOfLines="0" NumberOfStrips="0" '
        f'NumberOfPolys="{len(quads)}">\n'
        f"      <PointData>\n{point_data}      </PointData>\n"
        f"      <CellData>\n{array('averaged zvalue', floats(cell_z))}      </CellData>\n"
        f"      <Points>\n{array('Points', floats(pts), comps=3)}      </Points>\n"
        f"      <Polys>\n{array('connectivity', conn, 'Int64')}{array('offsets', offsets, 'Int64')}      </Polys>\n"
        "    </Piece>\n  </PolyData>\n</VTKFile>\n"
    )


def export_entry(arrays: dict[str, np.ndarray], meta: dict[str, Any], out: str | os.PathLike) -> Path:
    """`cache export HASH FILE.h5|FILE.vtp` of a finished landscape entry (its saved arrays and meta).

    Raises:
        LandscapeError: an entry that is not a landscape (no xs / loss arrays).
    """
    if "xs" not in arrays or "loss" not in arrays:
        raise LandscapeError("only landscape entries export to .h5 / .vtp (this entry has no xs / loss arrays)")
    ys = arrays.get("ys", np.zeros(0))
    return export_landscape(arrays["xs"], ys, arrays["loss"], arrays.get("acc"), meta, out)
