import urllib.error
import urllib.request

from tests.serving.support import rest_request


def test_prometheus_metrics_count_rest_requests_and_versions(managed):
    url, _, _, rel = managed
    root = url.split("/v1/")[0]
    assert rest_request(url + ":predict", {"inputs": rel})[0] == 200
    assert rest_request(url + "/versions/1:predict", {"inputs": rel})[0] == 404
    with urllib.request.urlopen(root + "/monitoring/prometheus/metrics") as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    line = 'tfrs_debias_requests_total{api="rest",code="200",model="ranker",verb="predict"} 1.0'
    assert line in text
    assert 'code="404",model="ranker",verb="predict"} 1.0' in text
    assert (
        'tfrs_debias_request_latency_seconds_count{api="rest",model="ranker",verb="predict"} 2.0'
        in text
    )
    assert (
        'tfrs_debias_model_version_available{model="ranker",state="AVAILABLE",version="3"} 1.0'
        in text
    )
