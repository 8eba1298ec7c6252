"""Files through `tf.io.gfile`: simulate, train and evaluate on a `ram://` filesystem."""

from tfrs_debias.backend import tf
from tfrs_debias.data import ImpressionSimulator, LogDirectory, SimulatorConfig
from tfrs_debias.evaluation import Evaluator, Scorer
from tfrs_debias.models import EstimatorConfig
from tfrs_debias.training import load_run, train


def test_ram_filesystem_simulate_train_evaluate():
    data = LogDirectory("ram://tfrs_debias_test/data")
    config = SimulatorConfig.small(
        num_users=300, num_items=100, num_requests=1000, num_test_users=50, truth_candidates=20
    )
    ImpressionSimulator(config).write(data.path, progress=False)
    assert {"train", "full_train", "test"} <= set(data.splits)
    run = "ram://tfrs_debias_test/run"
    train(
        data.require("train"),
        run,
        EstimatorConfig(),
        data.schema(),
        epochs=1,
        steps_per_epoch=2,
        verbose=0,
    )
    model = load_run(run)
    result = Evaluator(data.truth()).evaluate(Scorer.from_estimator(model))
    assert 0 < result["ranking"]["ndcg"]["click"]["@10"] <= 1
    assert tf.io.gfile.exists(f"{run}/metrics.json")


def test_text_inputs_and_outputs_on_ram_read_as_local(tmp_path):
    """Every text input (ratings files, MovieLens files, candidate files, search spaces,
    --config files) and the writer's overwrite check go through `tf.io.gfile`: the same
    results from `ram://` as from a local copy, and the same errors."""
    import numpy as np
    import pytest

    from tests.data.io.support import SCHEMA, sample_columns
    from tfrs_debias.cli.common import CommandError, load_json
    from tfrs_debias.data import write_examples
    from tfrs_debias.data.io.files import text_lines
    from tfrs_debias.data.sources.movielens import read_ratings
    from tfrs_debias.data.sources.ratings import read_triples
    from tfrs_debias.serving.top_item_selector import read_candidates
    from tfrs_debias.tuning.search_space import SearchSpace

    def both(name: str, data: bytes) -> tuple[str, str]:
        local, ram = str(tmp_path / name), f"ram://tfrs_debias_text/{name}"
        (tmp_path / name).write_bytes(data)
        with tf.io.gfile.GFile(ram, "wb") as fh:
            fh.write(data)
        return local, ram

    # An undecodable byte is replaced, not an error, on either filesystem.
    local, ram = both("bytes.txt", b"1 2 5\n\xff 3\n")
    assert list(text_lines(local)) == list(text_lines(ram)) == ["1 2 5\n", "\ufffd 3\n"]

    local, ram = both("triples.txt", b"user item rating\n1 10 5\n2 20 3\n")
    for got, want in zip(read_triples(ram), read_triples(local), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(read_triples(ram)[1], [10, 20])
    _, bad = both("bad.txt", b"1 10 5\n2 x 3\n")
    with pytest.raises(ValueError, match=r"ram://tfrs_debias_text/bad.txt: line 2: non-numeric"):
        read_triples(bad)
    with pytest.raises(FileNotFoundError, match="ratings file not found"):
        read_triples("ram://tfrs_debias_text/missing.txt")

    local, ram = both("ratings.dat", b"1::10::5::300\n2::20::4::200\n")
    ours, theirs = read_ratings(ram), read_ratings(local)
    np.testing.assert_array_equal(ours.item, theirs.item)
    assert ours.source == "ml-1m:ram://tfrs_debias_text/ratings.dat"

    _, ram = both("candidates.csv", b"item_id,note\n7,a\n9,b\n")
    assert read_candidates(ram, SCHEMA) == {"item_id": [7, 9], "note": ["a", "b"]}
    _, ram = both("ids.txt", b"7\n\n9\n")
    assert read_candidates(ram, SCHEMA) == {"item_id": [7, 9]}

    _, ram = both("space.json", b'{"learning_rate": [0.01]}')
    assert SearchSpace.from_json("multi_task", ram).entries["learning_rate"] == [0.01]
    _, ram = both("config.json", b'{"dr_pairs": "uniform"}')
    assert load_json(ram) == {"dr_pairs": "uniform"}
    with pytest.raises(CommandError, match="ram://tfrs_debias_text/none.json: config file not"):
        load_json("ram://tfrs_debias_text/none.json")

    # The writer's "already there" check sees shards on ram:// too.
    out = "ram://tfrs_debias_text/logs"
    first = write_examples(sample_columns(), SCHEMA, out, "train", progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_examples(sample_columns(3), SCHEMA, out, "train", progress=False)
    assert tf.io.gfile.exists(first[0])


def test_unreachable_filesystem_is_one_line_naming_the_path(tmp_path, capsys):
    """A filesystem TensorFlow cannot ask (here: a scheme it does not know; in the
    field: gs:// without network) is an OSError naming the path, and the CLI prints it
    as one line with exit code 2, no traceback."""
    import pytest

    from tfrs_debias.cli.main import main
    from tfrs_debias.data.io.files import is_file, text_lines

    with pytest.raises(OSError, match=r"^nope://x/y: File system scheme 'nope' not implemented"):
        is_file("nope://x/y")
    with pytest.raises(OSError, match=r"^nope://x/y: File system scheme"):
        list(text_lines("nope://x/y"))
    test = tmp_path / "test.txt"
    test.write_text("1 2 5\n")
    code = main(["ratings", "--train", "nope://x/y", "--test", str(test), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tfrs-debias ratings: error: nope://x/y: File system scheme 'nope'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
