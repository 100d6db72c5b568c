"""Kernels of loss geometry that hold no cache: parameter views, directions, grid evaluation, landscape
numbers, Hessian-vector products, Hessian spectra, sharpness and robustness to weight noise.
"""

from core.geometry.attention import attention_for_second_derivatives
from core.geometry.directions import (
    IGNORES,
    NORMS,
    interpolation_direction,
    orthogonalize,
    pca_directions,
    plane_through,
    random_direction,
    scale,
)
from core.geometry.hessian import (
    convexity_point,
    hessian_eigenvalues,
    hessian_extreme_eigenvalues,
    hessian_trace,
    per_block_breakdown,
    spectral_density,
)
from core.geometry.hvp import HvpOperator, Steps
from core.geometry.landscape import evaluate_plane, evaluate_points, grid_axis, nested_order, plane_order
from core.geometry.params import SCOPES, select_parameters
from core.geometry.sharpness import robustness_curve, sharpness_average, sharpness_worst
from core.geometry.surface_metrics import line_metrics, surface_metrics

__all__ = [
    "attention_for_second_derivatives",
    "convexity_point",
    "evaluate_plane",
    "evaluate_points",
    "grid_axis",
    "hessian_eigenvalues",
    "hessian_extreme_eigenvalues",
    "hessian_trace",
    "HvpOperator",
    "IGNORES",
    "interpolation_direction",
    "line_metrics",
    "nested_order",
    "NORMS",
    "orthogonalize",
    "pca_directions",
    "per_block_breakdown",
    "plane_order",
    "plane_through",
    "random_direction",
    "robustness_curve",
    "scale",
    "SCOPES",
    "select_parameters",
    "sharpness_average",
    "sharpness_worst",
    "spectral_density",
    "Steps",
    "surface_metrics",
]
