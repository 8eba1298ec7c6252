"""Every estimator, with default flags, on real public logs, through the CLI a user runs.

* ``--click-log``: a search click log in the Yandex relevance-prediction layout (PyClick's
  ``examples/data/trainSample``: 20 query keys, 10 ranks, 35k sessions). Its sessions
  become JSON Lines (`RelpredSessions`), ``tfrs-debias convert`` splits them by session
  into train / valid / test (70 / 10 / 20%), and each estimator is trained
  (``tfrs-debias train``, default flags), exported and loaded back. Measured on the
  test sessions: the learned examination curve (the ``biased`` signature, relative to
  rank 1) against PBM fitted by EM on the training sessions (mean / max relative error
  per rank) and the click perplexity beside PBM's, rank CTR's and document CTR's.
* ``--coat``: a folder with Coat's ``user.txt`` (self-selected ratings) and ``random.txt``
  (ratings of randomly assigned items), e.g. from the AutoDebias repository.
  ``tfrs-debias ratings`` turns them into logs (click = rating >= 4); each estimator is
  trained, exported and scored with its served score on the random test (AUC, NDCG@5
  per user), beside logistic matrix factorisation (`MatrixFactorization`, its L2 picked
  on the validation split).

The data sets' licences forbid committing them: pass local paths. Nothing is
downloaded. Writes ``OUT/real_logs.md``, ``OUT/real_logs.json`` and
``OUT/click_curves.png`` (each model's curve beside PBM's). Reruns reuse the converted
data, runs and exports under ``OUT`` (``--fresh`` starts over).

Usage: python benchmarks/real_logs.py --click-log PATH --coat DIR [--out real_logs_output]
       [--models multi_task,position_debiased,...] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from tfrs_debias.cli.main import main as cli

RATINGS_NEEDS_BIAS = ("dual_learning",)  # needs a bias feature; ratings have none


def run_cli(*argv: str) -> None:
    print("$ tfrs-debias " + " ".join(argv), flush=True)
    code = cli(list(argv))
    if code != 0:
        raise SystemExit(f"tfrs-debias {argv[0]} failed with exit code {code}")


def train_and_export(data: str, out: str, model: str) -> str:
    """``tfrs-debias train`` with default flags, then ``export``; the export's path."""
    run, export = os.path.join(out, "runs", model), os.path.join(out, "exports", model)
    if not os.path.exists(os.path.join(export, "1")):
        run_cli(
            "train",
            "--train-files", os.path.join(data, "train-*"),
            "--valid-files", os.path.join(data, "valid-*"),
            "--model", model, "--out", run, "--overwrite",
        )  # fmt: skip
        run_cli("export", "--run", run, "--out", export, "--version", "1")
    return os.path.join(export, "1")


def click_log_table(path: str, out: str, models: list[str]):
    from tfrs_debias.data import LogDirectory
    from tfrs_debias.data.sources.relpred_sessions import RelpredSessions
    from tfrs_debias.evaluation import Scorer
    from tfrs_debias.evaluation.click_model_comparison import ClickModelBaselines
    from tfrs_debias.evaluation.real_log_table import RealLogTable

    data = os.path.join(out, "data")
    if not os.path.exists(os.path.join(data, "schema.json")):
        os.makedirs(out, exist_ok=True)
        sessions = RelpredSessions.read(path)
        jsonl = os.path.join(out, "sessions.jsonl")
        sessions.write_jsonl(jsonl)
        print(f"{path}: {len(sessions)} sessions", flush=True)
        run_cli(
            "convert", "--input", jsonl, "--out", data, "--user-id", "query",
            "--request-id", "session", "--slate-items", "docs", "--clicked-items", "clicked",
            "--valid-fraction", "0.1", "--test-fraction", "0.2", "--no-progress",
        )  # fmt: skip
    folder = LogDirectory(data)
    baselines = ClickModelBaselines(
        folder.require("train"), folder.require("test"), folder.schema()
    )
    table = RealLogTable("click")
    for model in models:
        row = table.add_click_row(
            model, Scorer.from_saved_model(train_and_export(data, out, model)), baselines
        )
        print(json.dumps({k: v for k, v in row.items() if "curve" not in k or "error" in k}))
    return table


def coat_table(folder_path: str, out: str, models: list[str]):
    from tfrs_debias.data import LogDirectory
    from tfrs_debias.data.io.reader import read_columns
    from tfrs_debias.evaluation import Evaluator, Scorer
    from tfrs_debias.evaluation.matrix_factorization import MatrixFactorization
    from tfrs_debias.evaluation.real_log_table import RealLogTable

    data = os.path.join(out, "data")
    if not os.path.exists(os.path.join(data, "schema.json")):
        run_cli(
            "ratings", "--train", os.path.join(folder_path, "user.txt"),
            "--test", os.path.join(folder_path, "random.txt"), "--out", data, "--no-progress",
        )  # fmt: skip
    folder = LogDirectory(data)
    schema, test = folder.schema(), folder.require("test")
    evaluator = Evaluator(folder.truth(), ks=(5,), tradeoff_users=0)
    table = RealLogTable("ratings")
    for model in models:
        if model in RATINGS_NEEDS_BIAS:
            continue
        scorer = Scorer.from_saved_model(train_and_export(data, out, model))
        print(json.dumps(table.add_ratings_row(model, scorer, evaluator, test)))
    user, item, label = schema.user_id.name, schema.item_id.name, schema.tasks[0]
    split = {s: read_columns(folder.require(s), schema) for s in ("train", "valid")}
    mf = MatrixFactorization.fit_on_validation(
        *[(c[user], c[item], c[label]) for c in (split["train"], split["valid"])]
    )
    scorer = Scorer((label,), schema, lambda f: mf.predict(f[user], f[item])[:, None], None, False)
    print(json.dumps(table.add_ratings_row(f"MF (l2 {mf.l2:g})", scorer, evaluator, test)))
    return table


def plot_curves(table, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in table.rows if r.get("learned_curve")]
    if rows:
        ranks = range(1, len(rows[0]["pbm_curve"]) + 1)
        ax.plot(ranks, rows[0]["pbm_curve"], "k-o", label="PBM (EM)", linewidth=2)
        for r in rows:
            ax.plot(ranks, r["learned_curve"], "--", marker=".", label=r["model"])
            ax.fill_between(ranks, r["learned_low"], r["learned_high"], alpha=0.15)
    ax.set_xlabel("rank")
    ax.set_ylabel("examination relative to rank 1")
    ax.set_title("Real search click log: learned curve vs PBM")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    from tfrs_debias.models.registry import MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--click-log", help="Yandex relevance-prediction sessions (trainSample)")
    parser.add_argument("--coat", help="folder with Coat's user.txt and random.txt")
    parser.add_argument("--out", default="real_logs_output", help="data, runs, exports, tables")
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="estimators to run")
    parser.add_argument("--fresh", action="store_true", help="remove OUT's earlier runs first")
    args = parser.parse_args(argv)
    if not (args.click_log or args.coat):
        parser.error("give --click-log and/or --coat")
    models = [m for m in args.models.split(",") if m]
    if args.fresh and os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out, exist_ok=True)
    sections, results = [], {}
    if args.click_log:
        table = click_log_table(args.click_log, os.path.join(args.out, "click"), models)
        plot_curves(table, os.path.join(args.out, "click_curves.png"))
        sections.append(f"## Search click log ({args.click_log})\n\n{table.markdown()}")
        results["click"] = table.rows
    if args.coat:
        table = coat_table(args.coat, os.path.join(args.out, "coat"), models)
        sections.append(f"## Coat ({args.coat})\n\n{table.markdown()}")
        results["coat"] = table.rows
    text = "\n\n".join(sections) + "\n"
    print("\n" + text)
    with open(os.path.join(args.out, "real_logs.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(args.out, "real_logs.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print("tables in", os.path.join(args.out, "real_logs.md"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
