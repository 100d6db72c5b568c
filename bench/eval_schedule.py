"""Time spent on evaluation in a long pre-training run: every epoch (before) against the schedule of
`core.models.train.eval_epochs` (after), the same run twice in one invocation, each on an empty cache.

    python bench/eval_schedule.py [--kind mae] [--epochs 300] [--quick]

Prints, for each schedule, the evaluations, the seconds spent training and evaluating (from the checkpoint's history:
`time_s` and `eval_s` per epoch), the fraction of the run spent on evaluation, and the ratio of the two fractions and
of the two total times (the machines are shared: compare the ratios, not the seconds). The weights of the two runs
must be identical (the schedule changes no number it does not skip); the script exits 1 if they are not.
`--quick`: the micro model on synthetic data for 120 epochs (seconds), a smoke test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402  (after the path: the bench runs from a checkout)

from core.models.checkpoints import load_checkpoint  # noqa: E402
from core.models.train import TrainConfig, eval_epochs, train_model  # noqa: E402


def one(cfg: TrainConfig, schedule: str, folder: Path) -> tuple[float, float, int, dict]:
    """(training seconds, evaluation seconds, evaluations, weights) of one run."""
    path = train_model(cfg, device="cpu", path=folder / f"{schedule}.pt", eval_schedule=schedule)
    ck = load_checkpoint(path)
    hist = ck.meta["history"]
    train = sum(h["time_s"] for h in hist)
    ev = sum(h.get("eval_s", 0.0) for h in hist)
    n = sum("val_loss" in h for h in hist)
    return train, ev, n, ck.model.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="mae", choices=("mae", "rcmae", "sup"))
    ap.add_argument("--epochs", type=int, default=300, help="the run's epochs (default 300: the ROI ladder's top)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the study's workers)")
    ap.add_argument("--quick", action="store_true", help="micro model, synthetic data, 120 epochs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.quick:
        cfg = TrainConfig(a.kind, data="synthetic", preset="micro", epochs=120, batch_size=32, warmup_epochs=1)
    else:
        cfg = TrainConfig(a.kind, epochs=a.epochs)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as d:
        os.environ["LANDSCAPE_CACHE_DIR"] = d
        t_every, e_every, n_every, w_every = one(cfg, "every", Path(d))
        t_sparse, e_sparse, n_sparse, w_sparse = one(cfg, "sparse", Path(d))
    same = w_every.keys() == w_sparse.keys() and all(torch.equal(w_every[k], w_sparse[k]) for k in w_every)
    f_every = e_every / (t_every + e_every)
    f_sparse = e_sparse / (t_sparse + e_sparse)
    assert n_sparse == len(eval_epochs(cfg.epochs))
    print(f"{cfg.kind}, {cfg.preset}, {cfg.data}, {cfg.epochs} epochs, {a.threads} thread(s)")
    print(f"every epoch: {n_every} evaluations, training {t_every:.1f} s, evaluation {e_every:.1f} s: {f_every:.1%}")
    print(
        f"schedule:    {n_sparse} evaluations, training {t_sparse:.1f} s, evaluation {e_sparse:.1f} s: {f_sparse:.1%}"
    )
    total = (t_every + e_every) / (t_sparse + e_sparse)
    print(
        f"evaluation's share x{f_every / f_sparse:.2f} smaller; the run x{total:.2f} faster; identical weights: {same}"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
