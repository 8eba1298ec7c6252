"""`run_demo`: the whole story on the embedded default, as the commands a user types.

simulate -> validate -> train naive (multi-task), position-debiased and the oracle ->
export naive and debiased -> evaluate all three against the ground truth (report with
tables and plots) -> select top items for a few users from the debiased export.
"""

from __future__ import annotations

import json
import os

from tfrs_debias.data.truth import GroundTruth

MODELS = (  # name, estimator, training split
    ("naive", "multi_task", "train"),
    ("position_debiased", "position_debiased", "train"),
    ("oracle", "multi_task", "oracle_train"),
)


class DemoError(RuntimeError):
    pass


def run_demo(
    out: str = "demo_output",
    saved_models: str = "saved_models",
    epochs: int = 5,
    small: bool = False,
    quiet: bool = False,
) -> dict:
    """Runs the demo; returns the evaluation summary rows. Raises `DemoError` if a step fails."""
    from tfrs_debias.cli import main as cli

    def step(*argv: str) -> None:
        print(f"\n$ tfrs-debias {' '.join(argv)}", flush=True)
        code = cli(list(argv))
        if code:
            raise DemoError(f"step failed with exit code {code}: tfrs-debias {' '.join(argv)}")

    data = os.path.join(out, "data")
    progress = ("--no-progress",) if quiet else ()
    step("simulate", "--out", data, "--overwrite", *(("--small",) if small else ()), *progress)
    step("validate", "--files", os.path.join(data, "train*"))
    exports = {}
    for name, model, split in MODELS:
        run = os.path.join(out, "runs", name)
        step(
            "train",
            "--train-files",
            os.path.join(data, f"{split}-*"),
            "--valid-files",
            os.path.join(data, "valid-*"),
            "--model",
            model,
            "--out",
            run,
            "--epochs",
            str(epochs),
            "--validate",
            "none",
            *(("--quiet",) if quiet else ()),
        )
        exports[name] = os.path.join(saved_models, f"demo_{name}")
        step("export", "--run", run, "--out", exports[name])
    report = os.path.join(out, "report")
    step(
        "evaluate",
        "--data",
        data,
        "--out",
        report,
        *[arg for name, path in exports.items() for arg in ("--model", f"{name}={path}")],
    )
    truth = GroundTruth.load(data)
    for k in range(3):
        user = int(truth.users[k * len(truth.users) // 3])
        cands = os.path.join(out, f"candidates_user{user}.csv")
        with open(cands, "w", encoding="utf-8") as fh:
            fh.write("item_id,item_genre\n")
            row = list(truth.users).index(user)
            for item, genre in zip(
                truth.candidates[row], truth.item_features["item_genre"][row], strict=True
            ):
                fh.write(f"{item},{genre}\n")
        step(
            "select",
            "--model",
            exports["position_debiased"],
            "--user",
            str(user),
            "--user-feature",
            f"user_segment={truth.user_features['user_segment'][row]}",
            "--candidates",
            cands,
            "--k",
            "5",
        )
    with open(os.path.join(report, "metrics.json"), encoding="utf-8") as fh:
        summary = json.load(fh)["summary"]
    print(f"\nreport: {report}/report.md (plots: examination.png, ndcg_buckets.png)")
    print(f"exports: {', '.join(exports.values())}")
    return summary
