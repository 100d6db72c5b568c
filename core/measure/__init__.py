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
from core.measure.corruptions import CORRUPTIONS, SEVERITIES, corrupt, from_pixels, gallery, suite_table, to_pixels
from core.measure.corruptions import NAMES as CORRUPTION_NAMES
from core.measure.exports import EXPORT_FORMATS, export_entry, export_landscape
from core.measure.flatness import STAGES, FlatnessSpec, cached_stage, compute_flatness, format_report
from core.measure.input_robustness import KIND as INPUT_ROBUSTNESS_KIND
from core.measure.input_robustness import (
    InputRobustness,
    InputRobustnessSpec,
    compute_input_robustness,
    estimate_input_robustness,
    require_classifier,
)
from core.measure.surfaces import SECOND_AXIS_OFFSET, SurfaceSpec, compute_surface, export_surface, prepare_checkpoint

__all__ = [
    "cached_stage",
    "compute_convexity",
    "compute_flatness",
    "compute_input_robustness",
    "compute_surface",
    "CONVEX_RATIO",
    "convexity_figures",
    "convexity_table",
    "ConvexityMap",
    "ConvexitySpec",
    "corrupt",
    "CORRUPTION_NAMES",
    "CORRUPTIONS",
    "describe_map",
    "estimate_input_robustness",
    "export_convexity",
    "export_entry",
    "EXPORT_FORMATS",
    "export_landscape",
    "export_surface",
    "FlatnessSpec",
    "format_report",
    "from_pixels",
    "gallery",
    "INPUT_ROBUSTNESS_KIND",
    "InputRobustness",
    "InputRobustnessSpec",
    "prepare_checkpoint",
    "reproduce_maps",
    "require_classifier",
    "SECOND_AXIS_OFFSET",
    "SEVERITIES",
    "STAGES",
    "suite_table",
    "SurfaceSpec",
    "to_pixels",
]
