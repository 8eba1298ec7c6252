"""The report's fairness and diversity sections: tables (markdown lines) and plots
(``fairness.png``, ``tradeoff.png``) from `Evaluator.fairness`/`Evaluator.tradeoff`
results (and the logged-data fairness of `Evaluator.logged`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

SaveFn = Callable[[object, str], None]


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def _per_group(test: dict) -> str:
    return ", ".join(f"{g}: {v['mean']:.3f}" for g, v in test["groups"].items())


def fairness_section(results: Mapping[str, dict]) -> list[str]:
    """Markdown lines: error per user group with ANOVA p-values, and item-group
    exposure (total variation distance from the truth's top-k); empty if none."""
    truth = {n: r["fairness"] for n, r in results.items() if r.get("fairness")}
    logged = {
        n: r["logged"]["fairness"]
        for n, r in results.items()
        if (r.get("logged") or {}).get("fairness")
    }
    if not truth and not logged:
        return []
    lines = ["## Fairness across user and item groups", ""]
    if truth:
        first = next(iter(truth.values()))
        lines += [
            f"Error per user: {first['error']} ({first['task']}); NDCG@{first['k']} per "
            "user. p: one-way ANOVA of equal means across groups (small p: the groups "
            "differ); worst pair: the two groups furthest apart, Welch t-test, "
            "Bonferroni-corrected.",
            "",
            "| model | user groups | error by group | ANOVA p | worst pair (p) "
            f"| NDCG@{first['k']} by group | ANOVA p |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, fair in truth.items():
            for feature, tests in fair["user_groups"].items():
                err, ndcg = tests["error"], tests["ndcg"]
                pair = (
                    f"{' vs '.join(err['worst_pair'])} ({_p(err['worst_pair_p'])})"
                    if err["worst_pair"]
                    else "-"
                )
                lines.append(
                    f"| {name} | {feature} | {_per_group(err)} | {_p(err['anova_p'])} | "
                    f"{pair} | {_per_group(ndcg)} | {_p(ndcg['anova_p'])} |"
                )
        lines += [
            "",
            f"Top-{first['k']} exposure by item group: the share of the model's top-"
            f"{first['k']} slots vs the share in the truth's own top-{first['k']} "
            "(TVD: total variation distance, 0 = same exposure as ranking by true "
            "relevance).",
            "",
            "| model | item groups | TVD from truth | most over-exposed | most under-exposed |",
            "|---|---|---|---|---|",
        ]
        for name, fair in truth.items():
            for feature, shares in fair["item_exposure"].items():
                diff = {g: v["model"] - v["truth"] for g, v in shares.items()}
                over = max(diff, key=lambda g: diff[g])
                under = min(diff, key=lambda g: diff[g])
                tvd = 0.5 * sum(abs(d) for d in diff.values())
                lines.append(
                    f"| {name} | {feature} | {tvd:.3f} | {over} "
                    f"({shares[over]['model']:.0%} vs {shares[over]['truth']:.0%}) | {under} "
                    f"({shares[under]['model']:.0%} vs {shares[under]['truth']:.0%}) |"
                )
        lines.append("")
    if logged:
        first = next(iter(logged.values()))
        lines += [
            f"Logged test data: {first['error']} ({first['task']}).",
            "",
            "| model | user groups | log-loss by group | ANOVA p | worst pair (p) |",
            "|---|---|---|---|---|",
        ]
        for name, fair in logged.items():
            for feature, tests in fair["user_groups"].items():
                err = tests["error"]
                pair = (
                    f"{' vs '.join(err['worst_pair'])} ({_p(err['worst_pair_p'])})"
                    if err["worst_pair"]
                    else "-"
                )
                lines.append(
                    f"| {name} | {feature} | {_per_group(err)} | {_p(err['anova_p'])} | {pair} |"
                )
        lines.append("")
    return lines


def plot_fairness(results: Mapping[str, dict], path: str, save: SaveFn) -> bool:
    """Left: error per group of the first user feature (bars with standard errors);
    right: top-k share of each popularity bucket, per model and for the truth."""
    fair = {n: r["fairness"] for n, r in results.items() if r.get("fairness")}
    if not fair:
        return False
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    first = next(iter(fair.values()))
    feature = next(iter(first["user_groups"]))
    groups = list(first["user_groups"][feature]["error"]["groups"])
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    width = 0.8 / len(fair)
    x = np.arange(len(groups))
    for i, (name, f) in enumerate(fair.items()):
        stats = f["user_groups"][feature]["error"]["groups"]
        means = [stats[g]["mean"] if g in stats else 0 for g in groups]
        sems = [(stats.get(g) or {}).get("sem") or 0 for g in groups]
        axes[0].bar(x + i * width, means, width, yerr=sems, capsize=2, label=name)
    axes[0].set_xticks(x + width * (len(fair) - 1) / 2, groups)
    axes[0].set_xlabel(feature)
    axes[0].set_ylabel("mean |p - true relevance|")
    axes[0].set_title(f"error by {feature}")
    axes[0].legend(fontsize=7)
    buckets = list(first["item_exposure"].get("popularity", {}))
    if buckets:
        series = {"truth": [first["item_exposure"]["popularity"][b]["truth"] for b in buckets]}
        for name, f in fair.items():
            series[name] = [f["item_exposure"]["popularity"][b]["model"] for b in buckets]
        width = 0.8 / len(series)
        x = np.arange(len(buckets))
        for i, (name, shares) in enumerate(series.items()):
            axes[1].bar(x + i * width, shares, width, label=name, color="k" if i == 0 else None)
        axes[1].set_xticks(x + width * (len(series) - 1) / 2, buckets)
        axes[1].set_ylabel(f"share of top-{first['k']} slots")
        axes[1].set_title("exposure by item popularity")
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, path)
    return True


def tradeoff_section(results: Mapping[str, dict]) -> list[str]:
    """Markdown lines: NDCG, intra-list similarity and head share per MMR λ."""
    trade = {n: r["tradeoff"] for n, r in results.items() if r.get("tradeoff")}
    if not trade:
        return []
    first = next(iter(trade.values()))
    lines = [
        "## Diversity trade-off (select_top_k with MMR)",
        "",
        f"Over {first['users']} test users: NDCG@{first['k']} of the selected list against "
        "true relevance, its intra-list similarity (share of pairs with the same "
        f"{first['category']}) and the share of head items, as λ goes from 1 (by score "
        "alone) down.",
        "",
        f"| model | λ | NDCG@{first['k']} | intra-list similarity | head share |",
        "|---|---|---|---|---|",
    ]
    for name, t in trade.items():
        for lam, ndcg, ils, head in zip(
            t["lambdas"], t["ndcg"], t["intra_list_similarity"], t["head_share"], strict=True
        ):
            ndcg_text = "-" if ndcg is None else f"{ndcg:.4f}"
            lines.append(f"| {name} | {lam:.1f} | {ndcg_text} | {ils:.3f} | {head:.0%} |")
    lines.append("")
    return lines


def plot_tradeoff(results: Mapping[str, dict], path: str, save: SaveFn) -> bool:
    """NDCG against intra-list similarity and against head share, one line per model,
    points labelled with λ."""
    trade = {n: r["tradeoff"] for n, r in results.items() if r.get("tradeoff")}
    if not trade:
        return False
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    first = next(iter(trade.values()))
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    for name, t in trade.items():
        ndcg = [np.nan if v is None else v for v in t["ndcg"]]
        for ax, key in zip(axes, ("intra_list_similarity", "head_share"), strict=True):
            ax.plot(t[key], ndcg, "o-", label=name)
            for lam, xv, yv in zip(t["lambdas"], t[key], ndcg, strict=True):
                ax.annotate(
                    f"{lam:g}", (xv, yv), fontsize=6, xytext=(2, 2), textcoords="offset points"
                )
    axes[0].set_xlabel(f"intra-list similarity (same {first['category']})")
    axes[1].set_xlabel("head-item share of the list")
    for ax in axes:
        ax.set_ylabel(f"NDCG@{first['k']} vs true relevance")
        ax.grid(alpha=0.3)
    axes[0].set_title("diversity: labels are λ")
    axes[1].set_title("popularity exposure")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
    return True
