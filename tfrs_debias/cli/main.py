"""``tfrs-debias``: parse, call the library, print.

``main(argv)`` builds the parser from each command module's ``register`` and
dispatches, so tests call ``main(["simulate", "--out", d])`` exactly as a user types.
Parsing imports no TensorFlow (``--help`` and flag errors answer at once); TensorFlow's
C++ start-up banners are kept off the terminal unless ``--verbose``. Errors in the input
(bad files, records, schemas, flags) print one clear line to stderr and exit 2;
malformed records exit 1; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

import tfrs_debias.cli.data_commands as data_commands
import tfrs_debias.cli.evaluation_commands as evaluation_commands
import tfrs_debias.cli.serving_commands as serving_commands
import tfrs_debias.cli.training_commands as training_commands
from tfrs_debias.cli.common import EXIT_PROBLEMS, EXIT_USAGE, CommandError

COMMAND_MODULES = (data_commands, training_commands, serving_commands, evaluation_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrs-debias",
        description="Train multi-task rankers on impression logs and serve scores with "
        "position, device and popularity bias taken out.",
    )
    parser.add_argument(
        "--verbose-tf",
        action="store_true",
        help="let TensorFlow print its start-up and C++ log lines",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def import_tensorflow_quietly(verbose: bool = False) -> None:
    """Imports TensorFlow (through `tfrs_debias.backend`) with its C++ start-up lines
    (oneDNN, CUDA, absl) kept off stderr; they are shown if the import fails."""
    if verbose or "tensorflow" in sys.modules:
        import tfrs_debias.backend  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tfrs_debias.backend  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import_tensorflow_quietly(args.verbose_tf)
    from tfrs_debias.backend import tf
    from tfrs_debias.data.io.validation import InvalidDataError
    from tfrs_debias.schema import SchemaError

    try:
        return args.func(args)
    except InvalidDataError as err:
        print(f"tfrs-debias {args.command}: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (CommandError, SchemaError, ValueError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"tfrs-debias {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except tf.errors.OpError as err:
        # TensorFlow's own errors on the input (unreadable file, bad compression) in
        # one line; a failure the input checks could place was raised above.
        first = (err.message or type(err).__name__).strip().splitlines()[0]
        print(f"tfrs-debias {args.command}: error: {first}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
