import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.support import rest_request


def test_grpc_predict_regress_metadata_status_with_official_stubs(managed, exported):
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
    )

    from tfrs_debias.serving.grpc_service import make_grpc_server

    url, base, httpd, rel = managed
    model = exported[0]
    server, port = make_grpc_server(httpd.models, port=0, metrics=httpd.metrics)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        status = model_service_pb2_grpc.ModelServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ranker"
        for k, v in rel.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.int64)))
        reply = predict.Predict(request, timeout=30)
        assert reply.model_spec.version.value == 3 and reply.model_spec.signature_name == (
            "serving_default"
        )
        probs = model.debiased_probabilities({k: tf.constant(v) for k, v in rel.items()}).numpy()
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["click"]), probs[:, 0], rtol=1e-5)
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), probs.sum(1), rtol=1e-5)
        # The same as REST on the same version.
        rest = rest_request(url + ":predict", {"inputs": rel})[1]["outputs"]["score"]
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), rest, rtol=1e-6)
        # A specific version, and an output filter.
        request.model_spec.version.value = 2
        request.output_filter.append("score")
        reply = predict.Predict(request, timeout=30)
        assert set(reply.outputs) == {"score"}
        np.testing.assert_allclose(tf.make_ndarray(reply.outputs["score"]), probs[:, 1], rtol=1e-5)
        # Regress with tf.Examples (a shared context merged into each) = the served score.
        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name = "ranker"
        group = regress.input.example_list_with_context
        group.context.features.feature["user_id"].int64_list.value.append(rel["user_id"][0])
        group.context.features.feature["user_segment"].int64_list.value.append(
            rel["user_segment"][0]
        )
        for i in range(2):
            example = group.examples.add()
            example.features.feature["item_id"].int64_list.value.append(rel["item_id"][i])
            example.features.feature["item_genre"].int64_list.value.append(rel["item_genre"][i])
        values = [r.value for r in predict.Regress(regress, timeout=30).result.regressions]
        one_user = {
            k: tf.constant([rel[k][0]] * 2 if k.startswith("user") else rel[k]) for k in rel
        }
        expected = model.debiased_probabilities(one_user).numpy().sum(1)
        np.testing.assert_allclose(values, expected, rtol=1e-5)
        meta = get_model_metadata_pb2.GetModelMetadataRequest()
        meta.model_spec.name = "ranker"
        meta.metadata_field.append("signature_def")
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        predict.GetModelMetadata(meta, timeout=30).metadata["signature_def"].Unpack(sigmap)
        assert {"serving_default", "regress", "select_top_k"} <= set(sigmap.signature_def)
        assert "position" not in sigmap.signature_def["serving_default"].inputs
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "ranker"
        versions = status.GetModelStatus(req, timeout=30).model_version_status
        assert [(v.version, v.state) for v in versions] == [
            (3, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
            (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        ]
        # Client mistakes get TF Serving's codes, and the server keeps serving.
        request.model_spec.version.value = 1
        with pytest.raises(grpc.RpcError) as info:
            predict.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        request.model_spec.ClearField("version")
        request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(np.asarray([1.5, 2.5])))
        with pytest.raises(grpc.RpcError) as info:
            predict.Predict(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input 'user_id' is float64, expected int64" in info.value.details()
        assert status.GetModelStatus(req, timeout=30).model_version_status
        text = urllib.request.urlopen(url.split("/v1/")[0] + "/monitoring/prometheus/metrics")
        text = text.read().decode()
        assert 'api="grpc",code="OK",model="ranker",verb="Predict"} 2.0' in text
        assert 'api="grpc",code="NOT_FOUND",model="ranker",verb="Predict"} 1.0' in text
        assert 'api="grpc",code="INVALID_ARGUMENT",model="ranker",verb="Predict"} 1.0' in text
    finally:
        channel.close()
        server.stop(grace=None)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(500, dtype=np.int64) * 7 - 3,
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        np.array(2.5, np.float64),
        np.array([], np.int32),
        np.array([True, False]),  # not raw bytes: TensorFlow's own conversion
        np.array([b"phone", b"tv"], dtype=object),
    ],
)
def test_tensor_proto_conversions_agree_with_tensorflow(array):
    from tensorflow.core.framework import tensor_pb2

    from tfrs_debias.serving.grpc_service import array_to_tensor, tensor_to_array

    proto = tensor_pb2.TensorProto()
    array_to_tensor(array, proto)
    assert proto == tf.make_tensor_proto(array)
    back = tensor_to_array(tf.make_tensor_proto(array))
    assert back.dtype == tf.make_ndarray(proto).dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_tensor_to_array_reads_repeated_fields_and_refuses_a_short_buffer():
    from tfrs_debias.serving.grpc_service import tensor_to_array

    # A client may send values in int64_val instead of raw bytes.
    proto = tf.make_tensor_proto([4, 5, 6], dtype=tf.int64)
    proto.ClearField("tensor_content")
    proto.int64_val.extend([4, 5, 6])
    np.testing.assert_array_equal(tensor_to_array(proto), [4, 5, 6])
    short = tf.make_tensor_proto(np.arange(3, dtype=np.int64))
    short.tensor_content = short.tensor_content[:-8]  # 2 values for a shape of 3
    with pytest.raises((ValueError, TypeError)):
        tensor_to_array(short)
