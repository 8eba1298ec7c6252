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
    p.add_argument(
        "--learning-rate", type=float, help="Adam learning rate (default: the config's, 1e-3)"
    )
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


# -- export -------------------------------------------------------------------------
def _parse_weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    weights = {}
    for part in text.split(","):
        task, sep, value = part.partition("=")
        try:
            weights[task.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task.strip():
            raise CommandError(f"--value-weights: {part!r} is not TASK=NUMBER")
    return weights


def cmd_export(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import export_saved_model
    from tfrs_debias.training import load_run

    model = load_run(args.run)
    weights = _parse_weights(args.value_weights)
    if weights:
        unknown = set(weights) - set(model.task_names)
        if unknown:
            raise CommandError(
                f"--value-weights names unknown tasks {sorted(unknown)}; "
                f"the model's tasks are {list(model.task_names)}"
            )
        weights = [weights.get(t, 0.0) for t in model.task_names]
    path = export_saved_model(
        model, args.out, version=args.version, value_weights=weights, force=args.force
    )
    print(f"exported {model.config.model} to {path}")
    print(f"inspect: saved_model_cli show --dir {path} --all")
    return EXIT_OK


def _export_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run as a SavedModel for TF Serving",
        description="Write saved_models/NAME/<version>/ (TF Serving layout; written to a "
        "temporary folder and renamed). serving_default takes no bias feature and returns "
        "per-task debiased probabilities and the value-weighted score; also 'examples', "
        "'regress', 'biased', 'select_top_k' and (factorized models) 'components'.",
    )
    p.add_argument("--run", required=True, help="training run directory")
    p.add_argument("--out", required=True, help="model base path, e.g. saved_models/NAME")
    p.add_argument("--version", type=int, help="integer version (default: next free one)")
    p.add_argument(
        "--value-weights",
        help="score weights, e.g. click=1,like=3 (default: the run config's; tasks left out get 0)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing version")
    p.set_defaults(func=cmd_export)


# -- select -------------------------------------------------------------------------
def cmd_select(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import TopItemSelector, read_candidates
    from tfrs_debias.serving.top_item_selector import _cast

    selector = TopItemSelector.from_saved_model(args.model)
    schema = selector.schema
    user = {schema.user_id.name: _cast(args.user, schema.user_id.dtype, "--user")}
    for part in args.user_features or []:
        name, _, value = part.partition("=")
        if name not in schema or schema[name].role != "user_feature":
            raise CommandError(f"--user-feature {name!r} is not a user feature of the model")
        user[name] = _cast(value, schema[name].dtype, f"--user-feature {name}")
    candidates = read_candidates(args.candidates, schema)
    exclude = read_candidates(args.exclude, schema)[schema.item_id.name] if args.exclude else ()
    picks = selector.select(
        user,
        candidates,
        k=args.k,
        exclude=exclude,
        value_weights=_parse_weights(args.value_weights),
    )
    if args.json:
        print(
            json.dumps([{"item_id": p.item_id, "score": p.score, **p.probabilities} for p in picks])
        )
        return EXIT_OK
    print(f"{'rank':<6}{'item_id':<12}{'score':>10}" + "".join(f"{t:>10}" for t in selector.tasks))
    for rank, p in enumerate(picks, start=1):
        print(
            f"{rank:<6}{p.item_id!s:<12}{p.score:>10.4f}"
            + "".join(f"{p.probabilities[t]:>10.4f}" for t in selector.tasks)
        )
    return EXIT_OK


def _select_parser(sub) -> None:
    p = sub.add_parser(
        "select",
        help="top-k items for one user from an exported model",
        description="Score one user's candidates with the debiased serving_default "
        "signature, combine task probabilities with value weights, drop excluded items and "
        "print the top k.",
    )
    p.add_argument(
        "--model", required=True, help="saved_models/NAME (newest version) or a version folder"
    )
    p.add_argument("--user", required=True, help="the user id")
    p.add_argument(
        "--user-feature",
        dest="user_features",
        action="append",
        help="user side feature NAME=VALUE (repeat)",
    )
    p.add_argument(
        "--candidates",
        required=True,
        help="ids '1,2,3', a file of one id per "
        "line, or a CSV with a header naming item_id and item side features",
    )
    p.add_argument("--exclude", help="ids never to return (already seen, blocked): list or file")
    p.add_argument("--value-weights", help="e.g. click=1,like=3 (default: the export's)")
    p.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_select)


# -- serve --------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import make_server

    server = make_server(
        args.model_base,
        host=args.host,
        port=args.port,
        name=args.model_name,
        max_body_bytes=args.max_body_bytes,
        verbose=args.verbose,
    )
    host, port = server.server_address[:2]
    name = server.model.name
    print(
        f"serving {name} from {server.model.model_base} at http://{host}:{port}/v1/models/{name}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def _serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve exports over TF Serving's REST API",
        description="Answer GET /v1/models/NAME[/versions/V][/metadata] and POST "
        "/v1/models/NAME[/versions/V]:predict like TF Serving. Serves the newest version and "
        "picks up new exports without restart.",
    )
    p.add_argument("--model-base", required=True, help="saved_models/NAME")
    p.add_argument("--model-name", help="name in URLs (default: the folder name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's)")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=16 << 20,
        help="larger requests get 413 (default 16 MiB)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)


# -- evaluate -----------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    import glob
    import os

    from tfrs_debias.data.truth import GroundTruth
    from tfrs_debias.evaluation import Evaluator, Scorer, format_table, summary_rows, write_report
    from tfrs_debias.schema import resolve_schema

    truth = None
    if os.path.exists(os.path.join(args.data, "truth.npz")):
        truth = GroundTruth.load(args.data)
    logs = args.logs or os.path.join(args.data, "test-*")
    if not glob.glob(logs):
        logs = None
    if truth is None and logs is None:
        raise CommandError(f"{args.data}: neither a truth file nor test logs to evaluate on")
    data_schema = resolve_schema(args.schema, [os.path.join(args.data, "x")])
    try:
        evaluator = Evaluator(
            truth,
            ks=tuple(int(k) for k in args.k.split(",")),
            user_thresholds=tuple(int(v) for v in args.user_buckets.split(",")),
            item_quantiles=tuple(float(v) for v in args.item_quantiles.split(",")),
        )
    except ValueError as err:
        raise CommandError(f"--k/--user-buckets/--item-quantiles: {err}") from None
    results = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = os.path.basename(spec.rstrip("/")), spec
        print(f"evaluating {name} ({path})", flush=True)
        results[name] = evaluator.evaluate(Scorer.from_saved_model(path), logs, data_schema)
    k = max(evaluator.ks)
    paths = write_report(results, args.out, task=args.task, k=k)
    rows = summary_rows(results, args.task, k, args.naive, args.oracle)
    if rows:
        print(format_table(rows, k))
    for name, res in results.items():
        for task, m in (res.get("logged") or {}).get("tasks", {}).items():
            print(f"{name} {task}: logged AUC {m['auc']:.4f}, log-loss {m['logloss']:.4f}")
    print(f"report: {paths['report']}; metrics: {paths['metrics']}")
    return EXIT_OK


def _evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate exported models against ground truth and logs",
        description="With a truth file: NDCG@k of the debiased serving_default scores against "
        "true relevance, by user-activity and item-popularity bucket, and the examination "
        "curve learned by the biased signature vs the true one. On logs: AUC and log-loss of "
        "the biased signature (SNIPS-weighted served metrics when propensities are logged). "
        "Writes report.md, metrics.json and PNG plots.",
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
    p.add_argument("--k", default="5,10", help="NDCG cut-offs (default 5,10)")
    p.add_argument(
        "--user-buckets",
        default="10,100",
        help="training impressions ending 'new' and starting 'power' (10,100)",
    )
    p.add_argument(
        "--item-quantiles",
        default="0.5,0.9",
        help="impression quantiles ending 'tail' and starting 'head' (0.5,0.9)",
    )
    p.add_argument("--naive", default="naive", help="model name that is 0%% of the gap")
    p.add_argument("--oracle", default="oracle", help="model name that is 100%% of the gap")
    p.set_defaults(func=cmd_evaluate)


# -- demo ---------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from tfrs_debias.demo import DemoError, run_demo

    try:
        run_demo(args.out, args.saved_models, args.epochs, small=args.small, quiet=args.quiet)
    except DemoError as err:
        raise CommandError(str(err)) from None
    return EXIT_OK


def _demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="simulate, train naive/debiased/oracle, evaluate, export, select",
        description="The whole story on the embedded default data in a few minutes: "
        "simulate -> validate -> train -> export -> evaluate (report + plots) -> select.",
    )
    p.add_argument("--out", default="demo_output", help="data, runs and report (demo_output)")
    p.add_argument("--saved-models", default="saved_models", help="where exports go")
    p.add_argument("--epochs", type=int, default=5, help="maximum training epochs (5)")
    p.add_argument("--small", action="store_true", help="a tiny world (seconds, for trials)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)


# -- tune ---------------------------------------------------------------------------
def cmd_tune(args: argparse.Namespace) -> int:
    from tfrs_debias.data.files import expand_files
    from tfrs_debias.schema import resolve_schema
    from tfrs_debias.tuning import SearchSpace, format_results, run_tuning

    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    files = expand_files(args.train_files)
    schema = resolve_schema(args.schema, files, tasks=tasks)
    if tasks:
        unknown = [t for t in tasks if t not in schema.tasks]
        if unknown:
            raise CommandError(f"--tasks {unknown} are not labels of the schema {schema.tasks}")
        schema = schema.replace(drop=[t for t in schema.tasks if t not in tasks])
    space = SearchSpace.from_json(args.model, args.space, args.fix or [])
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


def _tune_parser(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="keras-tuner search over an estimator family",
        description="Search widths (mixture components, gate units, MMoE experts), depths, "
        "embedding sizes, bias-tower regularisation and learning rate with keras-tuner. The "
        "objective is NDCG@10 of the debiased path against a truth file when one is beside "
        "the validation data, NDCG on a randomized-traffic slice when given, else "
        "validation log-loss (which measures the biased fit, not debiasing). Resumable: a "
        "re-run with the same --out continues the search.",
    )
    p.add_argument("--train-files", required=True, action="append", help="training TFRecords")
    p.add_argument("--valid-files", required=True, action="append", help="validation TFRecords")
    p.add_argument("--schema", help="schema JSON (default: schema.json beside the files)")
    p.add_argument(
        "--model",
        default="factorized",
        choices=("multi_task", "position_debiased", "factorized", "anchored_factorized"),
        help="estimator family (factorized)",
    )
    p.add_argument("--tasks", help="comma-separated labels to train on (default: all)")
    p.add_argument(
        "--tuner",
        choices=("random", "bayesian", "hyperband"),
        default="random",
        help="search algorithm (random)",
    )
    p.add_argument("--max-trials", type=int, default=10, help="trials in all (10)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (3)")
    p.add_argument("--batch-size", type=int, default=4096, help="batch size (4096)")
    p.add_argument("--steps-per-epoch", type=int, help="default: one pass over the rows")
    p.add_argument("--out", required=True, help="tuning directory (resumable)")
    p.add_argument(
        "--space", help="JSON narrowing the space: {name: [choices] | {min, max, log} | value}"
    )
    p.add_argument("--fix", action="append", help="fix a hyper-parameter NAME=VALUE (repeat)")
    p.add_argument(
        "--objective",
        choices=("auto", "ndcg", "random_ndcg", "val_loss"),
        default="auto",
        help="what to optimise (auto: see description)",
    )
    p.add_argument(
        "--truth", help="dataset directory with truth.npz (default: beside the validation files)"
    )
    p.add_argument(
        "--random-slice-files",
        action="append",
        help="randomized-traffic logs for the random_ndcg objective",
    )
    p.add_argument("--seed", type=int, default=0, help="search and shuffling seed")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    p.set_defaults(func=cmd_tune)


# -- popularity ---------------------------------------------------------------------
def cmd_popularity(args: argparse.Namespace) -> int:
    from tfrs_debias.data.popularity import add_popularity_features

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


def _popularity_parser(sub) -> None:
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
    p.add_argument("--window-seconds", type=int, default=86_400, help="window (default 1 day)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_popularity)


# -- ratings ------------------------------------------------------------------------
def cmd_ratings(args: argparse.Namespace) -> int:
    from tfrs_debias.data.ratings import ratings_dataset

    written = ratings_dataset(
        args.train,
        args.test,
        args.out,
        positive_threshold=args.positive_threshold,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    _print_written(args.out, written)
    return EXIT_OK


def _ratings_parser(sub) -> None:
    p = sub.add_parser(
        "ratings",
        help="explicit ratings with a random (unbiased) test set -> logs and truth",
        description="Read 'user item rating' triples (whitespace or comma separated): a "
        "training file from the normal, biased policy and a test file of randomly assigned "
        "items. Writes train/valid/test logs with click = rating >= threshold (no position "
        "or device features) and a truth file so `evaluate` reports NDCG@5 per user and AUC "
        "on the random test.",
    )
    p.add_argument("--train", required=True, help="training triples (biased policy)")
    p.add_argument("--test", required=True, help="test triples (random items)")
    p.add_argument("--out", required=True, help="output dataset directory")
    p.add_argument(
        "--positive-threshold",
        type=float,
        default=4.0,
        help="rating that counts as a click (default 4)",
    )
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="training triples held out for validation (0.1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_ratings)


# -- main ---------------------------------------------------------------------------
PARSERS: list[Callable] = [
    _simulate_parser,
    _validate_parser,
    _movielens_parser,
    _train_parser,
    _export_parser,
    _select_parser,
    _serve_parser,
    _evaluate_parser,
    _demo_parser,
    _tune_parser,
    _popularity_parser,
    _ratings_parser,
]


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
