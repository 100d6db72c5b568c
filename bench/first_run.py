"""Time the dashboard's first run on an empty cache: the exact job the Overview submits ("prepare defaults":
train the default trio and probes, their 17x17 landscapes coarse-first, flatness, summary facts).

    python bench/first_run.py [--profile full|quick]

Prints the time to the first side-by-side picture (every model has a coarse landscape) and to the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="full", choices=("full", "quick"))
    a = ap.parse_args()
    os.environ["LANDSCAPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="first-run-")
    from core.jobs import Job, JobContext, dashboard_profile, prepare_defaults_task

    t0 = time.perf_counter()
    first_picture: list[float] = []
    ctx = JobContext(Job("first-run", "first-run"), threading.Lock())
    publish = ctx.set_partial

    def on_partial(obj) -> None:
        surfaces = getattr(getattr(obj, "surfaces", None), "surfaces", {}) or {}
        if not first_picture and len(surfaces) >= 3:
            first_picture.append(time.perf_counter() - t0)
            print(f"first side-by-side picture after {first_picture[0]:.1f} s", file=sys.stderr, flush=True)
        publish(obj)

    ctx.set_partial = on_partial
    prepare_defaults_task(dashboard_profile(a.profile))(ctx)
    total = time.perf_counter() - t0
    print(
        f"profile={a.profile} first_picture_s={first_picture[0] if first_picture else float('nan'):.1f} "
        f"total_s={total:.1f}"
    )


if __name__ == "__main__":
    main()
