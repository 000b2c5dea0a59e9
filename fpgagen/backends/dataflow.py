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
  through a FIFO deep enough that the graph cannot deadlock (:func:`join_depth`; a backend
  whose tensors are whole arrays does not need them).
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


def join_depth(q: QGraph, layer: QLayer, tensor: str) -> int:
    """Elements of the FIFO on input ``tensor`` of the join ``layer``: a whole frame, so the
    graph cannot deadlock when one input is a fork of the other's source. A concat takes its
    inputs one after the other within each pixel, so an input read early (e.g. the model input
    beside a layer computed from it) waits for the others' latency as well: two frames, so the
    fork feeding both is not held back and the pipeline keeps its analytic rate."""
    frames = 2 if layer.op == "concat" else 1
    return math.prod(q.shapes[tensor]) * frames


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
