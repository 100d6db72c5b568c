"""Time the dashboard's first run on an empty cache: the exact job the Overview submits ("prepare defaults":
train the default trio and probes, their 17x17 landscapes coarse-first, flatness, summary facts).

    python bench/first_run.py [--profile full|quick] [--no-generalization] [--no-stability]

Prints the time to the first side-by-side picture (every model has a coarse landscape), the time of each stage
(train, landscapes, flatness, generalization: the fine-tuning measurement of the Overview's sentence, summary) and
the total. `--no-generalization` skips the fine-tuning stage and `--no-stability` the corruption suite on its runs:
baselines measured the same way.
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
    ap.add_argument("--no-generalization", action="store_true", help="skip the fine-tuning stage (a baseline)")
    ap.add_argument("--no-stability", action="store_true", help="skip the corruption suite (a baseline)")
    a = ap.parse_args()
    os.environ["LANDSCAPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="first-run-")
    from core.app import Job, JobContext, dashboard_profile, prepare_defaults_task

    if a.no_generalization:
        import core.app.generalization_tasks as gj

        gj.first_run_generalization = lambda *args, **kw: None
    if a.no_stability:
        import core.app.stability_tasks as sj

        sj.first_run_stability = lambda *args, **kw: None

    t0 = time.perf_counter()
    first_picture: list[float] = []
    ctx = JobContext(Job("first-run", "first-run"), threading.Lock())
    publish = ctx.set_partial
    stages: list[tuple[str, float]] = [("train", 0.0)]

    def on_partial(obj) -> None:
        stage = getattr(obj, "stage", None)
        if stage and stage != stages[-1][0]:
            stages.append((stage, time.perf_counter() - t0))
        surfaces = getattr(getattr(obj, "surfaces", None), "surfaces", {}) or {}
        if not first_picture and len(surfaces) >= 3:
            first_picture.append(time.perf_counter() - t0)
            print(f"first side-by-side picture after {first_picture[0]:.1f} s", file=sys.stderr, flush=True)
        publish(obj)

    ctx.set_partial = on_partial
    res = prepare_defaults_task(dashboard_profile(a.profile))(ctx)
    total = time.perf_counter() - t0
    ends = [t for _, t in stages[1:]] + [total]
    per_stage = " ".join(f"{name}_s={end - start:.1f}" for (name, start), end in zip(stages, ends, strict=True))
    gen = res.facts.get("generalization")
    measured = " ".join(f"{k}={v}" for k, v in (gen or {}).get("val_acc", {}).items())
    print(
        f"profile={a.profile} generalization={'off' if a.no_generalization else 'on'} "
        f"first_picture_s={first_picture[0] if first_picture else float('nan'):.1f} {per_stage} total_s={total:.1f}"
        + (f" val_acc: {measured}" if measured else "")
        + (f" errors={res.errors}" if res.errors else "")
    )


if __name__ == "__main__":
    main()
