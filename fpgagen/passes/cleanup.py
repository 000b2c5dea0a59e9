"""Remove nodes that do not compute anything (Identity, Dropout) and a final Softmax/LogSoftmax."""

from __future__ import annotations

from fpgagen.errors import ModelError
from fpgagen.ir.graph import Graph
from fpgagen.names import quoted
from fpgagen.passes.pending import bypass, describe


def remove_dead(graph: Graph) -> bool:
    """Remove layers whose output nothing reads (branches that do not reach the model output)."""
    changed = False
    for node in reversed(list(graph.nodes)):
        if node.output != graph.output and not graph.consumers(node.output):
            graph.nodes.remove(node)
            graph.notes.append(f"removed {describe(node)}: its output does not reach the model output")
            changed = True
    return changed


def remove_identities(graph: Graph) -> bool:
    """Remove every ``identity`` node (Identity, Dropout in inference, a Cast to float)."""
    changed = False
    for node in [n for n in graph.nodes if n.op == "identity"]:
        bypass(graph, node)
        graph.notes.append(f"removed {describe(node)}: it does not change its input in inference")
        changed = True
    return changed


def drop_final_softmax(graph: Graph) -> bool:
    """Drop a Softmax/LogSoftmax that computes the model output; error for one elsewhere."""
    for node in [n for n in graph.nodes if n.op == "softmax"]:
        if node.output != graph.output or graph.consumers(node.output):
            raise ModelError(
                f"{describe(node)} is not at the model output; fpgagen supports a Softmax/LogSoftmax only "
                f"as the last node (it is dropped: the argmax of the logits is the same)"
            )
        graph.nodes.remove(node)
        graph.output = node.inputs[0]
        graph.shapes.pop(node.output, None)
        graph.notes.append(
            f"dropped {describe(node)} at the output: the model now outputs the logits {quoted(graph.output)} "
            f"(the argmax is unchanged)"
        )
        return True
    return False
