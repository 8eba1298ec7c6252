"""`evaluate_exports`: evaluate exported models on one dataset folder and write the
report — what ``tfrs-debias evaluate`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from tfrs_debias.data.io.files import expand_files
from tfrs_debias.data.io.log_directory import LogDirectory
from tfrs_debias.evaluation.click_model_comparison import ClickModelBaselines
from tfrs_debias.evaluation.evaluator import Evaluator, Scorer
from tfrs_debias.evaluation.report import summary_rows, write_report
from tfrs_debias.schema import ImpressionSchema


def parse_model_specs(specs: Sequence[str]) -> dict[str, str]:
    """``["NAME=PATH", "PATH"]`` -> ``{name: path}`` (a bare path is named after its folder)."""
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = os.path.basename(spec.rstrip("/")), spec
        models[name] = path
    return models


def evaluate_exports(
    data_dir: str,
    models: Mapping[str, str],
    out_dir: str,
    logs: str | Sequence[str] | None = None,
    schema_file: str | None = None,
    evaluator: Evaluator | None = None,
    task: str = "click",
    naive: str | None = "naive",
    ceiling: str | None = "full_information",
    progress: bool = True,
) -> tuple[dict[str, dict], list[dict], dict[str, str]]:
    """Evaluates each export in ``models`` against ``data_dir`` 's truth (if any) and its
    test logs (``logs``, default the folder's ``test`` split). Returns ``(results,
    summary rows, report paths)``."""
    folder = LogDirectory(data_dir)
    truth = folder.truth()
    log_files = expand_files(logs) if logs else folder.files("test")
    if truth is None and not log_files:
        raise FileNotFoundError(f"{data_dir}: neither a truth file nor test logs to evaluate on")
    data_schema = ImpressionSchema.load(schema_file) if schema_file else folder.schema()
    evaluator = evaluator or Evaluator()
    evaluator.truth = truth
    train_files = folder.files("train")
    # Without a truth, click-model baselines are fitted once and every model compared.
    baselines = (
        ClickModelBaselines(train_files, log_files, data_schema)
        if truth is None and train_files and log_files
        else None
    )
    results = {}
    for name, path in models.items():
        if progress:
            print(f"evaluating {name} ({path})", flush=True)
        results[name] = evaluator.evaluate(
            Scorer.from_saved_model(path),
            log_files or None,
            data_schema,
            click_baselines=baselines,
        )
    k = max(evaluator.ks)
    paths = write_report(results, out_dir, task=task, k=k, naive=naive, ceiling=ceiling)
    return results, summary_rows(results, task, k, naive, ceiling), paths
