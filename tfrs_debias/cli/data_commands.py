"""Commands that write or check datasets: simulate, validate, movielens, ratings, popularity."""

from __future__ import annotations

import argparse
import sys

from tfrs_debias.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    CommandError,
    add_dataset_output_flags,
    add_files_flag,
    add_overwrite_flags,
    add_schema_flags,
    dataset_write_options,
    finite_float,
    fraction,
    load_json,
    non_negative_int,
    positive_int,
    print_written,
    tasks_of,
)

_SIMULATOR_FLAGS = (
    ("num_users", positive_int, "number of users (default 20000)"),
    ("num_items", positive_int, "number of items (default 2000)"),
    ("num_requests", positive_int, "requests (slates) to log (default 60000)"),
    ("slate_length", positive_int, "positions per slate (default 10)"),
    ("candidates_per_request", positive_int, "candidates ranked per slate (50)"),
    ("num_test_users", positive_int, "users in the truth file (default 2000)"),
    (
        "popularity_conformity",
        finite_float,
        "click inflation for popular items beyond relevance (0.5)",
    ),
)


def cmd_simulate(args: argparse.Namespace) -> int:
    from tfrs_debias.data.io.log_dataset import check_dataset_target
    from tfrs_debias.data.sources.simulator import ImpressionSimulator, simulator_config

    check_dataset_target(args.out, args.overwrite)  # before simulating, not after

    overrides = load_json(args.config)
    overrides.update(
        {
            name: getattr(args, name)
            for name, _, _ in _SIMULATOR_FLAGS
            if getattr(args, name) is not None  # 0 is a value (e.g. no conformity)
        }
    )
    overrides["seed"] = args.seed
    config = simulator_config(args.preset, overrides)
    written = ImpressionSimulator(config).write(args.out, **dataset_write_options(args))
    print_written(args.out, written)
    print(f"truth         {args.out}/truth.npz, {args.out}/truth.json")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from tfrs_debias.data.io.files import expand_files
    from tfrs_debias.data.io.validation import validate_files
    from tfrs_debias.schema import resolve_schema

    files = expand_files(args.files)
    schema = resolve_schema(args.schema, files, tasks=tasks_of(args))
    report = validate_files(files, schema, max_issues=args.max_issues)
    print(report.format())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_movielens(args: argparse.Namespace) -> int:
    from tfrs_debias.data.io.log_dataset import check_dataset_target
    from tfrs_debias.data.sources.movielens import (
        MovieLensConverter,
        config_from_dict,
        read_ratings,
        read_tfds_ratings,
    )

    if bool(args.ratings) == bool(args.tfds):
        raise CommandError("give exactly one of --ratings FILE or --tfds NAME")
    check_dataset_target(args.out, args.overwrite)  # before reading and converting
    overrides = load_json(args.config)
    overrides["seed"] = args.seed
    if args.slate_length:
        overrides["slate_length"] = args.slate_length
    config = config_from_dict(overrides)
    if args.ratings:
        ratings = read_ratings(args.ratings, None if args.format == "auto" else args.format)
    else:
        ratings = read_tfds_ratings(args.tfds, args.tfds_data_dir)
    print(f"read {len(ratings)} ratings from {ratings.source}")
    written = MovieLensConverter(config).write(ratings, args.out, **dataset_write_options(args))
    print_written(args.out, written)
    return EXIT_OK


def cmd_popularity(args: argparse.Namespace) -> int:
    from tfrs_debias.data.sources.popularity import add_popularity_features

    schema = add_popularity_features(
        args.data,
        args.out,
        task=args.task,
        timestamp=args.timestamp_feature,
        window_seconds=args.window_seconds,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    names = ", ".join(f.name for f in schema.popularity_features)
    print(f"wrote {args.out} with popularity features {names}")
    print(f"factors: {args.out}/popularity.npz; schema: {args.out}/schema.json")
    return EXIT_OK


def cmd_ratings(args: argparse.Namespace) -> int:
    from tfrs_debias.data.io.log_dataset import check_dataset_target
    from tfrs_debias.data.sources.ratings import ratings_dataset, ratings_summary

    check_dataset_target(args.out, args.overwrite)  # before reading and converting

    written = ratings_dataset(
        args.train,
        args.test,
        args.out,
        positive_threshold=args.positive_threshold,
        valid_fraction=args.valid_fraction,
        slice_fraction=args.slice_fraction,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print_written(args.out, written)
    print(ratings_summary(args.out))
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from tfrs_debias.data.sources.log_converter import (
        ColumnMapping,
        ConversionError,
        LogConverter,
    )

    try:
        mapping = ColumnMapping(
            user_id=args.user_id,
            item_id=args.item_id,
            labels=tuple(args.label or ()),
            position=args.position,
            bias=tuple(args.bias or ()),
            request_id=args.request_id,
            propensity=args.propensity,
            user_features=tuple(args.user_feature or ()),
            item_features=tuple(args.item_feature or ()),
            slate_items=args.slate_items,
            clicked_items=args.clicked_items,
            clicked_ranks=args.clicked_ranks,
            slate_label=args.slate_label,
            one_based=args.one_based,
        )
        converter = LogConverter(
            mapping, args.valid_fraction, args.test_fraction, fmt=args.format, seed=args.seed
        )
    except ValueError as err:
        raise CommandError(str(err)) from None
    try:
        schema, written = converter.convert(args.input, args.out, **dataset_write_options(args))
    except ConversionError as err:  # a bad row: exit 1, like a malformed record
        print(f"tfrs-debias convert: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    roles = ", ".join(f"{f.name} ({f.role}, {f.dtype})" for f in schema.features)
    print(f"features: {roles}")
    print_written(args.out, written)
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="write simulated impression logs with ground truth",
        description="Draw impression logs from the ground-truth simulator and write "
        "train/valid/test TFRecords, the full-information twins (full_train, full_valid: "
        "same slates, every impression examined), the same-click-volume twins (oracle_*), "
        "the examined twins (examined_*: the logs' examined impressions only, the bound on "
        "what debiasing them can reach), schema.json and the truth file (truth.npz + "
        "truth.json).",
    )
    add_dataset_output_flags(p)
    p.add_argument(
        "--preset",
        choices=("default", "small", "search"),
        default="default",
        help="default (600k impressions), small (tests and trials) or search (a few "
        "hundred queries x 10 ranks, one device: the shape of search click logs)",
    )
    p.add_argument(
        "--small", action="store_const", const="small", dest="preset", help="--preset small"
    )
    p.add_argument(
        "--config", help="JSON file or inline JSON object of SimulatorConfig fields to override"
    )
    for name, kind, text in _SIMULATOR_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), type=kind, help=text)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "validate",
        help="check every record of TFRecord impression logs",
        description="Read every record and report, with file and record index, missing or "
        "wrongly typed features, values out of a declared range, labels not 0/1, NaN/inf "
        "and corrupted files; values of open categorical features (device, surface, ...) "
        "are summarised, not rejected. Exit 1 if any problem is found.",
    )
    add_files_flag(p, "--files", "glob of TFRecord files")
    add_schema_flags(p)
    p.add_argument("--max-issues", type=int, default=200, help="problems to list (all are counted)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "movielens",
        help="turn MovieLens ratings into impression logs with ground truth",
        description="Read a local MovieLens ratings file (ml-100k u.data, ml-1m ratings.dat, "
        "ml-latest ratings.csv; auto-detected) or a tensorflow-datasets MovieLens dataset "
        "already prepared on disk, and write the same outputs as `simulate`. Never downloads.",
    )
    add_dataset_output_flags(p)
    p.add_argument("--ratings", help="path of the ratings file")
    p.add_argument(
        "--format",
        choices=("auto", "ml-100k", "ml-1m", "ml-latest"),
        default="auto",
        help="file format (default: detected from the first line)",
    )
    p.add_argument("--tfds", help="tensorflow-datasets name, e.g. movielens/100k-ratings")
    p.add_argument("--tfds-data-dir", help="tensorflow-datasets data_dir holding it")
    p.add_argument("--slate-length", type=positive_int, help="positions per slate (default 10)")
    p.add_argument(
        "--config", help="JSON file or inline JSON object of MovieLensConfig fields to override"
    )
    p.set_defaults(func=cmd_movielens)

    p = sub.add_parser(
        "ratings",
        help="explicit ratings with a random (unbiased) test set -> logs and truth",
        description="Read 'user item rating' triples (whitespace or comma separated): a "
        "training file from the normal, biased policy and a test file of randomly assigned "
        "items. Writes train/valid/test logs with click = rating >= threshold (no position "
        "or device features) and a truth file so `evaluate` reports NDCG@5 per user and AUC "
        "on the random test. Training rows carry an estimated propensity (item popularity, "
        "times a naive-Bayes label factor when --slice-fraction gives a randomized slice) "
        'for --config \'{"propensity_weighting": "snips"}\'.',
    )
    p.add_argument("--train", required=True, help="training triples (biased policy)")
    p.add_argument("--test", required=True, help="test triples (random items)")
    p.add_argument("--out", required=True, help="output dataset directory")
    p.add_argument(
        "--positive-threshold",
        type=finite_float,
        default=4.0,
        help="rating that counts as a click (default 4)",
    )
    p.add_argument(
        "--valid-fraction",
        type=fraction,
        default=0.1,
        help="training triples held out for validation (0.1)",
    )
    p.add_argument(
        "--slice-fraction",
        type=fraction,
        default=0.0,
        help="test users whose random ratings become the random_slice split (e.g. 0.05): "
        "a randomized slice for tuning that also calibrates the logged propensities",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the validation split")
    add_overwrite_flags(p)
    p.set_defaults(func=cmd_ratings)

    p = sub.add_parser(
        "convert",
        help="CSV / JSON Lines / Parquet logs (impression or slate rows) -> TFRecord dataset",
        description="Convert logs as they come into train/valid/test TFRecords and "
        "schema.json. One row per impression: map the columns to roles with --user-id, "
        "--item-id, --label (repeat), --position, --bias, ... One row per slate (a search "
        "page, a feed session): --slate-items names the list of shown items in rank order "
        "and --clicked-items or --clicked-ranks the clicks; each shown item becomes an "
        "impression with its 0-based position and a click label. Each mapping is COLUMN or "
        "FEATURE=COLUMN. Integer columns stay integers, others become strings; rows are "
        "split by a hash of the request id (else the user id). Errors name file, line and "
        "column.",
    )
    add_files_flag(p, "--input", "log files or globs: .csv/.tsv, .jsonl, .parquet")
    p.add_argument(
        "--format",
        choices=("auto", "csv", "jsonl", "parquet"),
        default="auto",
        help="input format (default: from the file name)",
    )
    p.add_argument("--user-id", default="user_id", help="user id column (default user_id)")
    p.add_argument(
        "--item-id",
        default="item_id",
        help="item id column; with --slate-items, the name of the item feature (item_id)",
    )
    p.add_argument("--label", action="append", help="label column, one task each (repeat)")
    p.add_argument("--position", help="rank column (stored 0-based; see --one-based)")
    p.add_argument("--bias", action="append", help="other bias column, e.g. device (repeat)")
    p.add_argument("--request-id", help="request / page / session id column")
    p.add_argument("--propensity", help="logged propensity column, in (0, 1]")
    p.add_argument("--user-feature", action="append", help="user side-feature column (repeat)")
    p.add_argument("--item-feature", action="append", help="item side-feature column (repeat)")
    p.add_argument("--slate-items", help="slate rows: column listing the shown items in order")
    p.add_argument("--clicked-items", help="slate rows: column listing the clicked items")
    p.add_argument("--clicked-ranks", help="slate rows: column listing the clicked ranks")
    p.add_argument("--slate-label", default="click", help="slate rows: label name (click)")
    p.add_argument("--one-based", action="store_true", help="ranks in the input start at 1")
    p.add_argument(
        "--valid-fraction", type=fraction, default=0.1, help="requests dealt to valid (0.1)"
    )
    p.add_argument(
        "--test-fraction", type=fraction, default=0.1, help="requests dealt to test (0.1)"
    )
    add_dataset_output_flags(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "popularity",
        help="add PreRec item-popularity and user-activity factors to a dataset",
        description="Count each item's (user's) interactions on the training split, in "
        "windows of a timestamp feature when given, and add F^(p) = T / (mean T^p)^(1/p), "
        "p = 1..4, as popularity features (item_pop_p*, user_act_p*) to every split. The "
        "estimators' popularity tower learns from them; serving sets them to neutral.",
    )
    p.add_argument("--data", required=True, help="dataset directory to read")
    p.add_argument("--out", required=True, help="new dataset directory")
    p.add_argument("--task", help="label that counts as an interaction (default: first task)")
    p.add_argument("--timestamp-feature", help="int64 seconds feature for windowed counts")
    p.add_argument(
        "--window-seconds", type=positive_int, default=86_400, help="window (default 1 day)"
    )
    add_overwrite_flags(p)
    p.set_defaults(func=cmd_popularity)
