"""``tfrs-debias``: a thin command line over the library.

Every subcommand is a function ``cmd_NAME(args) -> int``; ``main(argv)`` parses and
dispatches, so tests call ``main(["simulate", "--out", d])`` exactly as a user types.
Errors in the input (bad files, records, schemas, flags) print one clear line to
stderr and exit 2; ``validate`` exits 1 when it finds problems.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A user-facing error: printed without a stack trace."""


def _compression(value: str) -> str:
    return {"none": "", "gzip": "GZIP"}[value]


def _load_json(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CommandError(f"{path}: config file not found") from None
    except json.JSONDecodeError as err:
        raise CommandError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path}: config must be a JSON object")
    return data


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory for logs, schema.json, truth")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files")
    p.add_argument("--shards", type=int, default=2, help="files for train and oracle_train")
    p.add_argument(
        "--compression",
        choices=("none", "gzip"),
        default="none",
        help="TFRecord compression (readers detect it per file)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


# -- simulate -----------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from tfrs_debias.data.simulator import ImpressionSimulator, SimulatorConfig

    overrides = _load_json(args.config)
    for flag in (
        "num_users",
        "num_items",
        "num_requests",
        "slate_length",
        "candidates_per_request",
        "num_test_users",
        "popularity_conformity",
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides[flag] = value
    overrides["seed"] = args.seed
    try:
        config = (SimulatorConfig.small if args.small else SimulatorConfig)(**overrides)
    except TypeError as err:
        raise CommandError(f"bad simulator config: {err}") from None
    sim = ImpressionSimulator(config)
    written = sim.write(
        args.out,
        num_shards=args.shards,
        compression=_compression(args.compression),
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    _print_written(args.out, written)
    return EXIT_OK


def _print_written(out: str, written: dict[str, list[str]]) -> None:
    for split, files in written.items():
        print(f"{split:<13} {len(files)} file(s): {files[0]}")
    print(f"schema        {out}/schema.json")
    print(f"truth         {out}/truth.npz, {out}/truth.json")


def _simulate_parser(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="write simulated impression logs with ground truth",
        description="Draw impression logs from the ground-truth simulator and write "
        "train/valid/test TFRecords, oracle twins (oracle_train, oracle_valid), "
        "schema.json and the truth file (truth.npz + truth.json).",
    )
    _add_output_flags(p)
    p.add_argument("--small", action="store_true", help="a tiny world (for tests and trials)")
    p.add_argument("--config", help="JSON file of SimulatorConfig fields to override")
    p.add_argument("--num-users", type=int, help="number of users (default 20000)")
    p.add_argument("--num-items", type=int, help="number of items (default 2000)")
    p.add_argument("--num-requests", type=int, help="requests (slates) to log (default 60000)")
    p.add_argument("--slate-length", type=int, help="positions per slate (default 10)")
    p.add_argument("--candidates-per-request", type=int, help="candidates ranked per slate (50)")
    p.add_argument("--num-test-users", type=int, help="users in the truth file (default 2000)")
    p.add_argument(
        "--popularity-conformity",
        type=float,
        help="click inflation for popular items beyond relevance (default 0.5)",
    )
    p.set_defaults(func=cmd_simulate)


# -- validate -----------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from tfrs_debias.data.files import expand_files
    from tfrs_debias.data.validation import validate_files
    from tfrs_debias.schema import resolve_schema

    files = expand_files(args.files)
    schema = resolve_schema(args.schema, files, tasks=args.tasks.split(",") if args.tasks else None)
    report = validate_files(files, schema, max_issues=args.max_issues)
    print(report.format())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _validate_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check every record of TFRecord impression logs",
        description="Read every record and report, with file and record index, missing or "
        "wrongly typed features, positions out of range, labels not 0/1, NaN/inf, values "
        "outside a vocabulary and corrupted files. Exit 1 if any problem is found.",
    )
    p.add_argument(
        "--files",
        required=True,
        action="append",
        help="glob of TFRecord files (repeat for several)",
    )
    p.add_argument(
        "--schema",
        help="schema JSON (default: schema.json beside the files, else the default schema)",
    )
    p.add_argument("--tasks", help="comma-separated labels for the default schema (click,like)")
    p.add_argument("--max-issues", type=int, default=200, help="problems to list (all are counted)")
    p.set_defaults(func=cmd_validate)


# -- movielens ----------------------------------------------------------------------
def cmd_movielens(args: argparse.Namespace) -> int:
    from tfrs_debias.data.movielens import (
        MovieLensConverter,
        config_from_dict,
        read_ratings,
        read_tfds_ratings,
    )

    if bool(args.ratings) == bool(args.tfds):
        raise CommandError("give exactly one of --ratings FILE or --tfds NAME")
    overrides = _load_json(args.config)
    overrides["seed"] = args.seed
    if args.slate_length:
        overrides["slate_length"] = args.slate_length
    config = config_from_dict(overrides)
    if args.ratings:
        ratings = read_ratings(args.ratings, None if args.format == "auto" else args.format)
    else:
        ratings = read_tfds_ratings(args.tfds, args.tfds_data_dir)
    print(f"read {len(ratings)} ratings from {ratings.source}")
    written = MovieLensConverter(config).write(
        ratings,
        args.out,
        num_shards=args.shards,
        compression=_compression(args.compression),
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    _print_written(args.out, written)
    return EXIT_OK


def _movielens_parser(sub) -> None:
    p = sub.add_parser(
        "movielens",
        help="turn MovieLens ratings into impression logs with ground truth",
        description="Read a local MovieLens ratings file (ml-100k u.data, ml-1m ratings.dat, "
        "ml-latest ratings.csv; auto-detected) or a tensorflow-datasets MovieLens dataset "
        "already prepared on disk, and write the same outputs as `simulate`. Never downloads.",
    )
    _add_output_flags(p)
    p.add_argument("--ratings", help="path of the ratings file")
    p.add_argument(
        "--format",
        choices=("auto", "ml-100k", "ml-1m", "ml-latest"),
        default="auto",
        help="file format (default: detected from the first line)",
    )
    p.add_argument("--tfds", help="tensorflow-datasets name, e.g. movielens/100k-ratings")
    p.add_argument("--tfds-data-dir", help="tensorflow-datasets data_dir holding it")
    p.add_argument("--slate-length", type=int, help="positions per slate (default 10)")
    p.add_argument("--config", help="JSON file of MovieLensConfig fields to override")
    p.set_defaults(func=cmd_movielens)


# -- train --------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from tfrs_debias.data.files import expand_files
    from tfrs_debias.models import EstimatorConfig
    from tfrs_debias.schema import resolve_schema
    from tfrs_debias.training import make_strategy, train

    # MultiWorkerMirroredStrategy must exist before any other TensorFlow work.
    strategy = make_strategy(args.strategy)
    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    files = expand_files(args.train_files)
    schema = resolve_schema(args.schema, files, tasks=tasks)
    overrides = _load_json(args.config)
    if args.model:
        overrides["model"] = args.model
    if tasks:
        overrides["tasks"] = list(tasks)
    config = EstimatorConfig.from_dict(overrides)
    result = train(
        files,
        args.out,
        config,
        schema,
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
    )
    final = result.metrics["final"]
    shown = ", ".join(
        f"{k}={v:.4f}" for k, v in sorted(final.items()) if "auc" in k or k.endswith("loss")
    )
    print(f"trained {config.model} for {result.metrics['epochs_run']} epochs: {shown}")
    print(f"throughput {result.metrics['examples_per_sec']:,.0f} examples/s")
    print(f"run written to {args.out}")
    return EXIT_OK


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an estimator on TFRecord impression logs",
        description="Train with Keras fit (progress bar, TensorBoard logs in RUN_DIR/logs, "
        "per-epoch checkpoints, BackupAndRestore so a killed run resumes, early stopping on "
        "validation loss). The run directory keeps config, schema, vocabularies, final "
        "weights and metrics.json.",
    )
    p.add_argument(
        "--train-files",
        required=True,
        action="append",
        help="glob of training TFRecords (repeat for several)",
    )
    p.add_argument("--valid-files", action="append", help="glob of validation TFRecords")
    p.add_argument(
        "--schema",
        help="schema JSON (default: schema.json beside the files, else the default schema)",
    )
    p.add_argument(
        "--model",
        choices=("multi_task", "position_debiased", "factorized", "anchored_factorized"),
        help="estimator (default: position_debiased, or the --config's)",
    )
    p.add_argument("--tasks", help="comma-separated labels to train on (default: all)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--epochs", type=int, default=5, help="maximum epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=4096, help="global batch size (4096)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    p.add_argument(
        "--config",
        help="JSON of EstimatorConfig fields (e.g. a tuner's "
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
        type=int,
        default=2,
        help="epochs without val_loss improvement before stopping; 0 disables",
    )
    p.add_argument(
        "--validate",
        choices=("sample", "all", "none"),
        default="sample",
        help="check input before training: first 10k records per file (sample), "
        "every record (all) or none",
    )
    p.add_argument("--steps-per-epoch", type=int, help="default: one pass over the training rows")
    p.add_argument("--seed", type=int, default=0, help="shuffling and initialisation seed")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.set_defaults(func=cmd_train)


# -- main ---------------------------------------------------------------------------
PARSERS: list[Callable] = [_simulate_parser, _validate_parser, _movielens_parser, _train_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrs-debias",
        description="Train multi-task rankers on impression logs and serve scores with "
        "position, device and popularity bias taken out.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfrs_debias.data.validation import InvalidDataError
    from tfrs_debias.schema import SchemaError

    try:
        return args.func(args)
    except InvalidDataError as err:
        print(f"tfrs-debias {args.command}: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (CommandError, SchemaError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"tfrs-debias {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
