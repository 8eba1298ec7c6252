"""What every subcommand shares: exit codes, the user-facing error, flags declared once,
and small parsers of flag text. Nothing here imports TensorFlow."""

from __future__ import annotations

import argparse
import json

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A user-facing error: printed as one line without a stack trace (exit 2)."""


# -- numbers from flags, range-checked when the command line is parsed ------------------
def _integer(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (else a usage error naming the flag)."""
    return _integer(text, 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An argparse ``type``: an integer >= 0."""
    return _integer(text, 0, "an integer >= 0")


def finite_float(text: str) -> float:
    """An argparse ``type``: a finite number."""
    return _number(text, lambda v: True, "a finite number")


def _number(text: str, ok, what: str) -> float:
    """``text`` as a finite float for which ``ok`` holds, else a usage error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")) or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    return _number(text, lambda v: v > 0, "a finite number > 0")


def non_negative_float(text: str) -> float:
    """An argparse ``type``: a finite number >= 0."""
    return _number(text, lambda v: v >= 0, "a finite number >= 0")


def fraction(text: str) -> float:
    """An argparse ``type``: a share in [0, 1)."""
    return _number(text, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def unit_interval(text: str) -> float:
    """An argparse ``type``: a number in [0, 1]."""
    return _number(text, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def _increasing(text: str, parse, what: str) -> tuple:
    try:
        values = tuple(parse(v) for v in text.split(","))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if any(b <= a for a, b in zip(values[:-1], values[1:], strict=True)):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return values


def increasing_positive_ints(text: str) -> tuple[int, ...]:
    """An argparse ``type``: comma-separated integers >= 1, increasing (``5,10``)."""
    return _increasing(text, positive_int, "increasing comma-separated integers >= 1")


def increasing_fractions(text: str) -> tuple[float, ...]:
    """An argparse ``type``: comma-separated numbers in (0, 1), increasing (``0.5,0.9``)."""

    what = "increasing comma-separated numbers in (0, 1)"
    return _increasing(text, lambda v: _number(v, lambda x: 0 < x < 1, what), what)


# -- flags declared once ----------------------------------------------------------------
def add_dataset_output_flags(p: argparse.ArgumentParser, shards: bool = True) -> None:
    """``--out --seed [--shards --compression] --overwrite --no-progress`` of commands
    that write a dataset folder."""
    p.add_argument("--out", required=True, help="output dataset directory")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed; same seed, same files"
    )
    if shards:
        p.add_argument(
            "--shards", type=positive_int, default=2, help="files for the training splits"
        )
        p.add_argument(
            "--compression",
            choices=("none", "gzip"),
            default="none",
            help="TFRecord compression (readers detect it per file)",
        )
    add_overwrite_flags(p)


def add_overwrite_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_files_flag(p: argparse.ArgumentParser, flag: str, what: str, required: bool = True):
    p.add_argument(flag, required=required, action="append", help=f"{what} (repeat for several)")


def add_schema_flags(p: argparse.ArgumentParser, tasks: bool = True) -> None:
    p.add_argument(
        "--schema",
        help="schema JSON (default: schema.json beside the files, else the default schema)",
    )
    if tasks:
        p.add_argument("--tasks", help="comma-separated labels to use (default: all)")


def add_model_flag(p: argparse.ArgumentParser, default: str | None, help_text: str) -> None:
    from tfrs_debias.models.registry import MODEL_NAMES

    p.add_argument("--model", choices=MODEL_NAMES, default=default, help=help_text)


def add_quiet_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no Keras progress bars")


# -- flag text -> values ------------------------------------------------------------------
def compression(value: str) -> str:
    return {"none": "", "gzip": "GZIP"}[value]


def dataset_write_options(args: argparse.Namespace) -> dict:
    """The writer keywords of `add_dataset_output_flags` (besides ``--out``)."""
    return {
        "num_shards": args.shards,
        "compression": compression(args.compression),
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }


def tasks_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    text = getattr(args, "tasks", None)
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


def load_json(path: str | None) -> dict:
    """A ``--config`` value: a JSON file, or a JSON object written inline (``'{"a": 1}'``,
    as the README's examples pass it)."""
    if not path:
        return {}
    inline = path.lstrip().startswith("{")
    source = "--config" if inline else path
    try:
        if inline:
            data = json.loads(path)
        elif "://" in path:  # gs://, hdfs://...: through tf.io.gfile (imports TensorFlow)
            from tfrs_debias.data.io.files import is_file, read_json

            if not is_file(path):
                raise FileNotFoundError(path)
            data = read_json(path)
        else:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
    except FileNotFoundError:
        raise CommandError(f"{path}: config file not found") from None
    except json.JSONDecodeError as err:
        raise CommandError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CommandError(f"{source}: config must be a JSON object")
    return data


def parse_weights(
    text: str | None, flag: str = "--value-weights", key: str = "TASK"
) -> dict[str, float] | None:
    """``"click=1,like=3"`` -> ``{"click": 1.0, "like": 3.0}``; errors name ``key``."""
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
            raise CommandError(f"{flag}: {part!r} is not {key}=NUMBER")
    return weights


def print_written(out: str, written: dict[str, list[str]]) -> None:
    for split, files in written.items():
        print(f"{split:<13} {len(files)} file(s): {files[0]}")
    print(f"schema        {out}/schema.json")
