"""Graph rewrites from what the frontend emits to the float IR.

Every pass has the same contract: ``pass(graph) -> changed`` rewrites the graph in place and
returns True when it changed something; :func:`run_passes` repeats each until nothing changes.
Afterwards no :class:`~fpgagen.passes.pending.PendingNode` may remain.
"""

from __future__ import annotations

from collections.abc import Callable

from fpgagen.errors import ModelError
from fpgagen.ir.graph import Graph
from fpgagen.names import quoted
from fpgagen.ops.pad import merge_pads
from fpgagen.passes.activations import fuse_activations
from fpgagen.passes.cleanup import drop_final_softmax, remove_dead, remove_identities
from fpgagen.passes.fold_affine import fold_affine
from fpgagen.passes.pending import PENDING_OPS, describe, prune_shapes

Pass = Callable[[Graph], bool]

#: in order: dead branches and identities first (they hide neighbours), affines before activations
#: (an affine is folded backward only into a layer without activation), zero pads into the convs
#: reading them, the final softmax last
DEFAULT_PASSES: tuple[Pass, ...] = (remove_dead, remove_identities, fold_affine, fuse_activations, merge_pads,
                                    drop_final_softmax)


def run_passes(graph: Graph, passes: tuple[Pass, ...] = DEFAULT_PASSES) -> Graph:
    """Run ``passes`` to a fixed point each; check that only IR layers remain; validate."""
    for p in passes:
        while p(graph):
            pass
    left = [n for n in graph.nodes if n.op in PENDING_OPS]
    if left:
        raise ModelError(f"model {quoted(graph.name)}: could not lower {', '.join(describe(n) for n in left)}")
    prune_shapes(graph)
    return graph.validate()
