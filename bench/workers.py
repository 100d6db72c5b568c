"""Speed-up of `python -m core reproduce --workers N`: the same run with 1 and with N worker processes, each on an
empty cache, in one invocation (the machines are shared: compare the ratio, not the seconds).

    python bench/workers.py [--workers 2] [--seeds 2] [--quick]

Runs claims 1-2 and the premise study (`--no-regimes`) of a small version of the full run: tiny models on the
embedded digits, the default 30 epochs, 9x9 landscapes, 3x3 convexity maps, 64 images (`--quick`: the CI version,
micro models, where process start-up dominates). Prints both times, the ratio, and whether the two reports are
identical (they must be: the numbers do not depend on the number of workers).
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(workers: int, a: argparse.Namespace, tmp: Path) -> tuple[float, Path]:
    out = tmp / f"w{workers}" / "FINDINGS.md"
    cmd = [sys.executable, "-m", "core", "reproduce", "--no-regimes", "--seeds", str(a.seeds), "--out", str(out)]
    cmd += ["--workers", str(workers)]
    if a.quick:
        cmd.append("--quick")
    else:
        cmd += ["--grid", "9", "--samples", "64", "--convexity-grid", "3"]
    env = os.environ | {"LANDSCAPE_CACHE_DIR": str(tmp / f"cache{workers}")}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="the parallel run's workers (default 2)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds (jobs) of each run (default 2)")
    ap.add_argument("--quick", action="store_true", help="the --quick run (micro models)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as d:
        tmp = Path(d)
        t1, o1 = run(1, a, tmp)
        tn, on = run(a.workers, a, tmp)
        same = filecmp.cmp(o1, on, shallow=False)
        if not same:  # show what differs before the folder goes
            diff = difflib.unified_diff(o1.read_text().splitlines(), on.read_text().splitlines(), lineterm="", n=0)
            print("\n".join(list(diff)[:40]))
    print(f"1 worker: {t1:.1f} s; {a.workers} workers: {tn:.1f} s; speed-up x{t1 / tn:.2f}; reports identical: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
