"""`SessionServable`: one export version loaded for serving the way TF Serving's C++
server loads it: the SavedModel's MetaGraph imported into a graph of its own and run by
a session (``tf.compat.v1.Session``), each signature fed and fetched by the tensor names
of its ``SignatureDef``.

Why not ``tf.saved_model.load``: that rebuilds every saved function as a Python graph
(an export of ours: ~19k Python objects in reference cycles). A serving process holds
one or two versions, and every full collection of Python's garbage collector walks
those objects, in one pause that every request waits out (20-30 ms on a 2-core
machine). Loaded here, a version is ~1k Python objects: the functions stay in the
graph's function library, in C++. The signatures compute the same values (the same
graph functions run; the server's tests compare them with ``tf.saved_model.load``) at
the same speed, and the session releases the interpreter while it runs, as an eager
call does.

The MetaGraph is imported a piece at a time: each function of its library, then each
node (inputs mapped to the nodes already imported). TensorFlow holds the interpreter for
the whole of one import call, and the MetaGraph in one call (what
``tf.compat.v1.saved_model.load`` does) held it 15-40 ms while a server answered
requests; a piece holds it at most ~3-5 ms, and the `LoadThrottle` of a background load
pauses between pieces. Then the variables are restored through the export's saver and
its init op (lookup tables) runs, as TF Serving's loader does.

Each signature is a `SessionSignature` (``numpy in -> numpy out``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import DecodeError
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from tfrs_debias.backend import tf
from tfrs_debias.serving.session_signature import SessionSignature

#: The MetaGraph tag set of our exports (``tf.saved_model.save`` writes ``serve``).
SERVE_TAGS = ("serve",)


def _called_functions(nodes: Iterable[Any], names: set[str]) -> set[str]:
    """The library functions among ``names`` that ``nodes`` (NodeDefs) call: as their
    op, or through a function-valued attribute (``f`` of a call, branches, loop bodies)."""
    out = set()
    for node in nodes:
        if node.op in names:
            out.add(node.op)
        for attr in node.attr.values():
            if attr.HasField("func"):
                out.add(attr.func.name)
            if attr.HasField("list"):
                out.update(f.name for f in attr.list.func)
    return out & names


def _functions_callees_first(library: Any) -> list[Any]:
    """The library's FunctionDefs, each after the functions it calls."""
    functions = {f.signature.name: f for f in library.function}
    names = set(functions)
    order: list[Any] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for callee in sorted(_called_functions(functions[name].node_def, names)):
            visit(callee)
        order.append(functions[name])

    for name in sorted(functions):
        visit(name)
    return order


def _nodes_inputs_first(nodes: Iterable[Any]) -> list[Any]:
    """The graph's NodeDefs, each after the nodes it reads (data and control inputs)."""
    by_name = {n.name: n for n in nodes}
    order: list[Any] = []
    seen: set[str] = set()
    for start in by_name:
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                order.append(by_name[name])
                continue
            if name in seen:
                continue
            seen.add(name)
            stack.append((name, True))
            for inp in reversed(by_name[name].input):
                source = inp.lstrip("^").split(":")[0]
                if source not in seen:
                    stack.append((source, False))
    return order


def import_meta_graph_in_pieces(graph: tf.Graph, graph_def: Any) -> None:
    """Imports ``graph_def`` into ``graph`` one function, then one node, per import call
    (see the module docstring); the result is the graph one import would build."""
    for function in _functions_callees_first(graph_def.library):
        piece = graph_pb2.GraphDef(versions=graph_def.versions)
        piece.library.function.add().CopyFrom(function)
        name = function.signature.name
        piece.library.gradient.extend(
            g for g in graph_def.library.gradient if g.function_name == name
        )
        tf.compat.v1.import_graph_def(piece, name="")
    for node in _nodes_inputs_first(graph_def.node):
        piece = graph_pb2.GraphDef(versions=graph_def.versions)
        copy = piece.node.add()
        copy.CopyFrom(node)
        del copy.input[:]
        input_map, controls = {}, []
        for inp in node.input:
            if inp.startswith("^"):
                controls.append(graph.get_operation_by_name(inp[1:]))
                continue
            source, _, index = inp.partition(":")
            key = f"{source}:{index or 0}"
            copy.input.append(key)
            input_map[key] = graph.get_tensor_by_name(key)
        tf.compat.v1.import_graph_def(piece, input_map=input_map, name="")
        if controls:
            graph.get_operation_by_name(node.name)._add_control_inputs(controls)


class SessionServable:
    """One export version in its own graph and session; ``signatures`` maps each
    signature name to a `SessionSignature`.

    Args:
      version_dir: the version folder (``saved_model.pb`` and ``variables/``).
      tags: the MetaGraph tag set to load.

    Raises:
      tf.errors.OpError / ValueError: a missing, partial or corrupt folder (naming the
        file), or no MetaGraph with ``tags``.
    """

    def __init__(self, version_dir: str, tags: tuple[str, ...] = SERVE_TAGS):
        from tensorflow.python.util import deprecation

        self.version_dir = version_dir
        saved_model = saved_model_pb2.SavedModel()
        path = os.path.join(version_dir, "saved_model.pb")
        with tf.io.gfile.GFile(path, "rb") as fh:
            data = fh.read()
        try:
            saved_model.ParseFromString(data)
        except DecodeError as err:
            raise ValueError(f"{path}: not a SavedModel ({err})") from None
        found = [m for m in saved_model.meta_graphs if set(m.meta_info_def.tags) == set(tags)]
        if not found:
            raise ValueError(f"{version_dir}: no MetaGraph tagged {sorted(tags)}")
        meta_graph = found[0]
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            # (import_graph_def is marked deprecated for TF2 training code; it is what
            # loading a MetaGraph is made of: no warning here.)
            with self.graph.as_default(), deprecation.silence():
                import_meta_graph_in_pieces(self.graph, meta_graph.graph_def)
            saver = meta_graph.saver_def
            if saver.restore_op_name:  # (an export without variables has no saver)
                prefix = os.path.join(version_dir, "variables", "variables")
                self.session.run(saver.restore_op_name, {saver.filename_tensor_name: prefix})
            init = meta_graph.signature_def.get("__saved_model_init_op")
            if init is not None:  # lookup tables; asset files fed by their placeholders
                assets = {
                    a.tensor_info.name: os.path.join(version_dir, "assets", a.filename)
                    for a in meta_graph.asset_file_def
                }
                self.session.run(init.outputs["__saved_model_init_op"].name, assets)
            self.signatures: dict[str, SessionSignature] = {
                name: SessionSignature(self.session, signature_def)
                for name, signature_def in meta_graph.signature_def.items()
                if not name.startswith("__")  # __saved_model_init_op: run by the loader
            }
        except BaseException:
            self.session.close()
            raise

    def close(self) -> None:
        """Frees the session's resources (variables, tables); no call may follow."""
        self.session.close()
