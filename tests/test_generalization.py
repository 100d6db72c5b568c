"""Tests for core.studies.generalization (the label-efficiency study on micro models) and the `finetune` /
`generalization` commands (core/app/generalization_cli.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import torch
from conftest import tiny_train_config

from core.app.cli import main
from core.errors import LandscapeError
from core.models.checkpoints import load_checkpoint
from core.models.finetune import FinetuneConfig
from core.models.objectives import ObjectiveSpec, build_objective
from core.models.train import checkpoint_path, train_model
from core.report.findings import Findings, premise_estimates, render_markdown
from core.report.verdicts import claim_verdict, paired
from core.studies.generalization import (
    KINDS,
    StudyResult,
    flatness_gap_claim,
    premise_claim,
    quick_study,
    run_study,
)

SPEC = quick_study(
    seeds=2,
    budgets=(2, None),
    finetune=FinetuneConfig(epochs=2, steps_per_epoch=3, batch_size=8, warmup_epochs=1),
    flat_samples=16,
    flat_iter=4,
    flat_probes=2,
    sharpness_samples=2,
    device="cpu",
)


@pytest.fixture(scope="module")
def study(trained_ckpts, tmp_path_factory) -> tuple[StudyResult, dict]:
    """The micro study: seed 0 on the session checkpoints, seed 1 on two one-epoch runs, in a private cache."""
    cache = tmp_path_factory.mktemp("generalization_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(cache))
        ckpts = {(k, 0): str(trained_ckpts[k]) for k in ("mae", "rcmae")}
        for k in ("mae", "rcmae"):
            cfg = tiny_train_config(k, seed=1, epochs=1, max_train=64, batch_size=16, n_snapshots=2)
            ckpts[k, 1] = str(train_model(cfg, device="cpu"))
        result = run_study(SPEC, ckpts=ckpts, log=lambda m: None)
        again = run_study(SPEC, ckpts=ckpts, log=lambda m: None, cached_only=True)
    return result, {"ckpts": ckpts, "cache": cache, "again": again}


def test_every_run_is_there_with_the_same_images_per_budget_and_seed(study):
    result, _ = study
    assert len(result.runs) == 2 * 2 * 3
    for budget in SPEC.budgets:
        for seed in (0, 1):
            metas = {
                r.kind: load_checkpoint(r.path).meta["finetune"]
                for r in result.runs
                if r.budget == budget and r.seed == seed
            }
            assert set(metas) == set(KINDS)
            assert len({json.dumps(m["subset"], sort_keys=True) for m in metas.values()}) == 1
            assert len({m["seen_sha256"] for m in metas.values()}) == 1
            assert {m["steps"] for m in metas.values()} == {SPEC.finetune.steps}
            assert metas["scratch"]["from_scratch"] and not metas["mae"]["from_scratch"]
            assert metas["rcmae"]["base"]["kind"] == "rcmae" and metas["rcmae"]["base"]["use"] == "teacher"
    two = [r for r in result.runs if r.budget == 2]
    assert {r.summary["n_labels"] for r in two} == {8}  # 2 per class, 4 classes
    for r in result.runs:
        for split in ("labeled", "val"):
            assert set(r.flatness[split]) == {"lambda_max", "trace", "sharpness"}
            assert all(math.isfinite(v) for v in r.flatness[split].values())


def test_flatness_reads_the_same_images_for_every_model(study):
    result, _ = study
    runs = {r.kind: r for r in result.runs if r.budget == 2 and r.seed == 1}
    spec = ObjectiveSpec(loss="supervised", split="labeled", samples=SPEC.flat_samples)
    xs = [build_objective(load_checkpoint(runs[k].path), spec, "cpu").x for k in KINDS]
    for x in xs[1:]:
        assert torch.equal(x, xs[0])
    assert len(xs[0]) == 8


def test_cells_verdicts_and_correlations(study):
    result, _ = study
    for budget in SPEC.budgets:
        sc = result.values("scratch", budget, "val_acc")
        assert len(sc) == 2
        # the premise's rule at one budget: each pre-trained kind vs scratch paired by seed, Holm over the two
        estimates = [
            paired(e.name, result.values(k, budget, "val_acc"), sc, "higher", e.margin)
            for k, e in zip(("mae", "rcmae"), result.budget_estimates(budget), strict=True)
        ]
        assert result.budget_verdict(budget) == claim_verdict(estimates).verdict
    # the premise: the mean over budgets, by seed
    assert result.premise() == claim_verdict(premise_estimates(result.accuracy()))
    corr = result.correlations()
    assert len(corr) == 2 * 3 * 2  # splits x numbers x gaps
    for c in corr:
        assert c["n"] == 12 and len(c["x"]) == len(c["y"]) == 12
        assert math.isnan(c["p_spearman"]) or 0.0 < c["p_spearman"] <= 1.0
    d = result.to_dict()
    json.dumps(d)
    assert {c["budget"] for c in d["cells"]} == {"2", "all"} and len(d["cells"]) == 6
    cell = next(c for c in d["cells"] if c["budget"] == "2" and c["kind"] == "mae")
    assert cell["val_acc"]["values"] == list(result.values("mae", 2, "val_acc"))
    assert set(d["verdicts"]) == {"2", "all", "premise (mean over budgets)"} and "semi-supervised" in d["note"]
    table = result.format_table()
    assert "MAE-FT" in table and "RC-MAE-FT" in table and "scratch" in table and "all" in table


def test_the_claims_render(study):
    result, _ = study
    premise, follow = premise_claim(result), flatness_gap_claim(result)
    # one primary per pre-trained kind (the mean over budgets), the per-budget rows shown
    assert [r.name for r in premise.primary_rows()] == ["validation accuracy, mean over the 2 budgets"] * 2
    a, b = premise.judgement, result.premise()
    assert (a.verdict, a.n, a.seeds_needed) == (b.verdict, b.n, b.seeds_needed)
    assert [(j.estimate.estimate, j.estimate.lo, j.p_adjusted) for j in a.judged] == [
        (j.estimate.estimate, j.estimate.lo, j.p_adjusted) for j in b.judged
    ]
    md = render_markdown(Findings("t", "cmd", (), (premise, follow)))
    assert "## 1. Premise: self-supervised pre-training generalizes better" in md
    assert "### Correlation with the generalization gap" in md and "± " in md
    assert "| 2 |" in md and "| all |" in md and "semi-supervised" in md


def test_the_premise_figures(study, tmp_path):
    from core.studies.generalization import premise_figures, study_series

    result, _ = study
    figs = premise_figures(result, tmp_path / "figures", "figures/")
    assert [link for _, link in figs] == [f"figures/premise_{s}.html" for s in ("label_efficiency", "gap")] or all(
        link.endswith(".png") for _, link in figs
    )
    for _, link in figs:
        assert (tmp_path / link).stat().st_size > 0
    s = study_series(result, "val_acc")
    assert s["mae"]["mean"][0] == pytest.approx(sum(result.values("mae", 2, "val_acc")) / SPEC.seeds)
    md = render_markdown(Findings("t", "cmd", (), (dataclasses.replace(premise_claim(result), figures=figs),)))
    assert "[Label efficiency: validation accuracy vs labels per class, every seed](figures/premise_" in md


def test_cached_only_returns_what_exists(study):
    result, extra = study
    assert extra["again"].to_dict() == result.to_dict()
    empty = run_study(dataclasses.replace(SPEC, seeds=1), ckpts={}, cached_only=True, log=lambda m: None)
    assert empty.runs == () or all(r.seed == 0 for r in empty.runs)


def test_a_budget_larger_than_the_data_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    with pytest.raises(LandscapeError, match="more than the data has"):
        run_study(dataclasses.replace(SPEC, budgets=(2, 10_000)), log=lambda m: None)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "finetune").exists()


# --------------------------------------------------------------------------------------------------------------------
# CLI


def test_cli_finetune_json_and_errors(trained_ckpts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    args = ["finetune", str(trained_ckpts["mae"]), "--labels-per-class", "2", "--epochs", "1", "--device", "cpu"]
    assert main([*args, "--steps-per-epoch", "2", "--json"]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    s = json.loads(lines[-2])
    for k in ("val_acc", "val_loss", "train_acc", "train_loss", "gap_acc", "gap_loss", "n_labels", "steps"):
        assert k in s
    assert s["n_labels"] == 8 and s["steps"] == 2 and not s["from_scratch"]
    assert lines[-1] == s["path"] and load_checkpoint(lines[-1]).kind == "sup"
    assert "validation accuracy" in out.err
    assert main([*args, "--steps-per-epoch", "2", "--from-scratch"]) == 0
    assert "scratch" in capsys.readouterr().out.strip().splitlines()[-1]
    for bad, match in (
        (["finetune", str(trained_ckpts["probe"])], "not an encoder checkpoint"),
        ([*args[:2], "--labels-per-class", "10000", "--device", "cpu"], "more than the data has"),
        (["finetune", str(tmp_path / "missing.pt")], "not found"),
    ):
        assert main(bad) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and match in err[0]
    with pytest.raises(SystemExit) as e:
        main([*args[:2], "--labels-per-class", "0"])
    assert e.value.code == 2


def test_cli_generalization_quick(trained_ckpts, tmp_path, monkeypatch, capsys):
    """With the quick pre-training runs already in the cache (copies of the session checkpoints)."""
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    for k in ("mae", "rcmae"):
        target = checkpoint_path(quick_study().train_config(k, 0))
        assert target.name == trained_ckpts[k].name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(trained_ckpts[k], target)
    argv = ["generalization", "--quick", "--seeds", "1", "--budgets", "2", "--epochs", "1", "--no-flatness"]
    assert main([*argv, "--json", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Label efficiency: synthetic, preset micro, 1 seed(s)")
    d = json.loads(lines[-2])
    assert len(d["runs"]) == 3 and {c["budget"] for c in d["cells"]} == {"2"}
    assert json.loads((tmp_path / lines[-1]).read_text()) == d
    assert main(["generalization", "--quick", "--budgets", "10000", "--device", "cpu"]) == 1
    assert "more than the data has" in capsys.readouterr().err
