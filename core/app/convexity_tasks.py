"""The dashboard's background job for convexity maps (`core.measure.convexity`): one map per model, partial maps
published as points finish. Kept apart from `core.measure.convexity` so that the engine never imports the job
machinery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from core.app.registry import JobContext, error_line
from core.errors import LandscapeError
from core.measure import ConvexityMap, ConvexitySpec, compute_convexity, prepare_checkpoint
from core.report import msg


@dataclass
class ConvexityBatch:
    """Convexity maps of several models on one spec: label -> map (partial while running), spec, one-line error."""

    maps: dict[str, ConvexityMap] = field(default_factory=dict)
    specs: dict[str, ConvexitySpec] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> ConvexityBatch:
        return ConvexityBatch(dict(self.maps), dict(self.specs), dict(self.errors))


def convexity_task(
    specs: dict[str, ConvexitySpec], max_seconds: float | None = None
) -> Callable[[JobContext], ConvexityBatch]:
    """A `core.app.registry` job computing one convexity map per model (label -> ConvexitySpec); partial: a batch.

    A model whose estimate exceeds `max_seconds` is not started (its error says so); None: no limit."""

    def run(ctx: JobContext) -> ConvexityBatch:
        batch = ConvexityBatch()
        n = max(1, len(specs))
        for i, (label, spec) in enumerate(specs.items()):
            batch.specs[label] = spec
            if ctx.should_stop():
                raise LandscapeError("stopped")
            grid = spec.surface.grid

            def prog(d: int, t: int, i=i, label=label, grid=grid) -> None:
                ctx.progress((i + d / max(1, t)) / n, msg("job.convexity", model=label, grid=grid, done=d, total=t))

            def partial(m: ConvexityMap, label=label) -> None:
                batch.maps[label] = m
                ctx.set_partial(batch.copy())

            def estimate(est: Any, i=i, label=label, grid=grid) -> bool:
                ctx.progress(
                    i / n,
                    msg("job.cvx_estimate", model=label, grid=grid, points=est.points, seconds=round(est.seconds)),
                )
                return not est.disk_short and (max_seconds is None or est.seconds <= max_seconds)

            try:
                if spec.surface.loss == "probe":
                    ctx.progress(i / n, msg("job.probe", model=label))
                    ck = prepare_checkpoint(spec.surface.checkpoint, "probe")
                    spec = replace(spec, surface=replace(spec.surface, checkpoint=ck))
                batch.maps[label] = compute_convexity(
                    spec, progress=prog, on_partial=partial, check_stop=ctx.should_stop, confirm=estimate
                )
            except LandscapeError as e:
                if ctx.should_stop():
                    raise
                batch.errors[label] = error_line(e)
            ctx.set_partial(batch.copy())
        ctx.progress(1.0, msg("job.convexity_done"))
        return batch

    return run
