"""Experiments over many runs and seeds: the seed's claims measured end to end (reproduce), claim 2 across
regimes, the label-efficiency study of fine-tuned versus from-scratch ViTs, and how that moves with pre-training
length and cost (roi).
"""

from core.studies.generalization import (
    EXPECTED_SIGN,
    KINDS,
    LABEL,
    SPLITS,
    RunRecord,
    StudyResult,
    StudySpec,
    add_premise_to_findings,
    budget_label,
    check_budgets,
    correlation_numbers,
    flatness_numbers,
    quick_study,
    run_study,
    study_path,
    study_series,
    write_json,
)
from core.studies.measuring import ReproduceSpec
from core.studies.regimes import add_regimes_to_findings
from core.studies.reproduce import quick_spec, reproduce
from core.studies.roi import PLATEAU_RULE, RoiResult, RoiSpec, jobs_of, plateau, pretrain_flops, quick_roi, run_roi
from core.studies.roi_report import (
    add_roi_to_findings,
    flattening_text,
    roi_figures,
    roi_markdown,
    roi_path,
    roi_series,
)
from core.studies.roi_report import to_dict as roi_to_dict
from core.studies.roi_report import write_json as write_roi_json
from core.studies.stability import (
    STABILITY_SAMPLES,
    corruption_units,
    curve_series,
    runs_with,
    stability_by_seed,
    stability_claims,
    stability_numbers,
)
from core.studies.workers import default_workers, map_jobs, resolve_workers

__all__ = [
    "add_premise_to_findings",
    "add_regimes_to_findings",
    "add_roi_to_findings",
    "budget_label",
    "check_budgets",
    "correlation_numbers",
    "corruption_units",
    "curve_series",
    "default_workers",
    "EXPECTED_SIGN",
    "flatness_numbers",
    "flattening_text",
    "jobs_of",
    "KINDS",
    "LABEL",
    "map_jobs",
    "plateau",
    "PLATEAU_RULE",
    "pretrain_flops",
    "quick_roi",
    "quick_spec",
    "quick_study",
    "reproduce",
    "ReproduceSpec",
    "resolve_workers",
    "roi_figures",
    "roi_markdown",
    "roi_path",
    "roi_series",
    "roi_to_dict",
    "RoiResult",
    "RoiSpec",
    "run_roi",
    "run_study",
    "RunRecord",
    "runs_with",
    "SPLITS",
    "stability_by_seed",
    "stability_claims",
    "stability_numbers",
    "STABILITY_SAMPLES",
    "study_path",
    "study_series",
    "StudyResult",
    "StudySpec",
    "write_json",
    "write_roi_json",
]
