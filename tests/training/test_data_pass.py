import numpy as np

from tfrs_debias.data import write_examples
from tfrs_debias.schema import ImpressionSchema
from tfrs_debias.training import build_vocabularies


def test_vocabularies_by_frequency(tmp_path):
    schema = ImpressionSchema.default(tasks=("click",), bias=False, request_id=False)
    cols = {
        "user_id": np.array([5, 5, 5, 7, 7, 9]),
        "item_id": np.array([1, 2, 1, 1, 3, 3]),
        "click": np.array([0, 1, 0, 1, 0, 1]),
    }
    write_examples(cols, schema, str(tmp_path), "train", progress=False)
    vocab, rows = build_vocabularies(
        [str(tmp_path / "train-00000-of-00001.tfrecord.gz")], schema, min_count=2
    )
    assert rows == 6
    assert vocab == {"user_id": [5, 7], "item_id": [1, 3]}


def test_value_counter_merges_batches_by_hand():
    from tfrs_debias.training.data_pass import ValueCounter

    counter = ValueCounter(min_buffer=2)  # merges after almost every batch
    for batch in ([5, 5, 7], [7, 9], [5], [9, 9, 9]):
        counter.add(np.array(batch))
    values, counts = counter.result()
    assert values.tolist() == [5, 7, 9] and counts.tolist() == [3, 2, 4]
    strings = ValueCounter()
    strings.add(np.array([b"b", b"a", b"b"]))
    assert [v.tolist() for v in strings.result()] == [[b"a", b"b"], [1, 2]]
    assert ValueCounter().result()[0].size == 0
