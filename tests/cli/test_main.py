"""The command line: every flag explained, usage errors, and a run on logs the simulator
never writes (an open device name, no schema file)."""

import re

import numpy as np
import pytest

from tfrs_debias.backend import tf
from tfrs_debias.cli import build_parser, main
from tfrs_debias.data import write_examples
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.serving import LoadedExport
from tfrs_debias.training import load_run


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_explains_every_flag(name, capsys):
    sub = _subcommands()[name]
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in sub._actions:
        for flag in action.option_strings:
            if flag.startswith("--"):
                assert flag in text
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings} has no help"
    assert re.search(r"usage: tfrs-debias " + name, text)


def _tablet_logs(path, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    device = rng.choice(["phone", "tablet", "smart-tv"], n)
    position = rng.integers(0, 12, n)
    cols = {
        "user_id": rng.integers(0, 200, n),
        "item_id": rng.integers(0, 100, n),
        "request_id": np.arange(n) // 10,
        "position": position,
        "device": device,
        "click": (rng.random(n) < 0.5 / (1 + position)).astype(int),
    }
    schema = ImpressionSchema.default(tasks=("click",))
    write_examples(cols, schema, str(path), "train", progress=False)
    return schema


def test_tablet_device_without_schema_file_validates_trains_exports_serves(tmp_path, capsys):
    _tablet_logs(tmp_path / "logs")
    files = str(tmp_path / "logs" / "train-*")
    assert main(["validate", "--files", files, "--tasks", "click"]) == 0
    assert "values of device:" in capsys.readouterr().out
    run = str(tmp_path / "run")
    args = ["train", "--train-files", files, "--tasks", "click", "--out", run, "--quiet"]
    assert main([*args, "--epochs", "1", "--model", "position_debiased"]) == 0
    model = load_run(run)
    assert set(model.vocabularies["device"]) == {"phone", "tablet", "smart-tv"}
    assert sorted(model.vocabularies["position"]) == list(range(12))  # range from the data
    assert main(["export", "--run", run, "--out", str(tmp_path / "m")]) == 0
    export = LoadedExport(str(tmp_path / "m"))
    biased = export.task_probabilities("biased")
    feats = {
        "user_id": tf.constant([1, 1, 1], tf.int64),
        "item_id": tf.constant([2, 2, 2], tf.int64),
        "position": tf.constant([0, 0, 99], tf.int64),
        "device": tf.constant([b"tablet", b"watch", b"tablet"]),  # 'watch', 99: unseen
    }
    p = biased(feats)
    assert p.shape == (3, 1) and np.all((p > 0) & (p < 1))


def test_serve_refuses_a_negative_batch_limit(tmp_path, capsys):
    assert main(["serve", "--model-base", str(tmp_path), "--batch-rows", "-1"]) == 2
    assert "--batch-rows must be >= 0" in capsys.readouterr().err


def test_config_is_a_file_or_an_inline_json_object(tmp_path):
    from tfrs_debias.cli.common import CommandError, load_json

    path = tmp_path / "c.json"
    path.write_text('{"dr_pairs": "uniform"}')
    assert load_json(str(path)) == {"dr_pairs": "uniform"}
    assert load_json(' {"propensity_weighting": "dr", "dr_pairs": "uniform"}') == {
        "propensity_weighting": "dr",
        "dr_pairs": "uniform",
    }
    with pytest.raises(CommandError, match=r"^--config: not valid JSON"):
        load_json('{"dr_pairs": }')
    with pytest.raises(CommandError, match=r"c2\.json: config file not found"):
        load_json(str(tmp_path / "c2.json"))
    path.write_text("[1]")
    with pytest.raises(CommandError, match=r"c\.json: config must be a JSON object"):
        load_json(str(path))


REQUIRED = {
    "train": ["--train-files", "none-*"],
    "tune": ["--train-files", "none-*", "--valid-files", "none-*"],
    "simulate": [],
    "ratings": ["--train", "a.txt", "--test", "b.txt"],
    "convert": ["--input", "a.csv"],
    "popularity": ["--data", "none"],
    "select": ["--model", "none", "--user", "1", "--candidates", "1,2"],
    "evaluate": ["--model", "none", "--data", "none"],
}


@pytest.mark.parametrize(
    "command, flag, value, rule",
    [
        ("train", "--epochs", "0", "an integer >= 1"),
        ("train", "--batch-size", "-5", "an integer >= 1"),
        ("train", "--learning-rate", "nan", "a finite number > 0"),
        ("train", "--learning-rate", "0", "a finite number > 0"),
        ("train", "--steps-per-epoch", "-1", "an integer >= 1"),
        ("train", "--early-stopping-patience", "-1", "an integer >= 0"),
        ("train", "--keep-checkpoints", "-1", "an integer >= 0"),
        ("train", "--seed", "-1", "an integer >= 0"),
        ("tune", "--max-trials", "0", "an integer >= 1"),
        ("tune", "--max-trials", "-1", "an integer >= 1"),
        ("tune", "--epochs", "x", "an integer >= 1"),
        ("simulate", "--slate-length", "0", "an integer >= 1"),
        ("simulate", "--popularity-conformity", "nan", "a finite number"),
        ("ratings", "--valid-fraction", "1.5", "a fraction in [0, 1)"),
        ("ratings", "--slice-fraction", "-0.1", "a fraction in [0, 1)"),
        ("ratings", "--positive-threshold", "nan", "a finite number"),
        ("convert", "--valid-fraction", "nan", "a fraction in [0, 1)"),
        ("popularity", "--window-seconds", "0", "an integer >= 1"),
        ("popularity", "--window-seconds", "-5", "an integer >= 1"),
        ("select", "--k", "0", "an integer >= 1"),
        ("select", "--k", "-1", "an integer >= 1"),
        ("select", "--diversity-lambda", "1.5", "a number in [0, 1]"),
        ("select", "--similarity-threshold", "nan", "a finite number"),
        ("select", "--category-cap", "-1", "an integer >= 0"),
        ("select", "--freshness-half-life", "0", "a finite number > 0"),
        ("select", "--freshness-weight", "-1", "a finite number >= 0"),
        ("evaluate", "--k", "0", "increasing comma-separated integers >= 1"),
        ("evaluate", "--k", "-3", "increasing comma-separated integers >= 1"),
        ("evaluate", "--user-buckets", "100,10", "increasing comma-separated integers >= 1"),
        ("evaluate", "--item-quantiles", "1.5,2", "increasing comma-separated numbers in (0, 1)"),
    ],
)
def test_numbers_from_flags_are_range_checked_before_any_work(
    command, flag, value, rule, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = [command, *REQUIRED[command], flag, value]
    if command != "select":
        argv += ["--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be {rule}, got '{value}'" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written: refused while parsing
