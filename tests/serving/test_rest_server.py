import json
import threading

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.support import PLAIN_SELECT, relevance_inputs, rest_request
from tfrs_debias.cli import main


def _select_request(rel, k):
    """A REST ``select_top_k`` request: the first user, the given items, ``k``."""
    inputs = {"user_id": rel["user_id"][0], "user_segment": 1, "exclude_item_ids": [], "k": k}
    inputs.update(PLAIN_SELECT)
    inputs.update(item_id=rel["item_id"], item_genre=rel["item_genre"])
    return {"signature_name": "select_top_k", "inputs": inputs}


def test_rest_api_like_tf_serving(server, exported):
    url, _ = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:3] for k, v in relevance_inputs(batch, model).items()}
    assert rest_request(url) == (
        200,
        {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    status, meta = rest_request(url + "/metadata")
    sigs = meta["metadata"]["signature_def"]["signature_def"]
    assert status == 200 and set(sigs["serving_default"]["inputs"]) == set(rel)
    assert sigs["serving_default"]["inputs"]["user_id"]["dtype"] == "DT_INT64"
    assert sigs["regress"]["method_name"] == "tensorflow/serving/regress"
    probs = tf.sigmoid(model.debiased_logits({k: tf.constant(v) for k, v in rel.items()})).numpy()
    instances = [{k: v[i] for k, v in rel.items()} for i in range(3)]
    status, rows = rest_request(url + ":predict", {"instances": instances})
    assert status == 200 and len(rows["predictions"]) == 3
    np.testing.assert_allclose([r["click"] for r in rows["predictions"]], probs[:, 0], rtol=1e-5)
    status, cols = rest_request(
        url + "/versions/1:predict", {"inputs": rel, "signature_name": "serving_default"}
    )
    np.testing.assert_allclose(cols["outputs"]["score"], probs @ [1.0, 3.0], rtol=1e-5)
    status, top = rest_request(url + ":predict", _select_request(rel, k=2))
    assert status == 200 and len(top["outputs"]["item_ids"]) == 2


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(server, exported):
    url, _ = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:48] for k, v in relevance_inputs(batch, model).items()}
    probs = tf.sigmoid(model.debiased_logits({k: tf.constant(v) for k, v in rel.items()})).numpy()
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 12]  # 48 rows in 9 requests sent at once
    ends = np.cumsum(sizes)
    answers: list = [None] * len(sizes)

    def send(i):
        part = {k: v[ends[i] - sizes[i] : ends[i]] for k, v in rel.items()}
        answers[i] = rest_request(url + ":predict", {"inputs": part})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, (status, payload) in enumerate(answers):
        assert status == 200
        np.testing.assert_allclose(
            payload["outputs"]["click"], probs[ends[i] - sizes[i] : ends[i], 0], rtol=1e-5
        )


@pytest.mark.parametrize(
    "path, body, raw, code, message",
    [
        (":predict", None, b"{not json", 400, "JSON Parse error"),
        (":predict", {"instances": [{"user_id": 1}]}, None, 400, "missing input"),
        (
            ":predict",
            {"inputs": {"user_id": ["a"], "item_id": [1], "user_segment": [1], "item_genre": [1]}},
            None,
            400,
            "input 'user_id'",
        ),
        (
            ":predict",
            {"inputs": {"user_id": [1.5], "item_id": [1], "user_segment": [1], "item_genre": [1]}},
            None,
            400,
            "expected integers",
        ),
        (
            ":predict",
            {"signature_name": "nope", "instances": [1]},
            None,
            400,
            'signature name: "nope" not found',
        ),
        (":predict", {"instances": [], "inputs": {}}, None, 400, "exactly one"),
        ("/versions/7:predict", {"instances": [1]}, None, 404, "Specific(ranker, 7)"),
        (":predict", None, b"x" * 300_000, 413, "exceeds the limit"),
    ],
)
def test_bad_requests_get_tf_serving_errors_and_server_keeps_serving(
    server, path, body, raw, code, message
):
    url, _ = server
    status, payload = rest_request(url + path, body, raw)
    assert status == code and message in payload["error"]
    assert rest_request(url)[0] == 200
    assert rest_request(url.replace("ranker", "other"))[0] == 404


def _raw_http(port, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"inputs": {"user_id": [1e30]}}', "expected integers"),
        (b'{"inputs": {"user_id": [Infinity]}}', "expected integers"),
        (b'{"inputs": {"user_id": [9223372036854775808]}}', "does not fit in int64"),
        (b'{"inputs": {"user_id": [true]}}', "expected numbers"),
        (b'{"signature_name": ["serving_default"], "inputs": {}}', "must be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_values_are_400_naming_the_input(managed, raw, message):
    url, _, httpd, rel = managed
    if raw.startswith(b'{"inputs"'):  # the other inputs valid, the one under test bad
        body = json.loads(raw.replace(b"Infinity", b"0").replace(b"1e30", b"0"))
        body["inputs"] = {**rel, **{k: v for k, v in body["inputs"].items()}}
        text = json.dumps(body)
        for bad in ("Infinity", "1e30"):
            if bad.encode() in raw:
                text = text.replace('"user_id": [0]', f'"user_id": [{bad}]')
        raw = text.encode()
    code, body = rest_request(url + ":predict", raw=raw)
    assert code == 400 and message in body["error"], body
    assert rest_request(url)[0] == 200


def test_select_top_k_huge_k_and_odd_versions_and_headers(managed):
    url, _, httpd, rel = managed
    code, body = rest_request(url + ":predict", _select_request(rel, k=2**40))
    assert code == 400 and "does not fit in int32" in body["error"]
    code, body = rest_request(url + "/versions/%C2%B2:predict", {"inputs": rel})  # '²'
    assert code == 404
    port = httpd.server_address[1]
    for length in (b"abc", b"-1"):
        reply = _raw_http(
            port,
            b"POST /v1/models/ranker:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + length
            + b"\r\n\r\n{}",
        )
        assert reply.startswith(b"HTTP/1.1 400") and b"bad Content-Length" in reply
    big = b"x" * (17 << 20)  # over the 16 MiB default: the client reads a 413
    reply = _raw_http(
        port,
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(big)).encode()
        + b"\r\n\r\n"
        + big,
    )
    assert reply.startswith(b"HTTP/1.1 413")
    assert rest_request(url)[0] == 200


def test_port_in_use_is_one_line(managed, capsys):
    _, base, httpd, _ = managed
    port = httpd.server_address[1]
    assert main(["serve", "--model-base", base, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_rest_regress_and_classify_verbs(managed, exported):
    url, _, _, rel = managed
    model = exported[0]
    body = {
        "context": {"user_id": rel["user_id"][0], "user_segment": rel["user_segment"][0]},
        "examples": [
            {"item_id": rel["item_id"][i], "item_genre": rel["item_genre"][i]} for i in range(2)
        ],
    }
    code, reply = rest_request(url + ":regress", body)
    assert code == 200, reply
    one_user = {k: tf.constant([rel[k][0]] * 2 if k.startswith("user") else rel[k]) for k in rel}
    expected = model.debiased_probabilities(one_user).numpy().sum(1)  # v3 weights (1, 1)
    np.testing.assert_allclose(reply["results"], expected, rtol=1e-5)
    code, reply = rest_request(url + ":regress", {"examples": [{"item_id": 1.5}]})
    assert code == 400
    code, reply = rest_request(url + ":regress", {"examples": []})
    assert code == 400 and "non-empty" in reply["error"]
    code, reply = rest_request(url + ":classify", body)
    assert code == 400 and "classification signature" in reply["error"]


def test_requests_over_the_batch_limit_are_413(managed):
    url, _, httpd, rel = managed
    httpd.model.max_batch = 1  # rel has 2 rows
    try:
        code, body = rest_request(url + ":predict", {"inputs": rel})
        assert code == 413 and "more than the limit of 1 (--max-batch)" in body["error"]
        examples = [{"item_id": i, "item_genre": 1} for i in range(2)]
        assert rest_request(url + ":regress", {"examples": examples})[0] == 413
    finally:
        httpd.model.max_batch = 50_000
    assert rest_request(url + ":predict", {"inputs": rel})[0] == 200


@pytest.mark.parametrize(
    "block",
    [
        b"Host: x\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n",
        b"Host:   spaced  \r\nA:\r\nB:\tt\r\n\r\n",  # values as the e-mail parser trims them
        b"Host: x\nContent-Length: 5\n\n",  # bare LF line ends
        b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",  # repeated: both kept, in order
        b"Host: x\r\nX-Folded: a\r\n b\r\nContent-Length: 3\r\n\r\n",  # folded: the parser's
        b"Host: x\r\nno colon here\r\nContent-Length: 3\r\n\r\n",  # malformed: the parser's
        b"Na me: v\r\nContent-Length: 2\r\n\r\n",
        b"Host: x\r\n",  # the connection ends inside the headers
        b"\r\n",
    ],
)
def test_read_headers_reads_what_the_standard_library_reads(block):
    import http.client
    import io

    from tfrs_debias.serving.rest_server import read_headers

    ours, theirs = read_headers(io.BytesIO(block)), http.client.parse_headers(io.BytesIO(block))
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items() and ours.get_payload() == theirs.get_payload()
    assert ours.get("content-length") == theirs.get("content-length")


def test_request_lines_and_header_limits(managed):
    url, _, httpd, rel = managed
    port = httpd.server_address[1]
    body = json.dumps({"inputs": rel}).encode()
    head = b"POST /v1/models/ranker:predict %s\r\nContent-Length: %d\r\n"
    # HTTP/1.0 and malformed request lines take the standard library's own parser.
    reply = _raw_http(port, head % (b"HTTP/1.0", len(body)) + b"\r\n" + body)
    assert reply.startswith(b"HTTP/1.1 200") and b'"outputs"' in reply
    bad_version = _raw_http(port, b"POST /v1/models/ranker:predict HTTP/9.x\r\n\r\n")
    assert bad_version.startswith(b"HTTP/1.1 400 Bad request version")
    # Answered as JSON, like every other answer: the quote in the request line escaped.
    headers, _, payload = bad_version.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in headers and b"Connection: close" in headers
    assert json.loads(payload) == {"error": "Bad request version ('HTTP/9.x')"}
    quoted = _raw_http(port, b'POST /"x\\ extra HTTP/1.1\r\n\r\n').partition(b"\r\n\r\n")[2]
    assert json.loads(quoted) == {"error": "Bad request syntax ('POST /\"x\\\\ extra HTTP/1.1')"}
    assert json.loads(_raw_http(port, b"POST /x\r\n\r\n").partition(b"\r\n\r\n")[2]) == {
        "error": "Bad HTTP/0.9 request type ('POST')"
    }
    unsupported = _raw_http(port, b"PUT /v1/models/ranker HTTP/1.1\r\n\r\n")
    assert unsupported.startswith(b"HTTP/1.1 501")
    assert json.loads(unsupported.partition(b"\r\n\r\n")[2]) == {
        "error": "Unsupported method ('PUT')"
    }
    # Over the header limits: 431, as the standard library answers.
    too_long = head % (b"HTTP/1.1", len(body)) + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    reply = _raw_http(port, too_long)
    assert reply.startswith(b"HTTP/1.1 431")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"].startswith("Line too long")
    many = head % (b"HTTP/1.1", len(body)) + b"".join(b"X-%d: 1\r\n" % i for i in range(101))
    assert _raw_http(port, many + b"\r\n" + body).startswith(b"HTTP/1.1 431")
    # Two keep-alive requests on one connection, then "Connection: close" ends it.
    one = head % (b"HTTP/1.1", len(body)) + b"\r\n" + body
    last = head % (b"HTTP/1.1", len(body)) + b"Connection: close\r\n\r\n" + body
    reply = _raw_http(port, one + last)
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    # Expect: 100-continue gets its interim answer before the body is read.
    expect = head % (b"HTTP/1.1", len(body)) + b"Expect: 100-continue\r\nConnection: close\r\n"
    reply = _raw_http(port, expect + b"\r\n" + body)
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


def test_model_errors_say_what_is_wrong_not_where_in_the_graph():
    from tfrs_debias.serving.rest_codec import error_line

    session = (
        "Graph execution error:\n\nIncompatible shapes: [2,32] vs. [3,32]\n\t "
        "[[{{function_node __inference_<lambda>_16279}}{{node mul}}]]"
    )
    eager = (
        "Graph execution error:\n\nDetected at node mul defined at (most recent call "
        "last):\n<stack traces unavailable>\nIncompatible shapes: [2,32] vs. [3,32]\n\t "
        "[[{{function_node __inference_<lambda>_315}}{{node mul}}]] "
        "[Op:__inference_signature_wrapper_342]"
    )
    plain = "indices[0] = 9 is not in [0, 5)\n\t [[{{node GatherV2}}]]"
    for text in (session, eager):
        err = tf.errors.InvalidArgumentError(None, None, text)
        assert error_line(err) == "Incompatible shapes: [2,32] vs. [3,32]"
    assert error_line(ValueError(plain)) == "indices[0] = 9 is not in [0, 5)"


def test_inputs_with_different_row_counts_are_a_400_naming_them(server, exported):
    url, _ = server
    model, _, _, batch, _ = exported
    rel = {k: v.numpy().tolist()[:3] for k, v in relevance_inputs(batch, model).items()}
    item = model.schema.item_id.name
    rel[item] = rel[item][:2]
    status, body = rest_request(url + ":predict", {"inputs": rel})
    assert status == 400
    assert "the inputs of 'serving_default' must have the same number of rows" in body["error"]
    assert f"{item} 2" in body["error"] and f"{model.schema.user_id.name} 3" in body["error"]
