"""Measure how long the default models take to train and what they reach; update README's table.

    python bench/train_defaults.py [--threads 2] [--no-readme]

Trains the default trio (`python -m core train --model {mae,rcmae,sup}` with no other options) and their linear
probes into a fresh temporary cache, then prints a markdown table and writes it between the `train-table` markers in
README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    a = ap.parse_args()
    os.environ["LANDSCAPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="train-defaults-")
    import torch

    from core.app import KIND_LABEL, default_configs
    from core.models import ProbeConfig, load_checkpoint, train_model, train_probe

    torch.set_num_threads(a.threads)
    rows = []
    for kind, cfg in default_configs().items():
        t0 = time.perf_counter()
        path = train_model(cfg, device="cpu")
        t_train = time.perf_counter() - t0
        hist = load_checkpoint(path).meta["history"]
        epoch_times = sorted(h["time_s"] for h in hist)
        if kind == "sup":
            reach = f"val accuracy {hist[-1]['val_acc']:.3f}, val loss {hist[-1]['val_loss']:.3f}"
        else:
            t1 = time.perf_counter()
            probe = load_checkpoint(train_probe(path, ProbeConfig(), device="cpu"))
            t_train += time.perf_counter() - t1
            reach = (
                f"val MAE loss {hist[-1]['val_loss']:.3f}, linear-probe accuracy "
                f"{probe.meta['history'][-1]['val_acc']:.3f}"
            )
        rows.append(
            f"| {KIND_LABEL[kind]} | {cfg.epochs} | {t_train:.1f} s | {epoch_times[len(epoch_times) // 2]:.2f} s "
            f"| {reach} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    table = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores, {a.threads} torch threads, torch "
            f"{torch.__version__}.",
            "",
            "| model | epochs | wall time (incl. per-epoch validation, probe) | median epoch | reaches |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    if not a.no_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- train-table -->", "<!-- /train-table -->"
        i, j = text.index(start) + len(start), text.index(end)
        readme.write_text(text[:i] + "\n" + table + "\n" + text[j:])


if __name__ == "__main__":
    main()
