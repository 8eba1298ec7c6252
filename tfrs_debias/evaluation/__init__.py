"""Evaluation against ground truth and on logs; reports with tables and plots."""

from tfrs_debias.evaluation.comparison import (
    Targets,
    Variant,
    check_targets,
    default_variants,
    run_comparison,
)
from tfrs_debias.evaluation.evaluator import (
    ITEM_BUCKETS,
    USER_BUCKETS,
    Evaluator,
    Scorer,
    item_bucket,
    user_bucket,
)
from tfrs_debias.evaluation.report import format_table, gap_closed, summary_rows, write_report

__all__ = [
    "ITEM_BUCKETS",
    "USER_BUCKETS",
    "check_targets",
    "Evaluator",
    "Scorer",
    "Targets",
    "Variant",
    "default_variants",
    "format_table",
    "gap_closed",
    "item_bucket",
    "run_comparison",
    "summary_rows",
    "user_bucket",
    "write_report",
]
