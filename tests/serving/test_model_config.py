import threading

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.support import rest_request
from tfrs_debias.serving import make_server


def test_model_config_file_labels_and_rollback(managed, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfrs_debias.serving.grpc_service import make_grpc_server
    from tfrs_debias.serving.model_config import read_model_config

    _, base, _, rel = managed
    config = tmp_path / "models.config"
    text = """model_config_list {{
      config {{ name: "ranker" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 2 versions: 3 }} }}
        version_labels {{ key: "stable" value: {stable} }}
        version_labels {{ key: "canary" value: 3 }} }}
      config {{ name: "other" base_path: "{base}" }}
    }}"""
    config.write_text(text.format(base=base, stable=2))
    entries = read_model_config(str(config))
    assert [(e.name, e.policy, e.versions, e.label_map) for e in entries][0] == (
        "ranker",
        "specific",
        (2, 3),
        {"canary": 3, "stable": 2},
    )
    httpd = make_server(model_config_file=str(config), port=0, poll_seconds=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    grpc_server, grpc_port = make_grpc_server(httpd.models, port=0)
    root = f"http://127.0.0.1:{httpd.server_address[1]}/v1/models"
    try:

        def score(path):
            code, body = rest_request(f"{root}/{path}:predict", {"inputs": rel})
            assert code == 200, body
            return body["outputs"]["score"]

        assert score("ranker/labels/stable") == score("ranker/versions/2")
        assert (
            score("ranker/labels/canary")
            == score("ranker/versions/3")
            != score("ranker/versions/2")
        )
        assert rest_request(f"{root}/ranker/labels/nope:predict", {"inputs": rel})[0] == 404
        assert rest_request(f"{root}/ranker/versions/1:predict", {"inputs": rel})[0] == 404
        status = rest_request(f"{root}/other")[1]["model_version_status"]
        assert [s["version"] for s in status] == ["3"]  # the default policy: latest 1
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ranker"
        request.model_spec.version_label = "canary"
        for k, v in rel.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert stub.Predict(request, timeout=30).model_spec.version.value == 3
        # Rollforward: move "stable" to 3 in the file; the watcher applies it.
        config.write_text(text.format(base=base, stable=3))
        httpd.config_watcher.apply()
        assert score("ranker/labels/stable") == score("ranker/versions/3")
        request.model_spec.version_label = "stable"
        assert stub.Predict(request, timeout=30).model_spec.version.value == 3
        channel.close()
    finally:
        grpc_server.stop(grace=None)
        httpd.shutdown()
        httpd.server_close()
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { name: 1 } ")
    with pytest.raises(ValueError, match="bad.config: not a TF Serving model config"):
        read_model_config(str(bad))


def test_ab_split_routes_each_user_to_one_labelled_version(managed, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfrs_debias.serving.grpc_service import make_grpc_server

    _, base, _, rel = managed
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "ranker" base_path: "{base}" '
        "model_version_policy { specific { versions: 2 versions: 3 } } "
        'version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 3 } '
        "} }"
    )
    with pytest.raises(ValueError, match=r"labels \['blue'\] are not labels"):
        make_server(model_config_file=str(config), port=0, poll_seconds=0, ab_split={"blue": 1})
    httpd = make_server(
        model_config_file=str(config),
        port=0,
        poll_seconds=0,
        ab_split={"stable": 75, "canary": 25},
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    grpc_server, grpc_port = make_grpc_server(httpd.models, port=0)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/ranker"
    try:
        served = {}
        for user in range(200):
            inputs = {**rel, "user_id": [user] * 2}
            code, body = rest_request(url + ":predict", {"inputs": inputs})
            assert code == 200
            served[user] = body["model_version"]
            # The same user always gets the same version, and its scores are that version's.
            again = rest_request(url + ":predict", {"inputs": inputs})[1]
            assert again["model_version"] == served[user]
            if user < 3:
                direct = rest_request(f"{url}/versions/{served[user]}:predict", {"inputs": inputs})
                assert direct[1]["outputs"] == body["outputs"]
        canary = sum(v == "3" for v in served.values()) / len(served)
        assert 0.15 < canary < 0.35  # 25% of users, by a hash of the user id
        # An explicit version or label is not re-routed.
        assert rest_request(url + "/versions/2:predict", {"inputs": rel})[1]["model_version"] == "2"
        # gRPC routes the same user to the same version.
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        )
        for user in (0, 1, 2, 3, 4):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "ranker"
            for k, v in {**rel, "user_id": [user] * 2}.items():
                request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
            version = stub.Predict(request, timeout=30).model_spec.version.value
            assert str(version) == served[user]
    finally:
        grpc_server.stop(grace=None)
        httpd.shutdown()
        httpd.server_close()
