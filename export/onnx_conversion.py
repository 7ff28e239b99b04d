"""A frozen TensorFlow graph to an ONNX ModelProto: tf2onnx's steps, in bounded memory.

`tf2onnx.convert.from_graph_def` needs ~80x the weights' bytes of memory (EfficientNetV2-S:
7.4 GB; V2-M was killed at 21 GB on a 24 GB host). Its optimizer loop deep-copies the graph
before each of its ~48 optimizer passes, and each pass leaves one more copy of every constant
in the arena of the node that holds it (protobuf's upb backend frees an arena only with its
message). Here the same steps run (grappler, op conversion, the same optimizers in the same
order until none changes the graph, `make_model`) with two differences:
- no deep copy per pass: an optimizer that fails raises, as in tf2onnx's large-model path;
- after each pass every node's proto is rebuilt from its current content, so the
  abandoned copies are freed with their arena.
The optimizer passes then hold no extra memory; what remains is TensorFlow's freezing and
grappler (BUILD_NOTES.md, "ONNX of large models", has the measurements). The graph is
`from_graph_def`'s: the same nodes and weights, outputs bit-equal
(tests/test_efficientnetv2.py).
"""

from __future__ import annotations

from typing import Any


def _rebuild_node_protos(graph: Any) -> None:
    """Give every node of a tf2onnx graph a fresh copy of its proto (see the module doc).

    `Node.op` is the proto and `Node._attr` the attributes that `update_proto` writes into
    it; both are tf2onnx internals (pinned to 1.17.0 in setup.py). Top-level nodes only: the
    graphs exported here have no control-flow subgraphs."""
    import onnx

    for node in graph.get_nodes():
        fresh = onnx.NodeProto()
        fresh.CopyFrom(node.op)
        node._op = fresh
        node._attr = {attribute.name: attribute for attribute in fresh.attribute}


def onnx_from_graph_def(graph_def: Any, input_name: str, output_names: list[str],
                        opset: int, name: str) -> Any:
    """The ONNX ModelProto of a frozen graph (`graph_def`) from one input to the outputs."""
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader
    from tf2onnx.tfonnx import process_tf_graph

    with tf.Graph().as_default():
        optimized = tf_loader.tf_optimize([input_name], output_names, graph_def)
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(optimized, name="")
        del optimized
        graph = process_tf_graph(tf_graph, input_names=[input_name], output_names=output_names,
                                 opset=opset)
    passes = optimizer._get_optimizers()  # tf2onnx's list and order
    iteration, changed = 0, True
    while changed:
        changed = False
        for step in passes.values():
            pass_ = step()
            graph = pass_.optimize(graph, iteration)
            changed = changed or pass_.graph_been_opt
            _rebuild_node_protos(graph)
        iteration += 1
    graph.topological_sort(graph.get_nodes())
    return graph.make_model(f"converted from {name}")
