"""`write_report`: tables (``report.md``), plots (PNG) and ``metrics.json`` for people
and machines, from `Evaluator.evaluate` results of one or more models."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrs_debias.backend import tf
from tfrs_debias.data.io.files import write_json
from tfrs_debias.evaluation.fairness_report import (
    fairness_section,
    plot_fairness,
    plot_tradeoff,
    tradeoff_section,
)
from tfrs_debias.metrics.buckets import ITEM_BUCKETS, USER_BUCKETS
from tfrs_debias.metrics.gap import gap_closed_interval


def _savefig(fig, path: str) -> None:
    """PNG through ``tf.io.gfile`` (any filesystem TensorFlow supports)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    with tf.io.gfile.GFile(path, "wb") as fh:
        fh.write(buffer.getvalue())


def summary_rows(
    results: Mapping[str, dict],
    task: str = "click",
    k: int = 10,
    naive: str | None = "naive",
    ceiling: str | None = "full_information",
) -> list[dict]:
    """One row per model: NDCG@k overall and per bucket, exam. error, head share, and the
    share of the naive -> ``ceiling`` gap closed with its 95% bootstrap interval over
    test users (None when the ceiling's gap over naive is not measurable)."""
    rows = []
    key = f"@{k}"

    def per_user(name):
        ranking = (results.get(name) or {}).get("ranking") or {}
        values = ranking.get("ndcg_per_user", {}).get(task, {}).get(key)
        return None if values is None else np.array(values, dtype=np.float64)

    base, top = per_user(naive), per_user(ceiling)
    for name, res in results.items():
        ranking = res.get("ranking") or {}
        if task not in ranking.get("ndcg", {}):
            continue
        exam = res.get("examination") or {}
        row = {
            "model": name,
            "ndcg": ranking["ndcg"][task][key],
            "gap_closed": None,
            "gap_low": None,
            "gap_high": None,
            "exam_mean_error": exam.get("mean_error"),
            "exam_max_error": exam.get("max_error"),
            "head_share_top10": ranking.get("head_share_top10"),
            "head_share_top10_truth": ranking.get("head_share_top10_truth"),
        }
        mine = per_user(name)
        if mine is not None and base is not None and top is not None:
            gap = gap_closed_interval(mine, base, top)
            row["gap_closed"], row["gap_low"], row["gap_high"] = gap["gap"], gap["low"], gap["high"]
        for b in USER_BUCKETS:
            row[f"user_{b}"] = ranking["ndcg_by_user_bucket"][task][b][key]
        for b in ITEM_BUCKETS:
            row[f"item_{b}"] = ranking["ndcg_by_item_bucket"][task][b][key]
        rows.append(row)
    return rows


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:.4f}"


def _fmt_gap(row: dict) -> str:
    if row.get("gap_closed") is None:
        return "-"
    return f"{row['gap_closed']:.0%} [{row['gap_low']:.0%}, {row['gap_high']:.0%}]"


def format_table(rows: list[dict], k: int = 10) -> str:
    """A markdown table of `summary_rows`."""
    head = (
        ["model", f"NDCG@{k}", "gap closed [95% CI]"]
        + [f"user {b}" for b in USER_BUCKETS]
        + [f"item {b}" for b in ITEM_BUCKETS]
        + ["exam. err mean", "exam. err max", "head share top-10"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (
            [r["model"], _fmt(r["ndcg"]), _fmt_gap(r)]
            + [_fmt(r[f"user_{b}"]) for b in USER_BUCKETS]
            + [_fmt(r[f"item_{b}"]) for b in ITEM_BUCKETS]
            + [
                _fmt(r["exam_mean_error"], pct=True),
                _fmt(r["exam_max_error"], pct=True),
                _fmt(r["head_share_top10"], pct=True),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[0].get("head_share_top10_truth") is not None:
        lines.append(
            f"\nHead items take {rows[0]['head_share_top10_truth']:.0%} of the truth's own top-10."
        )
    return "\n".join(lines)


def _plot_curve_panels(
    path: str,
    titles: list[str],
    reference: list[list[float]],
    reference_label: str,
    learned: Mapping[str, dict],
    xlabel: str,
    ylabel: str,
) -> None:
    """One panel per title: the reference curve (black) and each model's learned curve,
    with its 95% band where ``learned[name]`` has ``learned_low``/``learned_high``."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    fig = Figure(figsize=(4.2 * len(titles), 3.6))
    axes = fig.subplots(1, len(titles), squeeze=False)
    for i, title in enumerate(titles):
        ax = axes[0][i]
        x = np.arange(len(reference[i]))
        ax.plot(x, reference[i], "k-", lw=2.5, label=reference_label)
        for name, exam in learned.items():
            ax.plot(x, exam["learned"][i], "o--", ms=4, label=name)
            if "learned_low" in exam:
                ax.fill_between(x, exam["learned_low"][i], exam["learned_high"][i], alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.15)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)


def plot_examination(results: Mapping[str, dict], path: str) -> bool:
    """Learned vs true examination curve per device (one panel per device)."""
    curves = {n: r["examination"] for n, r in results.items() if r.get("examination")}
    if not curves:
        return False
    first = next(iter(curves.values()))
    _plot_curve_panels(
        path,
        [f"device: {d}" for d in first["devices"]],
        first["true"],
        "true",
        curves,
        "position",
        "examination / examination at position 0",
    )
    return True


def plot_buckets(rows: list[dict], path: str, k: int = 10) -> bool:
    """NDCG@k per user-activity and item-popularity bucket, one bar per model."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    if not rows:
        return False
    groups = [f"user {b}" for b in USER_BUCKETS] + [f"item {b}" for b in ITEM_BUCKETS]
    keys = [f"user_{b}" for b in USER_BUCKETS] + [f"item_{b}" for b in ITEM_BUCKETS]
    width = 0.8 / len(rows)
    fig = Figure(figsize=(max(7, 1.4 * len(groups)), 3.8))
    ax = fig.subplots()
    x = np.arange(len(groups))
    for i, r in enumerate(rows):
        ax.bar(x + i * width, [r[key] or 0 for key in keys], width, label=r["model"])
    ax.set_xticks(x + width * (len(rows) - 1) / 2, groups)
    ax.set_ylabel(f"NDCG@{k} vs true relevance")
    ax.legend(fontsize=8, ncol=min(4, len(rows)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _savefig(fig, path)
    return True


def write_report(
    results: Mapping[str, dict],
    out_dir: str,
    title: str = "tfrs_debias report",
    task: str = "click",
    k: int = 10,
    naive: str | None = "naive",
    ceiling: str | None = "full_information",
) -> dict[str, str]:
    """Writes ``report.md``, ``metrics.json``, ``examination.png``, ``ndcg_buckets.png``,
    ``fairness.png`` and ``tradeoff.png`` (the plots when there is something to plot);
    returns their paths."""
    tf.io.gfile.makedirs(out_dir)
    rows = summary_rows(results, task, k, naive, ceiling)
    paths = {
        "metrics": os.path.join(out_dir, "metrics.json"),
        "report": os.path.join(out_dir, "report.md"),
    }
    write_json(paths["metrics"], {"models": results, "summary": rows})
    lines = [f"# {title}", ""]
    if rows:
        lines += [
            f"## Served scores vs true relevance ({task}, NDCG@{k})",
            "",
            format_table(rows, k),
            "",
        ]
        if plot_buckets(rows, os.path.join(out_dir, "ndcg_buckets.png"), k):
            paths["buckets_plot"] = os.path.join(out_dir, "ndcg_buckets.png")
            lines += ["![NDCG per bucket](ndcg_buckets.png)", ""]
    if plot_examination(results, os.path.join(out_dir, "examination.png")):
        paths["examination_plot"] = os.path.join(out_dir, "examination.png")
        lines += [
            "## Examination curves (learned vs true, relative to position 0)",
            "",
            "![examination](examination.png)",
            "",
        ]
        for name, res in results.items():
            exam = res.get("examination")
            if exam:
                lines.append(f"**{name}**: relative error per position")
                lines.append("")
                lines.append(
                    "| device | "
                    + " | ".join(str(p) for p in range(len(exam["relative_error"][0])))
                    + " |"
                )
                lines.append("|" + "---|" * (len(exam["relative_error"][0]) + 1))
                for dev, errs in zip(exam["devices"], exam["relative_error"], strict=True):
                    lines.append(f"| {dev} | " + " | ".join(f"{e:.0%}" for e in errs) + " |")
                lines.append("")
    logged = {n: r["logged"] for n, r in results.items() if r.get("logged")}
    if logged:
        lines += [
            "## Logged test data",
            "",
            "AUC and log-loss of the full (training-path) probabilities, which model the "
            "logs' bias; AUC of the served (debiased) probabilities, which production ranks "
            "by — on a randomly exposed test, the served AUC is the one to compare.",
            "",
            "| model | task | AUC (full) | log-loss (full) | AUC (served) | SNIPS AUC (served) "
            "| SNIPS log-loss |",
            "|---|---|---|---|---|---|---|",
        ]
        regression = []
        for name, lg in logged.items():
            for t, m in lg["tasks"].items():
                if "rmse" in m:
                    regression.append(
                        f"| {name} | {t} | {m['rmse']:.4f} | {m['served_rmse']:.4f} |"
                    )
                    continue
                lines.append(
                    f"| {name} | {t} | {m['auc']:.4f} | {m['logloss']:.4f} | "
                    f"{_fmt(m.get('served_auc'))} | "
                    f"{_fmt(m.get('snips_auc'))} | {_fmt(m.get('snips_logloss'))} |"
                )
        lines.append("")
        if regression:
            lines += [
                "Real-valued tasks: root mean squared error of the outputs.",
                "",
                "| model | task | RMSE (full) | RMSE (served) |",
                "|---|---|---|---|",
                *regression,
                "",
            ]
    for name, section, plot in (
        ("fairness", fairness_section, plot_fairness),
        ("tradeoff", tradeoff_section, plot_tradeoff),
    ):
        text = section(results)
        if text:
            lines += text
            if plot(results, os.path.join(out_dir, f"{name}.png"), _savefig):
                paths[f"{name}_plot"] = os.path.join(out_dir, f"{name}.png")
                lines += [f"![{name}]({name}.png)", ""]
    clicks = {n: r["click_models"] for n, r in results.items() if r.get("click_models")}
    if clicks:
        lines += _click_model_section(clicks)
        if plot_click_model_curves(clicks, os.path.join(out_dir, "examination_vs_pbm.png")):
            paths["examination_vs_pbm_plot"] = os.path.join(out_dir, "examination_vs_pbm.png")
            lines += ["![learned examination vs PBM](examination_vs_pbm.png)", ""]
    with tf.io.gfile.GFile(paths["report"], "w") as fh:
        fh.write("\n".join(lines))
    return paths


def _click_model_section(clicks: Mapping[str, dict]) -> list[str]:
    lines = [
        "## Held-out clicks: models vs click-model baselines",
        "",
        "Perplexity per the click-model literature (mean over ranks of 2^-mean log2 "
        "likelihood; 1 is perfect). PBM, rank CTR and document CTR are fitted on the "
        "training split.",
        "",
        "| model | perplexity | log-likelihood | learned curve vs PBM: mean / max rel. error |",
        "|---|---|---|---|",
    ]
    first = next(iter(clicks.values()))
    for base in ("pbm", "rank_ctr", "doc_ctr"):
        lines.append(
            f"| {base} | {first['perplexity'][base]:.4f} | "
            f"{first['log_likelihood'][base]:.4f} | - |"
        )
    for name, cm in clicks.items():
        exam = cm["examination"]
        curve = f"{exam['mean_error_vs_pbm']:.1%} / {exam['max_error_vs_pbm']:.1%}" if exam else "-"
        lines.append(
            f"| {name} | {cm['perplexity']['model']:.4f} | {cm['log_likelihood']['model']:.4f} "
            f"| {curve} |"
        )
    return lines + [""]


def plot_click_model_curves(clicks: Mapping[str, dict], path: str) -> bool:
    """Learned examination per context value (95% bootstrap band) beside PBM's."""
    curves = {n: cm["examination"] for n, cm in clicks.items() if cm["examination"]}
    if not curves:
        return False
    first = next(iter(curves.values()))
    _plot_curve_panels(
        path,
        [f"context: {c}" for c in first["contexts"]],
        first["pbm"],
        "PBM (EM)",
        curves,
        "rank",
        "examination / rank 0",
    )
    return True
