"""Cached, resumable measurements of one checkpoint: loss surfaces, flatness reports and convexity maps, each
keyed by a content hash of its inputs and shared by the CLI, the dashboard and torchrun ranks.
"""

from core.measure.convexity import (
    CONVEX_RATIO,
    ConvexityMap,
    ConvexitySpec,
    compute_convexity,
    convexity_figures,
    convexity_table,
    describe_map,
    export_convexity,
    reproduce_maps,
)
from core.measure.flatness import STAGES, FlatnessSpec, cached_stage, compute_flatness, format_report
from core.measure.surfaces import SECOND_AXIS_OFFSET, SurfaceSpec, compute_surface, export_surface, prepare_checkpoint

__all__ = [
    "cached_stage",
    "compute_convexity",
    "compute_flatness",
    "compute_surface",
    "CONVEX_RATIO",
    "convexity_figures",
    "convexity_table",
    "ConvexityMap",
    "ConvexitySpec",
    "describe_map",
    "export_convexity",
    "export_surface",
    "FlatnessSpec",
    "format_report",
    "prepare_checkpoint",
    "reproduce_maps",
    "SECOND_AXIS_OFFSET",
    "STAGES",
    "SurfaceSpec",
]
