"""The dataflow plan that the Verilog and HLS backends share: one graph pass over the integer IR.

Both render the IR as a dataflow of layer instances (Verilog modules joined by streams, HLS
functions joined by arrays in a DATAFLOW region), and both need the same answers first:

- **aliases**: a Flatten that is only a relabelling has no instance; its output travels on its
  input's stream or buffer (in HWC order). Which flattens are relabellings is the backend's
  call (``relabels``): HLS tracks every tensor's layout, so every flatten is one; a Verilog
  flatten is one only where dense layers (which permute their weight columns) read it.
- **readers**: every read of a produced tensor, in graph order, the model output last.
- **forks**: a tensor read ``n > 1`` times is split by a chain of ``n - 1`` two-way copies;
  copy ``k`` goes to reader ``k`` and the rest to the next copy (:meth:`Dataflow.fork_chain`).
- **join buffers**: a layer that joins several streams (residual add, concat) reads each input
  through a FIFO deep enough that the graph cannot deadlock, sized by what the parallel branches
  hold (:func:`join_depth`; a backend whose tensors are whole arrays does not need them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import quoted

#: the reader name of the model output
OUTPUT = "<output>"
#: ops whose every input is buffered by a FIFO (they join several streams)
JOINS = ("add", "concat")


@dataclass(frozen=True)
class Read:
    """One read of a tensor: input ``index`` of layer ``reader`` (or :data:`OUTPUT`)."""

    reader: str
    index: int

    @property
    def who(self) -> str:
        return "the model output" if self.reader == OUTPUT else quoted(self.reader)


@dataclass
class Dataflow:
    q: QGraph
    #: a relabelling flatten's output -> the produced tensor whose stream/buffer it travels on
    alias: dict[str, str]
    #: produced tensor -> its reads in graph order (the model output last)
    readers: dict[str, list[Read]]
    #: the layers that have an instance (every layer but the aliased flattens), in graph order
    layers: list[QLayer] = field(default_factory=list)

    def source(self, tensor: str) -> str:
        """The produced tensor ``tensor`` travels on (itself, or an aliased flatten's input)."""
        return self.alias.get(tensor, tensor)

    def produced(self) -> list[str]:
        """Tensors with their own stream/buffer: the model input, then each instance's output."""
        return [self.q.input] + [layer.output for layer in self.layers]

    def fork_chain(self, tensor: str) -> list[Read]:
        """The reads of ``tensor`` that take a fork's first copy, in chain order (all but the
        last read, which takes the last fork's second copy, or the tensor itself)."""
        return self.readers.get(tensor, [])[:-1]

    def producer(self, tensor: str) -> str | None:
        return next((layer.name for layer in self.q.layers if layer.output == tensor), None)


def ancestors(q: QGraph) -> dict[str, frozenset]:
    """Tensor -> the names of the layers it is computed through (its producer and theirs)."""
    anc: dict[str, frozenset] = {q.input: frozenset()}
    for layer in q.layers:
        anc[layer.output] = frozenset({layer.name}).union(*(anc.get(t, frozenset()) for t in layer.inputs))
    return anc


#: a join FIFO's depth: the parallel branches' holdings times this, plus :data:`JOIN_SLACK` elements
JOIN_MARGIN = 1.25
JOIN_SLACK = 16


def join_depth(q: QGraph, layer: QLayer, index: int, holds, anc: dict | None = None) -> int:
    """Elements of the FIFO on input ``index`` of the join ``layer``: what the schedule needs.

    The input waits for the join's other inputs. Where it and they come from one fork, its FIFO
    fills while the other branches take the fork's data without giving outputs yet: at most what
    the layers on those branches only (not on this input's own path) hold, ``holds(layer) ->
    input elements`` (each layer's input elements converted to this input's by the tensors'
    sizes, as a frame moves through both in proportion), with :data:`JOIN_MARGIN` and
    :data:`JOIN_SLACK` for beats in flight. Never more than the old bound that cannot deadlock
    whatever the branches hold: a whole frame, two for a concat (which takes its inputs one
    after the other within each pixel, so an input read early also waits for the others' latency)."""
    anc = anc if anc is not None else ancestors(q)
    tensor = layer.inputs[index]
    size = math.prod(q.shapes[tensor])
    whole = size * (2 if layer.op == "concat" else 1)
    mine = anc.get(tensor, frozenset())
    others = frozenset().union(*(anc.get(t, frozenset()) for j, t in enumerate(layer.inputs) if j != index)) - mine
    held = 0.0
    for ly in q.layers:
        if ly.name in others:
            base = min(math.prod(q.shapes[t]) for t in ly.inputs)
            held += holds(ly) * size / max(base, 1)
    return min(whole, math.ceil(JOIN_MARGIN * held) + JOIN_SLACK)


def plan_dataflow(q: QGraph, relabels) -> Dataflow:
    """The shared plan of ``q``; ``relabels(q, layer)``: whether the flatten ``layer`` is only a
    relabelling (no instance). A layer reading a tensor before it is computed is an error."""
    alias: dict[str, str] = {}
    layers: list[QLayer] = []
    known = {q.input}
    for layer in q.layers:
        for t in layer.inputs:
            if t not in known:
                raise BackendError(f"layer {quoted(layer.name)} reads {quoted(t)} before it is computed")
        known.add(layer.output)
        if layer.op == "flatten" and relabels(q, layer):
            alias[layer.output] = alias.get(layer.inputs[0], layer.inputs[0])
        else:
            layers.append(layer)
    flow = Dataflow(q, alias, {}, layers)
    for layer in layers:
        for i, t in enumerate(layer.inputs):
            flow.readers.setdefault(flow.source(t), []).append(Read(layer.name, i))
    flow.readers.setdefault(flow.source(q.output), []).append(Read(OUTPUT, 0))
    return flow
