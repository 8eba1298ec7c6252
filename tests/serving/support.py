"""Helpers shared by the serving tests: small model settings and a REST client."""

import json
import urllib.error
import urllib.request

SMALL = dict(
    embedding_dim=8,
    hidden_units=(16,),
    component_units=(8,),
    gate_units=(4,),
    value_weights=(1.0, 3.0),
    item_marginal_alpha=0.2,
)


def relevance_inputs(batch, model):
    return {f.name: batch[f.name] for f in model.schema.relevance_features}


def rest_request(url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


#: The select_top_k inputs beyond features, exclusions and k, set for a plain top-k.
PLAIN_SELECT = {
    "not_interested_item_ids": [],
    "item_age": [],
    "value_weights": [1.0, 3.0],
    "diversity_lambda": 1.0,
    "similarity_threshold": 1.0,
    "category_cap": 0,
    "freshness_weight": 0.0,
    "freshness_half_life": 7.0,
    "not_interested_threshold": 0.9,
}
