"""Serving: SavedModel export (TF Serving layout), top-item selection with re-ranking,
the REST and gRPC servers."""

from tfrs_debias.serving.export import export_saved_model
from tfrs_debias.serving.loaded_export import (
    LoadedExport,
    list_versions,
    load_metadata,
    resolve_version_dir,
)
from tfrs_debias.serving.model_server import ModelServer
from tfrs_debias.serving.reranker import Reranker, RerankOptions
from tfrs_debias.serving.rest_server import make_server
from tfrs_debias.serving.top_item_selector import (
    Ranking,
    RerankEvent,
    Selection,
    TopItemSelector,
    read_candidates,
)

__all__ = [
    "LoadedExport",
    "ModelServer",
    "Ranking",
    "RerankEvent",
    "RerankOptions",
    "Reranker",
    "Selection",
    "TopItemSelector",
    "export_saved_model",
    "list_versions",
    "load_metadata",
    "make_server",
    "read_candidates",
    "resolve_version_dir",
]
