"""Commands that fit models: train, tune."""

from __future__ import annotations

import argparse

from tfrs_debias.cli.common import (
    EXIT_OK,
    add_files_flag,
    add_model_flag,
    add_quiet_flag,
    add_schema_flags,
    load_json,
    non_negative_int,
    positive_float,
    positive_int,
    tasks_of,
)


def cmd_train(args: argparse.Namespace) -> int:
    from tfrs_debias.training import make_strategy, train_from_files

    # MultiWorkerMirroredStrategy must exist before any other TensorFlow work.
    strategy = make_strategy(args.strategy)
    overrides = load_json(args.config)
    if args.model:
        overrides["model"] = args.model
    result = train_from_files(
        args.train_files,
        args.out,
        overrides,
        schema_file=args.schema,
        tasks=tasks_of(args),
        valid_files=args.valid_files,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        strategy=strategy,
        early_stopping_patience=args.early_stopping_patience,
        validate=args.validate,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        verbose=0 if args.quiet else "auto",
        overwrite=args.overwrite,
        keep_checkpoints=args.keep_checkpoints or None,
        random_slice_files=args.random_slice_files,
    )
    if result.is_chief:
        print(result.summary())
    return EXIT_OK


def cmd_tune(args: argparse.Namespace) -> int:
    from tfrs_debias.data.io.files import expand_files
    from tfrs_debias.schema import resolve_schema
    from tfrs_debias.tuning import SearchSpace, format_results, run_tuning

    files = expand_files(args.train_files)
    schema = resolve_schema(args.schema, files, tasks=tasks_of(args))
    space = SearchSpace.from_json(args.model, args.space, args.fix or [], schema=schema)
    result = run_tuning(
        files,
        args.valid_files,
        schema,
        args.model,
        args.out,
        tuner=args.tuner,
        max_trials=args.max_trials,
        epochs=args.epochs,
        batch_size=args.batch_size,
        space=space,
        objective=args.objective,
        truth_dir=args.truth,
        random_slice_files=args.random_slice_files,
        steps_per_epoch=args.steps_per_epoch,
        seed=args.seed,
        verbose=0 if args.quiet else "auto",
    )
    direction = "higher" if result.direction == "max" else "lower"
    print(f"objective: {result.objective} ({direction} is better)")
    print(format_results(result))
    print(f"best config: {args.out}/best_config.json (tfrs-debias train --config accepts it)")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an estimator on TFRecord impression logs",
        description="Train with Keras fit (progress bar, TensorBoard logs in RUN_DIR/logs, "
        "per-epoch checkpoints, BackupAndRestore so a killed run resumes, early stopping on "
        "validation loss). Batch size and epochs adapt to the data size unless given; "
        "without --valid-files a deterministic 10%% of the rows is held out for early "
        "stopping. The run directory keeps config, schema, vocabularies, final weights and "
        "metrics.json.",
    )
    add_files_flag(p, "--train-files", "glob of training TFRecords")
    add_files_flag(p, "--valid-files", "glob of validation TFRecords", required=False)
    add_files_flag(
        p,
        "--random-slice-files",
        "glob of randomly exposed rows (the random_slice split of `ratings --slice-fraction`): "
        "after training, the served score is corrected by weights fitted on them (intercept, "
        "scale, log exposure counts of item and user; see metrics.json)",
        required=False,
    )
    add_schema_flags(p)
    add_model_flag(p, None, "estimator (default: position_debiased, or the --config's)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="maximum epochs (default: adapted to the data size, >= 5)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help="global batch size (default: adapted to the data size, 256..4096)",
    )
    p.add_argument(
        "--learning-rate",
        type=positive_float,
        help="Adam learning rate (default: the config's, 1e-3)",
    )
    p.add_argument(
        "--config",
        help="JSON file or inline JSON object of EstimatorConfig fields (e.g. a tuner's "
        "best_config.json): widths, bias_combine, dropouts, ...",
    )
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi_worker"),
        default="default",
        help="tf.distribute strategy; multi_worker reads TF_CONFIG",
    )
    p.add_argument(
        "--early-stopping-patience",
        type=non_negative_int,
        default=2,
        help="epochs above the validation loss's plateau (within 2/sqrt(validation rows) of "
        "its lowest) before stopping; the plateau's last epoch is kept; 0 disables",
    )
    p.add_argument(
        "--validate",
        choices=("sample", "all", "none"),
        default="sample",
        help="pre-check before any pass over the data: first 10k records per file "
        "(sample), every record (all) or none; every record is checked again as it is "
        "read, so a bad one always stops the run with its file, record and field",
    )
    p.add_argument(
        "--steps-per-epoch", type=positive_int, help="default: one pass over the training rows"
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="shuffling and initialisation seed"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --out (a finished one, or one with other settings), "
        "removing its files; without it such a rerun is refused, and a killed run with the "
        "same settings resumes",
    )
    p.add_argument(
        "--keep-checkpoints",
        type=non_negative_int,
        default=2,
        help="per-epoch checkpoints kept in RUN_DIR/checkpoints: the last N and the best "
        "epoch's (default 2; 0 keeps every epoch's)",
    )
    add_quiet_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "tune",
        help="keras-tuner search over an estimator family",
        description="Search widths (mixture components, gate units, MMoE experts), depths, "
        "embedding sizes, bias-tower regularisation and learning rate with keras-tuner. The "
        "objective is NDCG@10 of the debiased path against a truth file when one is beside "
        "the validation data, NDCG on a randomized-traffic slice when given (its AUC on "
        "logs without request ids, such as ratings), else validation log-loss (which "
        "measures the biased fit, not debiasing). Resumable: a re-run with the same --out "
        "continues the search.",
    )
    add_files_flag(p, "--train-files", "training TFRecords")
    add_files_flag(p, "--valid-files", "validation TFRecords")
    add_schema_flags(p)
    add_model_flag(p, "factorized", "estimator family (factorized)")
    p.add_argument(
        "--tuner",
        choices=("random", "bayesian", "hyperband"),
        default="random",
        help="search algorithm (random)",
    )
    p.add_argument("--max-trials", type=positive_int, default=10, help="trials in all (10)")
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="maximum epochs per trial (default: as train, from the data size; early "
        "stopping on the validation loss ends a trial sooner)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help="batch size (default: as train, from the data size)",
    )
    p.add_argument("--steps-per-epoch", type=positive_int, help="default: one pass over the rows")
    p.add_argument("--out", required=True, help="tuning directory (resumable)")
    p.add_argument(
        "--space", help="JSON narrowing the space: {name: [choices] | {min, max, log} | value}"
    )
    p.add_argument("--fix", action="append", help="fix a hyper-parameter NAME=VALUE (repeat)")
    p.add_argument(
        "--objective",
        choices=("auto", "ndcg", "random_ndcg", "random_auc", "val_loss"),
        default="auto",
        help="what to optimise (auto: see description)",
    )
    p.add_argument(
        "--truth", help="dataset directory with truth.npz (default: beside the validation files)"
    )
    p.add_argument(
        "--random-slice-files",
        action="append",
        help="randomized-traffic logs for the random_ndcg / random_auc objectives",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="search and shuffling seed")
    add_quiet_flag(p)
    p.set_defaults(func=cmd_tune)
