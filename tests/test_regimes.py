"""Tests for core.studies.regimes: claim 2 over teacher momentum x training length, on micro models (a few seconds)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import LandscapeError
from core.models.checkpoints import load_checkpoint
from core.models.objectives import ObjectiveSpec, build_objective
from core.models.train import ProbeConfig
from core.report.findings import Findings, render_markdown
from core.report.verdicts import CLAIM_VERDICTS, holm, verdict_of
from core.studies.measuring import ReproduceSpec
from core.studies.regimes import (
    REGIME_TITLE,
    key_numbers,
    regime_figure,
    regime_figures,
    regime_markdown,
    run_regimes,
)
from core.studies.reproduce import command_line, quick_spec

# The smallest grid that still has every part: 2 seeds (a spread), 2 momenta, 2 lengths (1 and 2 epochs).
SPEC = replace(
    quick_spec(seeds=2),
    epochs=1,
    n_snapshots=2,
    grid=3,
    samples=8,
    hessian_iter=2,
    trace_probes=2,
    probe=ProbeConfig(epochs=2, batch_size=64),
    device="cpu",
)
MOMENTA = ("auto", 0.996)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path_factory.mktemp("regimes") / "cache"))
        rr = run_regimes(SPEC, logs.append, momenta=MOMENTA, factors=(1, 2))
    return rr, logs


def test_every_cell_trains_its_own_regime(grid):
    rr, logs = grid
    assert [(c.momentum, c.epochs) for c in rr.cells] == [("auto", 1), (0.996, 1), ("auto", 2), (0.996, 2)]
    assert rr.lengths == (1, 2) and rr.momenta == MOMENTA and rr.seeds == (0, 1)
    auto = 0.996 ** (312 / 12)  # synthetic: 410 training images, batch 32: 12 steps per epoch
    for cell in rr.cells:
        r = cell.results
        assert cell.resolved == pytest.approx(auto if cell.momentum == "auto" else 0.996, rel=1e-12)
        for s in rr.seeds:
            rc = load_checkpoint(r.ckpts["rcmae", s]).meta["train"]
            assert (rc["ema_momentum"], rc["epochs"], rc["seed"]) == (cell.momentum, cell.epochs, s)
            assert rc["ema_momentum_resolved"] == pytest.approx(cell.resolved)
            assert len(r.histories["mae", s]) == len(r.histories["rcmae", s]) == cell.epochs
            assert load_checkpoint(r.ckpts["mae", s]).meta["train"]["epochs"] == cell.epochs
    # one MAE baseline per length and seed, shared by the momenta; the RC-MAE runs are all different
    a, b = rr.cell("auto", 1).results, rr.cell(0.996, 1).results
    assert a.ckpts["mae", 0] == b.ckpts["mae", 0] != rr.cell("auto", 2).results.ckpts["mae", 0]
    assert len({c.results.ckpts["rcmae", s] for c in rr.cells for s in rr.seeds}) == 8
    assert any("regimes: 2 epochs, m 0.996:" in line for line in logs)


def test_cells_are_judged_on_the_mae_loss_by_the_claim_rule(grid):
    rr, _ = grid
    for cell in rr.cells:
        pre, probe, conv = cell.claim.tables
        assert (pre.a_label, pre.b_label) == ("RC-MAE", "MAE") and conv.title.startswith("Convergence")
        # The pre-training landscape of RC-MAE is its MAE term (the same function as MAE's): its centre is the
        # MAE loss of the student, not the full objective with the consistency term.
        centre = next(row for row in pre.rows if row.name == "loss at the centre")
        for s, value in zip(rr.seeds, centre.a, strict=True):
            ck = load_checkpoint(cell.results.ckpts["rcmae", s])
            # seed s measures with seed s's images and masks (ReproduceSpec.at_seed)
            spec = ObjectiveSpec(loss="pretrain", samples=SPEC.samples, rcmae_terms="mae", data_seed=s, mask_seed=s)
            obj = build_objective(ck, spec, "cpu")
            assert value == pytest.approx(obj.evaluate(obj.module)["loss"], rel=1e-5)
            full = build_objective(ck, replace(spec, rcmae_terms="full"), "cpu")
            assert full.evaluate(full.module)["loss"] > value  # the consistency term is there, and left out
        # claim 2's three primaries decide the cell: the slice's convex fraction (pre-training, probe) and the epochs
        # to the shared loss; the others are shown
        names = [r.name for r in cell.claim.primary_rows()]
        assert len(names) == 3 and names[0] == names[1] == "convex fraction of the slice"
        assert names[2].startswith("epochs to reach validation pre-training loss")
        assert cell.verdict in CLAIM_VERDICTS
    # Holm runs over every primary of the grid (one family), and each cell's verdict comes from its own three.
    primaries = [r.estimate for c in rr.cells for r in c.claim.primary_rows()]
    adjusted = holm([e.p for e in primaries])
    for i, cell in enumerate(rr.cells):
        j = cell.judgement
        assert [x.p_adjusted for x in j.judged] == pytest.approx(list(adjusted[3 * i : 3 * i + 3]), nan_ok=True)
        assert j == verdict_of(j.judged)


def test_the_table_and_the_figure(grid, tmp_path):
    rr, _ = grid
    figures = regime_figures(rr, tmp_path / "figures", "figures/")
    assert len(figures) == 1 and (tmp_path / figures[0][1]).is_file()
    md = regime_markdown(rr, figures)
    rows = [line for line in md.splitlines() if line.startswith(("| auto", "| 0.9"))]
    assert len(rows) == len(rr.cells)
    auto = rr.cells[0].resolved
    assert rows[0].startswith(f"| auto ({auto:.4g}) | 1 | **") and rows[1].startswith("| 0.996 | 1 | **")
    for row, cell in zip(rows, rr.cells, strict=True):
        assert f"**{cell.verdict_text()}**" in row and "epochs to the shared loss " in row
        assert "convex fraction, pre-training loss: " in row and "convex fraction, linear-probe loss: " in row
        a, b = key_numbers(cell)["final validation MAE loss"]
        assert len(a) == len(b) == 2 and " ± " in row  # two seeds: a spread
    assert "Busbridge et al. 2023" in md and "MAE reconstruction loss" in md and "Across the grid:" in md
    assert "Landscapes on a 3x3 grid" in md and rr.grid == 3
    fig = regime_figure(rr)
    assert len(fig.data) == 4 * len(rr.lengths)  # 4 numbers, one trace per length
    assert all(len(t.x) == 1 + len(rr.momenta) and t.error_y.array is not None for t in fig.data)


def test_a_coarser_regime_grid_is_an_option():
    from core.studies.regimes import cell_spec

    assert (cell_spec(SPEC, 2).epochs, cell_spec(SPEC, 2).grid) == (2, SPEC.grid)
    coarse = replace(quick_spec(), grid=9, regime_grid=5)
    assert (cell_spec(coarse, 6).grid, cell_spec(coarse, 6).epochs, cell_spec(coarse, 6).seeds) == (5, 6, 2)
    assert "--regime-grid 5" in command_line(coarse)


def test_the_report_hook():
    text = render_markdown(
        Findings(title="T", command="c", setup=(), claims=(), sections=((REGIME_TITLE, "the grid table"),))
    )
    assert f"## {REGIME_TITLE}\n\nthe grid table" in text
    assert "--no-regimes" in command_line(replace(SPEC, regimes=False)) and "regimes" not in command_line(SPEC)


def test_the_default_regime_grid_is_nested_and_stated():
    full = ReproduceSpec()
    assert (full.grid, full.cell_grid) == (33, 17) and (full.grid - 1) % (full.cell_grid - 1) == 0
    assert "--regime-grid" not in command_line(full)
    assert "--regime-grid 33" in command_line(replace(full, regime_grid=0))
    assert replace(full, grid=9).cell_grid == 9  # never finer than the report's grid
    assert replace(full, grid=21).cell_grid == 21  # 17 does not nest in 21: the cells would not share its points
    for bad in (4, 2, -1):
        with pytest.raises(LandscapeError, match="--regime-grid"):
            replace(full, regime_grid=bad)
