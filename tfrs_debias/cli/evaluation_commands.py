"""Commands that measure: evaluate, demo."""

from __future__ import annotations

import argparse

from tfrs_debias.cli.common import EXIT_OK, increasing_fractions, increasing_positive_ints


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tfrs_debias.evaluation import Evaluator, format_table
    from tfrs_debias.evaluation.evaluate_exports import evaluate_exports, parse_model_specs

    evaluator = Evaluator(
        ks=args.k, user_thresholds=args.user_buckets, item_quantiles=args.item_quantiles
    )
    results, rows, paths = evaluate_exports(
        args.data,
        parse_model_specs(args.model),
        args.out,
        logs=args.logs,
        schema_file=args.schema,
        evaluator=evaluator,
        task=args.task,
        naive=args.naive,
        ceiling=args.ceiling,
    )
    if rows:
        print(format_table(rows, max(evaluator.ks)))
    for name, res in results.items():
        for task, m in (res.get("logged") or {}).get("tasks", {}).items():
            if "rmse" in m:
                print(f"{name} {task}: logged RMSE {m['rmse']:.4f} (served {m['served_rmse']:.4f})")
            else:
                print(f"{name} {task}: logged AUC {m['auc']:.4f}, log-loss {m['logloss']:.4f}")
        for line in (res.get("click_models") or {}).get("summary", []):
            print(f"{name}: {line}")
    print(f"report: {paths['report']}; metrics: {paths['metrics']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from tfrs_debias.demo import run_demo

    run_demo(args.out, args.saved_models, args.epochs, small=args.small, quiet=args.quiet)
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate exported models against ground truth and logs",
        description="With a truth file: NDCG@k of the debiased serving_default scores against "
        "true relevance, by user-activity and item-popularity bucket, gap closed between the "
        "naive model and the full-information ceiling with a bootstrap interval, and the "
        "examination curve learned by the biased signature vs the true one. On logs: AUC "
        "and log-loss of the biased signature (SNIPS-weighted served metrics when "
        "propensities are logged), click perplexity next to the click-model baselines "
        "(PBM by EM, rank CTR, document CTR) and the learned examination curve per bias "
        "value beside PBM's. Writes report.md, metrics.json and PNG plots.",
    )
    p.add_argument(
        "--model",
        required=True,
        action="append",
        help="[NAME=]saved_models/NAME[/VERSION]; repeat to compare models",
    )
    p.add_argument("--data", required=True, help="dataset directory (schema.json, truth, logs)")
    p.add_argument("--out", default="report", help="report directory (default: report)")
    p.add_argument("--logs", help="glob of logged test data (default: DATA/test-*)")
    p.add_argument("--schema", help="schema of the logs (default: DATA/schema.json)")
    p.add_argument("--task", default="click", help="task of the summary table (default click)")
    p.add_argument(
        "--k", type=increasing_positive_ints, default="5,10", help="NDCG cut-offs (default 5,10)"
    )
    p.add_argument(
        "--user-buckets",
        type=increasing_positive_ints,
        default="10,100",
        help="training impressions ending 'new' and starting 'power' (10,100)",
    )
    p.add_argument(
        "--item-quantiles",
        type=increasing_fractions,
        default="0.5,0.9",
        help="impression quantiles ending 'tail' and starting 'head' (0.5,0.9)",
    )
    p.add_argument("--naive", default="naive", help="model name that is 0%% of the gap")
    p.add_argument(
        "--ceiling",
        "--oracle",
        default="full_information",
        help="model name that is 100%% of the gap: one trained on the full-information "
        "twin (default full_information)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "demo",
        help="simulate, train naive/debiased/ceiling, evaluate, export, select",
        description="The whole story on the embedded default data in a few minutes: "
        "simulate -> validate -> train -> export -> evaluate (report + plots) -> select.",
    )
    p.add_argument("--out", default="demo_output", help="data, runs and report (demo_output)")
    p.add_argument("--saved-models", default="saved_models", help="where exports go")
    p.add_argument("--epochs", type=int, default=5, help="maximum training epochs (5)")
    p.add_argument("--small", action="store_true", help="a tiny world (seconds, for trials)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
