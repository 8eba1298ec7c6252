import json

import pytest
import tensorflow as tf

from tfrs_debias.schema import Feature, ImpressionSchema, SchemaError, resolve_schema


def test_default_schema_roles_and_types():
    s = ImpressionSchema.default(tasks=("click", "like"), item_features={"item_genre": 12})
    assert s.tasks == ("click", "like")
    assert s.user_id.name == "user_id" and s.item_id.name == "item_id"
    assert [f.name for f in s.bias_features] == ["position", "device"]
    # Open by default: ranks and device names come from the training data.
    assert s["position"].num_values is None and s["device"].vocabulary is None
    closed = ImpressionSchema.default(num_positions=10, devices=("phone", "tv"))
    assert closed["position"].num_values == 10 and closed["device"].vocabulary == ("phone", "tv")
    spec = s.parse_spec()
    assert spec["user_id"].dtype == tf.int64
    assert spec["device"].dtype == tf.string
    assert spec["click"].shape == []
    assert "click" not in s.parse_spec(include_labels=False)


def test_serving_specs_have_no_bias_features():
    s = ImpressionSchema.default(user_features={"user_segment": 4})
    serving = s.serving_specs()
    assert set(serving) == {"user_id", "item_id", "user_segment"}
    assert serving["user_id"].shape.as_list() == [None]
    assert set(s.serving_specs(include_bias=True)) == set(serving) | {"position", "device"}
    inputs = s.keras_inputs(include_bias=False)
    assert set(inputs) == set(serving)
    assert inputs["user_id"].dtype == tf.int64


def test_json_round_trip(tmp_path):
    s = ImpressionSchema.default(user_features={"user_segment": 4}).replace(
        add=[Feature("ips", "float32", "propensity")]
    )
    path = tmp_path / "schema.json"
    s.save(path)
    assert ImpressionSchema.load(path) == s
    assert json.loads(path.read_text())["features"][0] == {
        "name": "user_id",
        "dtype": "int64",
        "role": "user_id",
    }


def test_custom_names_from_json(tmp_path):
    doc = {
        "features": [
            {"name": "uid", "dtype": "string", "role": "user_id"},
            {"name": "doc", "dtype": "int64", "role": "item_id"},
            {"name": "slot", "dtype": "int64", "role": "bias", "num_values": 5},
            {"name": "watch", "dtype": "int64", "role": "label"},
        ]
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    s = ImpressionSchema.load(path)
    assert s.tasks == ("watch",) and s.user_id.name == "uid" and s.user_id.dtype == "string"


@pytest.mark.parametrize(
    "features, message",
    [
        (
            [
                Feature("u", "int64", "user_id"),
                Feature("u", "int64", "item_id"),
                Feature("c", "int64", "label"),
            ],
            "duplicate feature names",
        ),
        ([Feature("i", "int64", "item_id"), Feature("c", "int64", "label")], "role 'user_id'"),
        ([Feature("u", "int64", "user_id"), Feature("i", "int64", "item_id")], "role 'label'"),
    ],
)
def test_inconsistent_schema(features, message):
    with pytest.raises(SchemaError, match=message):
        ImpressionSchema(tuple(features))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="c", dtype="string", role="label"), "role label needs dtype"),
        (dict(name="x", dtype="int32", role="bias"), "dtype 'int32'"),
        (dict(name="x", dtype="int64", role="banana"), "role 'banana'"),
        (dict(name="d", dtype="int64", role="bias", vocabulary=("a",)), "vocabulary needs"),
    ],
)
def test_bad_feature(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        Feature(**kwargs)


def test_bad_schema_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="bad.json: not valid JSON"):
        ImpressionSchema.load(bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"features": [{"name": "u", "dtype": "int64", "role": "user_id", "size": 3}]})
    )
    with pytest.raises(SchemaError, match=r"unknown.json: feature 'u': unknown keys \['size'\]"):
        ImpressionSchema.load(unknown)
    with pytest.raises(SchemaError, match="schema file not found"):
        ImpressionSchema.load(tmp_path / "missing.json")


def test_resolve_schema_prefers_file_beside_data(tmp_path):
    custom = ImpressionSchema.default(tasks=("watch",))
    custom.save(tmp_path / "schema.json")
    data = tmp_path / "train-00000-of-00001.tfrecord"
    data.write_bytes(b"")
    assert resolve_schema(None, [str(data)]) == custom
    assert resolve_schema(None, [], tasks=["click"]).tasks == ("click",)
