"""Evaluation against ground truth and on logs; reports with tables and plots."""

from tfrs_debias.evaluation.comparison import (
    Targets,
    Variant,
    check_targets,
    default_variants,
    run_comparison,
)
from tfrs_debias.evaluation.evaluate_exports import evaluate_exports, parse_model_specs
from tfrs_debias.evaluation.evaluator import (
    ITEM_BUCKETS,
    USER_BUCKETS,
    Evaluator,
    Scorer,
    item_bucket,
    user_bucket,
)
from tfrs_debias.evaluation.report import format_table, summary_rows, write_report
from tfrs_debias.metrics.gap import gap_closed

__all__ = [
    "ITEM_BUCKETS",
    "USER_BUCKETS",
    "check_targets",
    "Evaluator",
    "Scorer",
    "Targets",
    "Variant",
    "default_variants",
    "evaluate_exports",
    "format_table",
    "gap_closed",
    "item_bucket",
    "parse_model_specs",
    "run_comparison",
    "summary_rows",
    "user_bucket",
    "write_report",
]
