"""The engine's two fronts: the background job registry with the dashboard's tasks (first run, what-ifs, the
model zoo, the briefing export) and the command line (`python -m core`).
"""

from core.app.briefing_html import briefing_figures, briefing_html, briefing_of, flatness_rows
from core.app.cli import main
from core.app.convexity_tasks import convexity_task
from core.app.first_run import DefaultsResult, measurement_seeds, prepare_defaults_task
from core.app.generalization_tasks import (
    DEFAULT_SEEDS,
    cached_study,
    dashboard_study,
    flatness_lookup_task,
    flatness_unknown,
    gap_points,
    generalization_task,
    landscape_specs,
    study_label,
    wide_study,
)
from core.app.profiles import (
    cache_cap_after_job,
    dashboard_profile,
    default_flatness_spec,
    default_trio,
    overview_defaults,
    task_key,
)
from core.app.registry import Job, JobContext, JobRegistry, error_line
from core.app.seeds_tasks import SEED_TARGETS, SeedsResult, add_seeds_task, seeds_behind, with_seeds
from core.app.tasks import (
    FlatnessBatch,
    SurfaceBatch,
    WhatIfResult,
    coarse_view,
    confined_path,
    flatness_points,
    flatness_task,
    inspect_task,
    surfaces_task,
    train_task,
    variant_config,
    whatif_task,
)
from core.app.zoo import KIND_LABEL, checkpoint_info, default_configs, describe_label, list_checkpoints

__all__ = [
    "add_seeds_task",
    "briefing_figures",
    "briefing_html",
    "briefing_of",
    "cache_cap_after_job",
    "cached_study",
    "checkpoint_info",
    "coarse_view",
    "confined_path",
    "convexity_task",
    "dashboard_profile",
    "dashboard_study",
    "default_configs",
    "default_flatness_spec",
    "DEFAULT_SEEDS",
    "default_trio",
    "DefaultsResult",
    "describe_label",
    "error_line",
    "flatness_lookup_task",
    "flatness_points",
    "flatness_rows",
    "flatness_task",
    "flatness_unknown",
    "FlatnessBatch",
    "gap_points",
    "generalization_task",
    "inspect_task",
    "Job",
    "JobContext",
    "JobRegistry",
    "KIND_LABEL",
    "landscape_specs",
    "list_checkpoints",
    "main",
    "measurement_seeds",
    "overview_defaults",
    "prepare_defaults_task",
    "SEED_TARGETS",
    "seeds_behind",
    "SeedsResult",
    "study_label",
    "SurfaceBatch",
    "surfaces_task",
    "task_key",
    "train_task",
    "variant_config",
    "whatif_task",
    "WhatIfResult",
    "wide_study",
    "with_seeds",
]
