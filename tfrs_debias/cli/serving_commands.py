"""Commands around exports: export, select, serve."""

from __future__ import annotations

import argparse
import gc
import json
import sys

from tfrs_debias.cli.common import (
    EXIT_OK,
    CommandError,
    finite_float,
    non_negative_float,
    non_negative_int,
    parse_weights,
    positive_float,
    positive_int,
    unit_interval,
)

#: The interpreter's thread switch interval while serving (Python's default is 5 ms).
SWITCH_INTERVAL_S = 0.0005


def cmd_export(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import export_saved_model
    from tfrs_debias.serving.export import default_reranker
    from tfrs_debias.serving.reranker import Reranker
    from tfrs_debias.training import load_run

    model = load_run(args.run)
    reranker = default_reranker(model.schema)
    if args.similarity or args.category_feature:
        category = args.category_feature or reranker.category_feature
        reranker = Reranker(
            args.similarity or "embedding", None if category == "none" else category
        )
    try:
        path = export_saved_model(
            model,
            args.out,
            version=args.version,
            value_weights=parse_weights(args.value_weights),
            force=args.force,
            reranker=reranker,
        )
    except ValueError as err:
        raise CommandError(str(err)) from None
    print(f"exported {model.config.model} to {path}")
    print(f"inspect: saved_model_cli show --dir {path} --all")
    return EXIT_OK


def cmd_select(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import TopItemSelector, read_candidates

    selector = TopItemSelector.from_saved_model(args.model)
    schema = selector.schema
    user = {schema.user_id.name: schema.user_id.parse_value(args.user, "--user")}
    for part in args.user_features or []:
        name, _, value = part.partition("=")
        if name not in schema or schema[name].role not in ("user_feature", "popularity"):
            raise CommandError(f"--user-feature {name!r} is not a user feature of the model")
        user[name] = schema[name].parse_value(value, f"--user-feature {name}")
    candidates = read_candidates(args.candidates, schema)
    item = schema.item_id.name
    exclude = read_candidates(args.exclude, schema)[item] if args.exclude else ()
    not_interested = (
        read_candidates(args.not_interested, schema)[item] if args.not_interested else ()
    )
    ages = None
    if args.age_column in candidates:
        ages = []
        for line, value in enumerate(candidates.pop(args.age_column), start=2):
            try:
                ages.append(float(value))
            except ValueError:
                raise CommandError(
                    f"{args.candidates}: line {line}, column '{args.age_column}': "
                    f"{value!r} is not a number"
                ) from None
    elif args.freshness_weight:
        raise CommandError(
            f"--freshness-weight needs an '{args.age_column}' column in the --candidates CSV"
        )
    options = {
        name: getattr(args, name)
        for name in (
            "diversity_lambda",
            "similarity_threshold",
            "category_cap",
            "freshness_weight",
            "freshness_half_life",
            "not_interested_threshold",
        )
    }
    try:
        ranking = selector.rank(
            user,
            candidates,
            k=args.k,
            exclude=exclude,
            value_weights=parse_weights(args.value_weights),
            not_interested=not_interested,
            item_age=ages,
            options=options,
        )
    except ValueError as err:
        raise CommandError(str(err)) from None
    picks = ranking.picks
    if args.json:
        rows = [
            {"item_id": p.item_id, "score": p.score, "base_rank": p.base_rank, **p.probabilities}
            for p in picks
        ]
        if args.explain:
            print(json.dumps({"items": rows, "events": [str(e) for e in ranking.events]}))
        else:
            print(json.dumps(rows))
        return EXIT_OK
    print(f"{'rank':<6}{'item_id':<12}{'score':>10}" + "".join(f"{t:>10}" for t in selector.tasks))
    for rank, p in enumerate(picks, start=1):
        print(
            f"{rank:<6}{p.item_id!s:<12}{p.score:>10.4f}"
            + "".join(f"{p.probabilities[t]:>10.4f}" for t in selector.tasks)
        )
    if args.explain:
        print("\nre-ranking:" if ranking.events else "\nre-ranking: nothing removed or moved")
        for event in ranking.events:
            print(f"  {event}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from tfrs_debias.serving import make_server

    if (args.model_base is None) == (args.model_config_file is None):
        raise CommandError("give exactly one of --model-base or --model-config-file")
    if args.batch_rows < 0:
        raise CommandError(
            f"--batch-rows must be >= 0 (0 turns batching off), got {args.batch_rows}"
        )
    server = make_server(
        args.model_base,
        model_config_file=args.model_config_file,
        ab_split=parse_weights(args.ab_split, "--ab-split", key="LABEL"),
        max_batch=args.max_batch,
        batch_rows=args.batch_rows,
        host=args.host,
        port=args.port,
        name=args.model_name,
        max_body_bytes=args.max_body_bytes,
        verbose=args.verbose,
        workers=args.workers,
        keep_versions=args.keep_versions,
        poll_seconds=args.poll_seconds,
    )
    grpc_server = None
    if not args.no_grpc:
        from tfrs_debias.serving.grpc_service import make_grpc_server

        try:
            grpc_server, grpc_port = make_grpc_server(
                server.models, args.host, args.grpc_port, args.workers, server.metrics
            )
        except OSError:
            server.server_close()
            raise
    host, port = server.server_address[:2]
    for name, model in server.models.items():
        labels = "".join(f", label {k} -> {v}" for k, v in sorted(model.labels.items()))
        print(f"serving {name} from {model.model_base}{labels}", flush=True)
    print(
        f"REST at http://{host!s}:{port}/v1/models/NAME"
        + ("" if grpc_server is None else f", gRPC at {args.host}:{grpc_port}"),
        flush=True,
    )
    # What is alive now (TensorFlow, the versions loaded at start) lives as long as the
    # process: take it out of the garbage collector's scans. A full collection holds the
    # interpreter lock; one set off while a new version loads paused every request for
    # 130-220 ms when it had to walk these objects too.
    gc.collect()
    gc.freeze()
    # While a version loads in the background, request threads get the interpreter
    # lock back from the loading thread only once per switch interval (5 ms by
    # default). At 0.5 ms the slowest request during a reload fell from 48-55 ms to
    # 34-43 ms, with requests/s at 8 and 32 clients unchanged.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=1)
        server.server_close()
    return EXIT_OK


def register(sub) -> None:
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
    p.add_argument(
        "--similarity",
        help="select_top_k item similarity: 'embedding' (cosine of the learned item "
        "embeddings, the default) or an item feature (equal values are similar)",
    )
    p.add_argument(
        "--category-feature",
        help="item feature that select_top_k's category_cap counts (default: the first "
        "categorical item feature; 'none' for no caps)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "select",
        help="top-k items for one user from an exported model",
        description="Score one user's candidates with the export's select_top_k "
        "signature: debiased task probabilities combined with value weights, then the "
        "re-ranking steps (exclusions, not-interested items and items similar to them, "
        "freshness boost, MMR diversity, similarity threshold, category caps), and print "
        "the top k (--explain: what each step removed or moved).",
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
    p.add_argument(
        "--not-interested",
        help="ids the user marked 'not interested': removed with the candidates similar to them",
    )
    p.add_argument(
        "--not-interested-threshold",
        type=finite_float,
        default=0.9,
        help="similarity above which a candidate counts as similar to a not-interested "
        "item (default 0.9)",
    )
    p.add_argument(
        "--diversity-lambda",
        type=unit_interval,
        default=1.0,
        help="MMR trade-off in [0, 1]: 1 ranks by score only (default), lower values "
        "trade score for items unlike those already picked",
    )
    p.add_argument(
        "--similarity-threshold",
        type=finite_float,
        default=1.0,
        help="skip a candidate more similar than this to an item already picked (default 1: off)",
    )
    p.add_argument(
        "--category-cap",
        type=non_negative_int,
        default=0,
        help="at most this many items per category (the export's category feature; "
        "default 0: no cap)",
    )
    p.add_argument(
        "--freshness-weight",
        type=non_negative_float,
        default=0.0,
        help="score boost weight * 2^(-age/half-life) (default 0: off; needs --age-column)",
    )
    p.add_argument(
        "--freshness-half-life",
        type=positive_float,
        default=7.0,
        help="age at which the freshness boost halves, in the unit of the ages (default 7)",
    )
    p.add_argument(
        "--age-column",
        default="item_age",
        help="the --candidates CSV column holding item ages (default item_age)",
    )
    p.add_argument(
        "--explain", action="store_true", help="also print what each re-ranking step did"
    )
    p.add_argument("--value-weights", help="e.g. click=1,like=3 (default: the export's)")
    p.add_argument("--k", type=positive_int, default=10, help="how many items (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_select)

    p = sub.add_parser(
        "serve",
        help="serve exports over TF Serving's REST and gRPC APIs",
        description="Answer GET /v1/models/NAME[/versions/V][/metadata] and POST "
        "/v1/models/NAME[/versions/V]:predict like TF Serving. Serves the latest versions "
        "(--keep-versions) and loads new or re-exported ones in the background, switching "
        "to a version only once it has loaded; a broken version folder is reported in the "
        "status and the previous version keeps serving.",
    )
    p.add_argument("--model-base", help="saved_models/NAME (or --model-config-file)")
    p.add_argument(
        "--model-config-file",
        help="TF Serving model config (text ModelServerConfig): several models, version "
        "policies and labels (/labels/L, gRPC version_label); re-read when it changes",
    )
    p.add_argument("--model-name", help="name in URLs (default: the folder name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's)")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=16 << 20,
        help="larger requests get 413 (default 16 MiB)",
    )
    p.add_argument(
        "--keep-versions", type=int, default=2, help="latest versions served (default 2)"
    )
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="how often the model base is checked for new versions (default 1)",
    )
    p.add_argument("--workers", type=int, default=16, help="request threads (default 16)")
    p.add_argument(
        "--max-batch",
        type=int,
        default=50_000,
        help="rows one request may score; more get 413 (default 50000)",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        default=8192,
        help="server-side batching, as TF Serving's --enable_batching: requests that arrive "
        "while a call runs are scored together in the next call of a row-wise signature "
        "(serving_default, biased, regress), up to this many rows; no timer, so a lone "
        "request is not delayed; 0 turns it off (default 8192)",
    )
    p.add_argument(
        "--grpc-port",
        type=int,
        default=8500,
        help="TF Serving's gRPC API (PredictionService, ModelService) port (default 8500)",
    )
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument(
        "--ab-split",
        help="A/B split of users across version labels, e.g. stable=90,canary=10: a "
        "request without a version or label goes to the label its user_id hashes to "
        "(responses name the model_version)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)
