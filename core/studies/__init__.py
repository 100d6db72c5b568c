"""Experiments over many runs and seeds: the seed's claims measured end to end (reproduce), claim 2 across
regimes, and the label-efficiency study of fine-tuned versus from-scratch ViTs.
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
from core.studies.workers import default_workers, map_jobs, resolve_workers

__all__ = [
    "add_premise_to_findings",
    "add_regimes_to_findings",
    "budget_label",
    "check_budgets",
    "correlation_numbers",
    "default_workers",
    "EXPECTED_SIGN",
    "flatness_numbers",
    "KINDS",
    "LABEL",
    "map_jobs",
    "quick_spec",
    "quick_study",
    "reproduce",
    "resolve_workers",
    "ReproduceSpec",
    "run_study",
    "RunRecord",
    "SPLITS",
    "study_path",
    "study_series",
    "StudyResult",
    "StudySpec",
    "write_json",
]
