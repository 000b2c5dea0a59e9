"""Read an ONNX model into the float IR (the only module of fpgagen that imports ``onnx``).

:func:`load_onnx` reads the file, runs onnx's shape inference, folds constant subgraphs with a
small NumPy evaluator (Constant nodes, Reshape/Transpose/Cast/... of initializers, Shape of a
tensor whose shape is known), maps every other ONNX node to an IR layer or a pending node
(:mod:`fpgagen.passes.pending`) and runs the passes (:mod:`fpgagen.passes`) that fold
BatchNormalization and constant Add/Mul into conv/dense layers, fuse ReLU/Clip, and drop
Identity/Dropout and a final Softmax.

Shapes are per sample: the first axis of every computed ONNX tensor is the batch, whatever size
the export fixed it to. An IR tensor holds the same data in the same C order as its ONNX tensor,
so a Reshape/Squeeze/Unsqueeze/Transpose/Flatten that only relabels the layout becomes an IR
``flatten`` (to a vector) or nothing at all. Two exceptions, for TF/Keras exports (tf2onnx): the
model input's IR layout is the one its first layer reads it in, through any Reshape/Transpose
(an NHWC input read through a Transpose to NCHW: ``Graph.input_order`` gathers the data); and a
Transpose that moves data elsewhere gives a tensor whose elements are a permutation of its IR
tensor's (``_Tensor.order``): a Transpose back undoes it, a dense layer reading its flatten takes
its weights permuted (Keras' Transpose to NHWC before Flatten), any other layer refuses it by name.

Supported ONNX ops (default domain, opsets 7 to the newest the installed onnx defines) are :data:`SUPPORTED_OPS`; constant subgraphs
may use :data:`CONSTANT_OPS`. The import rule of an ONNX op that becomes an IR layer (Conv, Gemm,
MatMul, the pools, LeakyRelu, Concat, Resize/Upsample, Pad) lives with that op in
:mod:`fpgagen.ops` (``Op.import_onnx``, registered here); this module keeps the walk, constant
folding and the rules of what the passes remove or fold (BatchNormalization, Add/Mul of a
constant, Relu/Clip, Identity, layouts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from fpgagen.errors import ModelError
from fpgagen.fixed import round_real
from fpgagen.ir.format import Format
from fpgagen.ir.graph import Graph, Node, QuantPoint
from fpgagen.names import fmt_shape, quoted, shorten
from fpgagen.ops import onnx_rules
from fpgagen.ops.activation import Clip, ReLU
from fpgagen.passes import run_passes
from fpgagen.passes.pending import PendingNode
from fpgagen.tables import registrar

#: the opsets a model may import: 7 up to the newest the installed onnx defines
MIN_OPSET, MAX_OPSET = 7, onnx.defs.onnx_opset_version()
#: the newest opset whose changes to the supported ops were checked against these import rules (22-28
#: only widened element types, and Cast got `round_mode` for float8 targets); an op whose schema
#: changed after it is refused by name (:meth:`_Importer.check_schema`)
CHECKED_OPSET = 28
#: ONNX Clip's default bounds before opset 11 (float32 lowest/max)
_FLT_MAX = float(np.finfo(np.float32).max)
#: the batch size a Shape node reports when the model's batch axis is symbolic: an unlikely size, so
#: that a Reshape target computed from it is recognised as "the batch" and a literal one is not
FREE_BATCH = 7919


# -- registries ----------------------------------------------------------------------------------
_IMPORTERS: dict = {}
_FOLDERS: dict = {}


#: register the importer of ONNX ops whose data input is a computed tensor
imports = registrar(_IMPORTERS, "importers")
#: register the NumPy evaluator of ONNX ops whose inputs are all constants
folds = registrar(_FOLDERS, "constant evaluators")


# -- per-sample tensors ------------------------------------------------------------------------------
def ir_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The IR shape holding an ONNX per-sample shape: ``(N,)``, ``(C, W) -> (C, 1, W)``, ``(C, H, W)``."""
    if len(shape) == 1 or len(shape) == 3:
        return tuple(shape)
    if len(shape) == 2:
        return (shape[0], 1, shape[1])
    return None


@dataclass
class _Tensor:
    """A computed ONNX tensor: the IR tensor that holds its data and its ONNX per-sample shape."""

    ir: str
    shape: tuple[int, ...]
    #: the IR shape of the data (differs from ir_shape(shape) after a relabelling the IR cannot express)
    irs: tuple[int, ...] | None
    #: 1 for a vector transposed to [K, batch] (only a Transpose back or a Gemm with transA=1 reads it)
    batch_axis: int = 0
    #: element i of the ONNX tensor (C order of ``shape``) is element ``order[i]`` of the IR tensor
    #: (C order of ``irs``), after a Transpose that moved data (e.g. to NHWC); None: the same order.
    #: For a ``free`` tensor the order is relative to the ONNX model input
    order: np.ndarray | None = None
    #: the model input or a Reshape/Transpose of it whose IR layout is not fixed yet: the first layer
    #: that reads it fixes the IR input to the layout it reads (:meth:`_Importer.commit`)
    free: bool = False
    #: the ONNX node that moved the data (for errors)
    moved_by: str = ""


#: ONNX ops that only relabel or permute a tensor (they do not fix the model input's IR layout)
_LAYOUT_OPS = ("Flatten", "Reshape", "Squeeze", "Transpose", "Unsqueeze")


def _order_or_none(order: np.ndarray) -> np.ndarray | None:
    """``order`` as an element order (None when it is the identity)."""
    return None if np.array_equal(order, np.arange(order.size)) else order


_fmt_shape = fmt_shape


# -- the importer --------------------------------------------------------------------------------------
class _Importer:
    def __init__(self, model: onnx.ModelProto, source: str, name: str, snap_scales: bool = False):
        self.model = model
        self.g = model.graph
        self.where = source or name or "ONNX model"
        self.name = name
        self.opset = self._opset()
        self.consts: dict[str, np.ndarray] = {}
        self.tensors: dict[str, _Tensor] = {}
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.notes: list[str] = []
        self.layer_names: set[str] = set()
        self.batch: int | None = None
        #: the model input's IR layout once a layer has read it: (IR shape, input_order, reader)
        self.input_fixed: tuple | None = None
        self.inferred = self._infer_shapes()
        self.used = {i for n in self.g.node for i in n.input} | {o.name for o in self.g.output}
        #: quantization.snap_scales: a scale that is not a power of two is rounded to one (noted)
        self.snap_scales = snap_scales
        #: IR tensor -> the format the model gives it (QuantizeLinear/DequantizeLinear, QONNX Quant)
        self.quant: dict = {}
        #: the integer output of a QuantizeLinear of a computed tensor -> (its input, QuantPoint, scale, zp)
        self.qouts: dict = {}
        #: a constant computed by a DequantizeLinear (a weight or bias) -> its QuantPoint
        self.const_quant: dict = {}
        self.input_name = ""

    # -- model-level checks
    def _opset(self) -> int:
        version = None
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                version = imp.version
        if version is None:
            raise ModelError(f"{self.where}: the model imports no default-domain (ai.onnx) opset")
        if not MIN_OPSET <= version <= MAX_OPSET:
            raise ModelError(
                f"{self.where}: opset {version} is not supported; supported: ai.onnx opsets {MIN_OPSET} to {MAX_OPSET}"
            )
        return version

    def _infer_shapes(self) -> dict[str, list]:
        try:
            inferred = shape_inference.infer_shapes(self.model)
        except Exception as exc:  # onnx raises several types (InferenceError, ValidationError, ...)
            raise ModelError(f"{self.where}: ONNX shape inference failed: {exc}") from exc
        dims = {}
        for vi in (*inferred.graph.value_info, *inferred.graph.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                                 for d in vi.type.tensor_type.shape.dim]
        return dims

    # -- naming and errors
    def node_name(self, node: onnx.NodeProto, index: int) -> str:
        """A layer name unique in the model: the ONNX node's name, ``<op>_<index>`` for an unnamed
        node; a repeated name gets ``_<index>`` (then ``_2``, ``_3``, ... until it is free)."""
        base = node.name or f"{node.op_type}_{index}"
        name, k = base, 1
        while name in self.layer_names:
            name = f"{base}_{index}" if k == 1 else f"{base}_{index}_{k}"
            k += 1
        self.layer_names.add(name)
        return name

    def label(self, node: onnx.NodeProto, index: int) -> str:
        """``node 'conv1' (Conv)``: the ONNX node, for messages."""
        return f"node {quoted(node.name or f'{node.op_type}_{index}')} ({node.op_type})"

    def err(self, node: onnx.NodeProto, index: int, msg: str) -> ModelError:
        return ModelError(f"{self.where}: {self.label(node, index)}: {msg}")

    # -- tensors
    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def set_tensor(self, onnx_name: str, t: _Tensor) -> None:
        dims = self.inferred.get(onnx_name)
        if t.batch_axis == 0 and dims is not None and len(dims) == len(t.shape) + 1 and None not in dims[1:]:
            if tuple(dims[1:]) != tuple(t.shape):
                raise ModelError(
                    f"{self.where}: tensor {quoted(onnx_name)}: ONNX shape inference gives {_fmt_shape(dims)} but "
                    f"fpgagen computed the per-sample shape {_fmt_shape(t.shape)}"
                )
        self.tensors[onnx_name] = t

    def full_shape(self, t: _Tensor) -> tuple[int, ...]:
        """The ONNX shape with the batch axis: the exported batch, or :data:`FREE_BATCH` when symbolic."""
        b = self.batch or FREE_BATCH
        return (*t.shape, b) if t.batch_axis else (b, *t.shape)

    def emit(self, node: onnx.NodeProto, index: int, op: str, inputs: list[_Tensor], shape, *,
             weight=None, bias=None, activation=None, pending: bool = False,
             extra_onnx: list[str] | None = None, params=None) -> _Tensor:
        """Add an IR (or pending) node computing ``node``'s first output, of per-sample ONNX ``shape``."""
        shape = tuple(int(d) for d in shape)
        irs = ir_shape(shape) if op != "flatten" else (int(np.prod(shape)),)
        if pending and inputs and inputs[0].irs is not None and op != "flatten":
            irs = inputs[0].irs  # elementwise: same data layout as the input
        if irs is None:
            raise self.err(node, index, f"output per-sample shape {_fmt_shape(shape)} has rank {len(shape)}; "
                                        f"supported: rank 1 (vector), 2 (C, W) or 3 (C, H, W)")
        out = node.output[0]
        cls = PendingNode if pending else Node
        label = node.name or f"{node.op_type}_{index}"
        n = cls(
            name=self.node_name(node, index), op=op, inputs=[t.ir for t in inputs], output=out,
            weight=weight, bias=bias, activation=activation,
            onnx_nodes=[label, *(extra_onnx or [])], onnx_op=node.op_type, params=params,
        )
        self.nodes.append(n)
        self.shapes[out] = irs
        t = _Tensor(out, shape, irs)
        if pending and inputs and inputs[0].order is not None:  # elementwise: the same element order
            t = replace(t, order=inputs[0].order, moved_by=inputs[0].moved_by)
        self.set_tensor(out, t)
        return t

    # -- the walk
    def run(self) -> Graph:
        g = self.g
        for init in g.initializer:
            self.consts[init.name] = self._initializer(init)
        for sparse in g.sparse_initializer:
            raise ModelError(f"{self.where}: sparse initializer {quoted(sparse.values.name)} is not supported")
        inputs = [vi for vi in g.input if vi.name not in self.consts]
        if len(inputs) != 1:
            raise ModelError(
                f"{self.where}: expected exactly one model input (besides initializers), got {len(inputs)}: "
                f"{[vi.name for vi in inputs]}"
            )
        if len(g.output) != 1:
            raise ModelError(f"{self.where}: expected exactly one model output, got {len(g.output)}: "
                             f"{[vi.name for vi in g.output]}")
        vi = inputs[0]
        in_shape = self._input_shape(vi)
        irs = ir_shape(in_shape)
        if irs is None:
            raise ModelError(f"{self.where}: model input {quoted(vi.name)} has per-sample shape {_fmt_shape(in_shape)}; "
                             f"supported: a vector [N, K], a 1-D map [N, C, W] or an image [N, C, H, W]")
        self.tensors[vi.name] = _Tensor(vi.name, in_shape, irs, free=True)
        self.shapes[vi.name] = irs
        self.input_name = vi.name

        for index, node in enumerate(g.node):
            self._node(node, index)

        out_name = g.output[0].name
        if out_name in self.consts:
            raise ModelError(f"{self.where}: the model output {quoted(out_name)} is a constant")
        if out_name in self.qouts:
            raise ModelError(f"{self.where}: the model output {quoted(out_name)} is the integer output of a "
                             f"QuantizeLinear; supported: a float output (a DequantizeLinear after it)")
        if out_name not in self.tensors:
            raise ModelError(f"{self.where}: the model output {quoted(out_name)} is never computed")
        out = self.tensors[out_name]
        if out.batch_axis:
            raise ModelError(f"{self.where}: the model output {quoted(out_name)} has the batch on axis 1; expected axis 0")
        # the model input (relabelled) as the output: a relabelling of any rank is fine there, as long as
        # the IR input holds the data in the ONNX input's order; else the output fixes the IR input's layout
        plain = out.order is None and (self.input_fixed is None or self.input_fixed[1] is None)
        if out.free and not (plain and (self.input_fixed is not None or ir_shape(out.shape) is None)):
            out = self.commit(out, f"the model output {quoted(out_name)}")
        if out.order is not None:
            raise ModelError(
                f"{self.where}: the model output {quoted(out_name)} is tensor {quoted(out.ir)} with its data moved by "
                f"{out.moved_by}; fpgagen's outputs keep their layer's order; supported: a "
                f"Transpose that moves data at the model input (e.g. NHWC to NCHW), before a Flatten/Reshape read "
                f"by a MatMul/Gemm (e.g. NCHW to NHWC) or undone by a later Transpose")
        order = None if self.input_fixed is None else self.input_fixed[1]
        graph = Graph(
            name=self.name, input=vi.name, output=out.ir, nodes=self.nodes, shapes=self.shapes,
            onnx_input_shape=in_shape, onnx_output_shape=out.shape, notes=self.notes,
            source=self.where if self.where != self.name else "", input_order=order, quant=self.quant,
            onnx_tensors={name: t.ir for name, t in self.tensors.items()},
        )
        return run_passes(graph)

    def _initializer(self, init: onnx.TensorProto) -> np.ndarray:
        """An initializer as an array; a ModelError when its data does not fill its dims."""
        dims = [int(d) for d in init.dims]
        count = math.prod(dims)
        try:
            value = numpy_helper.to_array(init)
        except Exception as exc:  # onnx/NumPy raise ValueError, TypeError, ... on malformed data
            value, failure = None, exc
        if value is not None and value.size == count:
            return value
        try:
            type_name = onnx.TensorProto.DataType.Name(init.data_type)
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type))
        except (ValueError, TypeError, KeyError):
            raise ModelError(f"{self.where}: initializer {quoted(init.name)} has the unknown data type "
                             f"{init.data_type}") from None
        expected = f"{count} {type_name} value{'s' if count != 1 else ''}"
        if init.HasField("raw_data"):
            expected += f" = {count * dtype.itemsize} bytes"
            given = f"its raw data holds {len(init.raw_data)} bytes"
        else:
            field = helper.tensor_dtype_to_field(init.data_type)
            given = f"its {field} holds {len(getattr(init, field))} values"
        if init.HasField("raw_data"):
            fits = len(init.raw_data) == count * dtype.itemsize
        else:
            fits = len(getattr(init, helper.tensor_dtype_to_field(init.data_type))) == count
        if value is not None or not fits:
            raise ModelError(f"{self.where}: initializer {quoted(init.name)} has dims {_fmt_shape(dims)}, "
                             f"expected {expected}, but {given}")
        raise ModelError(f"{self.where}: initializer {quoted(init.name)} (dims {_fmt_shape(dims)}, {type_name}) "
                         f"cannot be read: {type(failure).__name__}: {failure}")

    def _input_shape(self, vi) -> tuple[int, ...]:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
            raise ModelError(f"{self.where}: model input {quoted(vi.name)} has no tensor shape")
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise ModelError(
                f"{self.where}: model input {quoted(vi.name)} has element type "
                f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; supported: FLOAT"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) < 2 or None in dims[1:]:
            shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
            raise ModelError(
                f"{self.where}: model input {quoted(vi.name)} has shape {_fmt_shape(shown)}; expected the batch "
                f"first and fixed sizes for the other axes"
            )
        self.batch = dims[0] if dims[0] else None
        return tuple(dims[1:])

    def _node(self, node: onnx.NodeProto, index: int) -> None:
        op = node.op_type
        if node.domain in QONNX_DOMAINS and op in _QONNX_IMPORTERS:
            computed = [i for i in node.input[:1] if i and i not in self.consts]
            for name in computed:
                if name not in self.tensors:
                    raise self.err(node, index, f"input {quoted(name)} is not computed before this node")
            _QONNX_IMPORTERS[op](self, node, index, bool(computed), _attrs(node))
            return
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, index, f"op {node.domain}.{op} is not supported; supported: the default "
                                        f"ONNX domain ops {', '.join(SUPPORTED_OPS)}")
        computed = [i for i in node.input if i and i not in self.consts]
        for name in computed:
            if name in self.qouts and op != "DequantizeLinear":
                raise self.err(node, index, f"input {quoted(name)} is the integer output of a QuantizeLinear; "
                                            f"supported: a DequantizeLinear reading it (a Q/DQ pair)")
            if name not in self.tensors and name not in self.qouts:
                raise self.err(node, index, f"input {quoted(name)} is not computed before this node "
                                            f"(the graph must be topologically sorted)")
        if op in _QDQ_IMPORTERS and node.domain in ("", "ai.onnx"):
            self.check_schema(node, index)
            _QDQ_IMPORTERS[op](self, node, index, bool(computed), _attrs(node))
            return
        if op in ("Shape", "Size") and computed:
            shape = self.full_shape(self.tensors[computed[0]])
            self._fold(node, index, [np.broadcast_to(np.zeros((), np.float32), shape)])  # a view: no memory
            return
        if not computed:
            self._fold(node, index, [self.const(i) for i in node.input])
            return
        fn = _IMPORTERS.get(op)
        if fn is None:
            raise self.err(node, index, f"op {op} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        self.check_schema(node, index)
        if op not in _LAYOUT_OPS:  # a layer reads the model input: its IR layout is the one read
            for name in computed:
                if self.tensors[name].free:
                    self.tensors[name] = self.commit(self.tensors[name], self.label(node, index))
        t = self.tensors[computed[0]]
        if any(self.tensors[c].batch_axis for c in computed) and op not in ("Transpose", "Gemm"):
            raise self.err(node, index, f"input {quoted(computed[0])} has the batch on axis 1 (after a Transpose); "
                                        f"only a Transpose back or a Gemm with transA=1 can read it")
        for extra in node.output[1:]:
            if extra and extra in self.used:
                raise self.err(node, index, f"output {quoted(extra)} (output {list(node.output).index(extra)}) is used; "
                                            f"fpgagen supports only the first output of {op}")
        before = len(self.nodes)
        fn(self, node, index, t, _attrs(node))
        if op in ("Conv", "Gemm", "MatMul"):  # the model's weight / bias formats (DequantizeLinear)
            for n in self.nodes[before:]:
                if n.weight is not None:
                    n.w_quant = self.channel_quant(node, index, 1, weight_out_axis(node))
                    n.b_quant = self.channel_quant(node, index, 2, 0) if len(node.input) > 2 else None

    def channel_quant(self, node, index, slot: int, out_axis: int):
        """The model's format of input ``slot`` of a conv/dense node, None if it has none; per-channel
        scales must lie on the axis of the layer's output channels (``out_axis`` of the ONNX constant)."""
        p = self.const_quant.get(node.input[slot])
        if p is not None and p.channels is not None and p.axis != out_axis:
            what = ("weight", "bias")[slot - 1]
            raise self.err(node, index, f"{what} {quoted(node.input[slot])} has per-channel scales on axis {p.axis}, "
                                        f"but the layer's output channels are its axis {out_axis}; supported: "
                                        f"scales per output channel")
        return p

    def check_schema(self, node, index) -> None:
        """Refuse an op whose ONNX definition at the model's opset is newer than :data:`CHECKED_OPSET`."""
        try:
            since = onnx.defs.get_schema(node.op_type, self.opset).since_version
        except onnx.defs.SchemaError:
            return
        if since > CHECKED_OPSET:
            raise self.err(node, index, f"{node.op_type} changed at opset {since}, after the opsets fpgagen's import "
                                        f"rules were checked against (up to {CHECKED_OPSET}); export at opset "
                                        f"{CHECKED_OPSET} or lower")

    def _fold(self, node, index, args) -> None:
        fn = _FOLDERS.get(node.op_type)
        if fn is None:
            raise self.err(node, index, f"all inputs are constants but op {node.op_type} cannot be evaluated "
                                        f"at import; constant subgraphs may use: {', '.join(CONSTANT_OPS)}")
        try:
            results = fn(self, node, args, _attrs(node))
        except ModelError:
            raise
        except Exception as exc:  # NumPy shape/broadcast errors in a malformed constant subgraph
            raise self.err(node, index, f"cannot evaluate it on constants: {type(exc).__name__}: {exc}") from exc
        for name, value in zip(node.output, results):
            if name:
                self.consts[name] = np.asarray(value)

    # -- helpers for importers
    def check_attrs(self, node, index, attrs: dict, allowed: tuple[str, ...]) -> None:
        for key, value in attrs.items():
            if key not in allowed:
                raise self.err(node, index, f"attribute {quoted(key)} = {shorten(repr(value))} is not supported; supported "
                                            f"attributes of {node.op_type}: {', '.join(allowed) or 'none'}")

    def need_const(self, node, index, pos: int, what: str) -> np.ndarray:
        name = node.input[pos] if len(node.input) > pos else ""
        if not name:
            raise self.err(node, index, f"{what} (input {pos}) is missing")
        value = self.consts.get(name)
        if value is None:
            raise self.err(node, index, f"{what} (input {pos}, {quoted(name)}) must be a constant (an initializer "
                                        f"or a constant subgraph), but it is computed from the model input")
        return value

    def opt_const(self, node, index, pos: int, what: str) -> np.ndarray | None:
        if len(node.input) <= pos or not node.input[pos]:
            return None
        return self.need_const(node, index, pos, what)

    def commit(self, t: _Tensor, reader: str) -> _Tensor:
        """Fix the model input's IR layout to the one ``reader`` reads ``t`` (free: the input, or a
        Reshape/Transpose of it) in: the IR input is ``ir_shape(t.shape)``, its data gathered from
        the ONNX input by ``t.order`` (:attr:`Graph.input_order`). Every reader must agree."""
        irs = ir_shape(t.shape)
        name = quoted(t.ir)
        if irs is None:
            raise ModelError(f"{self.where}: {reader} reads the model input {name} as per-sample shape "
                             f"{_fmt_shape(t.shape)} (rank {len(t.shape)}); supported: rank 1 (vector), 2 (C, W) or "
                             f"3 (C, H, W)")
        if self.input_fixed is None:
            self.input_fixed = (irs, t.order, reader)
            self.shapes[t.ir] = irs
        else:
            irs0, order0, first = self.input_fixed
            same = (order0 is None and t.order is None) or (
                order0 is not None and t.order is not None and np.array_equal(order0, t.order))
            if irs0 != irs or not same:
                moved = " with its data moved" if t.order is not None else ""
                moved0 = " with its data moved" if order0 is not None else ""
                raise ModelError(
                    f"{self.where}: {reader} reads the model input {name} as {_fmt_shape(t.shape)}{moved}, but "
                    f"{first} reads it as {_fmt_shape(irs0)}{moved0}; fpgagen holds the model input in one layout: "
                    f"expected every layer to read it through the same Reshape/Transpose")
        return _Tensor(t.ir, t.shape, irs, batch_axis=t.batch_axis)

    def vector_weight(self, t: _Tensor, w: np.ndarray) -> np.ndarray:
        """A dense weight ``[M, K]`` over ``t``'s ONNX element order, over its IR order: a flatten of an
        NHWC view (Transpose perm [0, 2, 3, 1], then Flatten/Reshape) reads the IR's CHW flatten."""
        if t.order is None:
            return w
        out = np.empty_like(w)
        out[:, t.order] = w
        return out

    def need_layout(self, node, index, t: _Tensor, ranks: tuple[int, ...], what: str,
                    allow_order: bool = False) -> None:
        if len(t.shape) not in ranks:
            raise self.err(node, index, f"input has per-sample shape {_fmt_shape(t.shape)}; {what}")
        if t.order is not None and not allow_order:
            raise self.err(node, index, f"input {quoted(t.ir)} has its data moved by "
                                        f"{t.moved_by} (per-sample shape {_fmt_shape(t.irs or ())} -> "
                                        f"{_fmt_shape(t.shape)}); {what}; a Transpose that moves data is supported at "
                                        f"the model input (e.g. NHWC to NCHW), before a Flatten/Reshape to a vector "
                                        f"read by a MatMul/Gemm (e.g. NCHW to NHWC), or undone by a Transpose back")
        if t.irs != ir_shape(t.shape):
            raise self.err(node, index, f"input {quoted(t.ir)} of IR shape {_fmt_shape(t.irs or ())} was relabelled to "
                                        f"{_fmt_shape(t.shape)} by a Reshape/Transpose fpgagen cannot express; {what}")

    def alias(self, node, index, t: _Tensor, shape: tuple[int, ...], order=False, moved_by: str = "") -> None:
        """``node``'s output is ``t``'s data with the per-sample shape ``shape`` (a relabelling; with
        ``order``, a Transpose: the output's element order, None for the IR's)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != int(np.prod(t.shape)):
            raise self.err(node, index, f"changes the per-sample size from {_fmt_shape(t.shape)} to "
                                        f"{_fmt_shape(shape)}")
        if order is False:
            order, moved_by = t.order, t.moved_by
        moved_by = moved_by if order is not None else ""
        if t.free and not (len(shape) == 1 and len(ir_shape(t.shape) or ()) == 3):
            # a view of the model input: the layer that reads it fixes the input's IR layout
            self.set_tensor(node.output[0], _Tensor(t.ir, shape, ir_shape(shape), order=order, free=True,
                                                    moved_by=moved_by))
            return
        if t.free:  # flattened: the input keeps the layout the flatten reads (order None from here)
            t, order = self.commit(t, self.label(node, index)), None
        if ir_shape(shape) == t.irs:
            self.set_tensor(node.output[0], _Tensor(t.ir, shape, t.irs, order=order, moved_by=moved_by))
        elif len(shape) == 1 and t.irs is not None and len(t.irs) == 3:
            flat = self.emit(node, index, "flatten", [t], shape)
            if order is not None:  # a flatten of a transposed map: the dense layer reading it permutes its weights
                self.set_tensor(node.output[0], replace(flat, order=order, moved_by=moved_by))
        else:
            # a relabelling the IR cannot hold: fine at the model output, an error where a layer needs it
            self.set_tensor(node.output[0], _Tensor(t.ir, shape, t.irs, order=order, moved_by=moved_by))


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


# -- importers: elementwise ---------------------------------------------------------------------------
def _per_sample_const(im, node, index, t: _Tensor, c: np.ndarray) -> np.ndarray:
    """A constant operand of an elementwise op, broadcastable to ``t``'s IR shape."""
    c = np.asarray(c, np.float64)
    if c.size == 1:
        return c.reshape(())
    rank = len(t.shape)
    if c.ndim == rank + 1:
        if c.shape[0] != 1:
            raise im.err(node, index, f"constant of shape {_fmt_shape(c.shape)} varies along the batch axis")
        c = c[0]
    if c.ndim > rank:
        raise im.err(node, index, f"constant of shape {_fmt_shape(c.shape)} has more axes than the input "
                                  f"[batch, {', '.join(map(str, t.shape))}]")
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    try:
        out = np.broadcast_shapes(c.shape, t.shape)
    except ValueError:
        out = None
    if out != tuple(t.shape):
        raise im.err(node, index, f"constant of shape {_fmt_shape(c.shape)} does not broadcast to the input's "
                                  f"per-sample shape {_fmt_shape(t.shape)}")
    im.need_layout(node, index, t, (1, 2, 3), "a non-scalar constant needs an IR layout")
    return c.reshape(c.shape[0], 1, c.shape[1]) if rank == 2 else c


@imports("Add", "Sub", "Mul", "Div")
def _binary(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ())
    op = node.op_type
    a_name, b_name = node.input[0], node.input[1]
    if a_name not in im.consts and b_name not in im.consts:
        if op != "Add":
            raise im.err(node, index, f"{op} of two computed tensors is not supported; supported: Add (a residual "
                                      f"connection) of two computed tensors, or {op} with a constant")
        a, b = im.tensors[a_name], im.tensors[b_name]
        if a.shape != b.shape:
            raise im.err(node, index, f"Add of per-sample shapes {_fmt_shape(a.shape)} and {_fmt_shape(b.shape)}; "
                                      f"supported: two tensors of the same shape (no broadcasting)")
        for x in (a, b):
            im.need_layout(node, index, x, (1, 2, 3), "Add needs both inputs in an IR layout")
        im.emit(node, index, "add", [a, b], a.shape)
        return
    const_first = a_name in im.consts
    c = _per_sample_const(im, node, index, t, im.consts[a_name if const_first else b_name])
    one, zero = np.ones(()), np.zeros(())
    if op == "Add":
        scale, shift = one, c
    elif op == "Sub":
        scale, shift = (-one, c) if const_first else (one, -c)
    elif op == "Mul":
        scale, shift = c, zero
    else:
        if const_first:
            raise im.err(node, index, "Div of a constant by a computed tensor is not supported; supported: "
                                      "computed / constant")
        if (c == 0).any():
            raise im.err(node, index, "Div by a constant that contains zeros")
        scale, shift = 1.0 / c, zero
    im.emit(node, index, "affine", [t], t.shape, weight=np.asarray(scale, np.float32),
            bias=np.asarray(shift, np.float32), pending=True)


@imports("BatchNormalization")
def _batchnorm(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("epsilon", "momentum", "spatial", "training_mode"))
    if int(attrs.get("spatial", 1)) != 1:
        raise im.err(node, index, f"attribute 'spatial' = {attrs['spatial']} is not supported; supported: 1")
    if int(attrs.get("training_mode", 0)) != 0:
        raise im.err(node, index, f"attribute 'training_mode' = {attrs['training_mode']} is not supported; "
                                  f"supported: 0 (inference)")
    im.need_layout(node, index, t, (1, 2, 3), "BatchNormalization expects [C], [C, W] or [C, H, W]")
    names = ("scale", "B", "input_mean", "input_var")
    scale, bias, mean, var = (im.need_const(node, index, i + 1, n).astype(np.float64) for i, n in enumerate(names))
    c = t.shape[0]
    for name, v in zip(names, (scale, bias, mean, var)):
        if v.shape != (c,):
            raise im.err(node, index, f"{name} has shape {_fmt_shape(v.shape)}; expected [{c}] (one per channel)")
    s = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    shift = bias - mean * s
    form = (c,) + (1,) * (len(t.irs) - 1)
    im.emit(node, index, "affine", [t], t.shape, weight=s.reshape(form).astype(np.float32),
            bias=shift.reshape(form).astype(np.float32), pending=True)


@imports("Relu")
def _relu(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ())
    im.emit(node, index, "act", [t], t.shape, activation=ReLU(), pending=True)


@imports("Clip")
def _clip(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    if im.opset < 11:
        im.check_attrs(node, index, attrs, ("min", "max"))
        lo, hi = float(attrs.get("min", -_FLT_MAX)), float(attrs.get("max", _FLT_MAX))
    else:
        im.check_attrs(node, index, attrs, ())
        lo_c = im.opt_const(node, index, 1, "min")
        hi_c = im.opt_const(node, index, 2, "max")
        lo = -math.inf if lo_c is None else float(lo_c)
        hi = math.inf if hi_c is None else float(hi_c)
    lo = -math.inf if lo <= -_FLT_MAX else lo
    hi = math.inf if hi >= _FLT_MAX else hi
    if lo == -math.inf and hi == math.inf:
        im.emit(node, index, "identity", [t], t.shape, pending=True)
        return
    if lo != 0 or not hi > 0:
        raise im.err(node, index, f"Clip(min={lo:g}, max={hi:g}) is not supported; supported: min 0 with "
                                  f"max > 0 (a ReLU, capped or not)")
    act = ReLU() if hi == math.inf else Clip(0.0, hi)
    im.emit(node, index, "act", [t], t.shape, activation=act, pending=True)


@imports("Identity")
def _identity(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ())
    im.emit(node, index, "identity", [t], t.shape, pending=True)


@imports("Dropout")
def _dropout(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("ratio", "seed"))
    training = im.opt_const(node, index, 2, "training_mode")
    if training is not None and bool(training):
        raise im.err(node, index, "input training_mode is true; supported: inference (false or absent)")
    im.emit(node, index, "identity", [t], t.shape, pending=True)


@imports("Cast")
def _cast(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("to", "saturate", "round_mode"))  # both only matter for float8 targets
    if attrs.get("to") != onnx.TensorProto.FLOAT:
        to = onnx.TensorProto.DataType.Name(attrs.get("to", 0))
        raise im.err(node, index, f"attribute 'to' = {to} is not supported on a computed tensor; supported: FLOAT")
    im.emit(node, index, "identity", [t], t.shape, pending=True)


@imports("Softmax", "LogSoftmax")
def _softmax(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("axis",))
    axis = int(attrs.get("axis", 1 if im.opset < 13 else -1))
    if axis == 0 or axis == -(len(t.shape) + 1):
        raise im.err(node, index, "attribute 'axis' = 0 runs across the batch; supported: a per-sample axis")
    im.emit(node, index, "softmax", [t], t.shape, pending=True)


# -- importers: quantization (QDQ) ---------------------------------------------------------------------
#: the integer element types of a quantized tensor: ONNX type -> (signed, word)
_QTYPES = {onnx.TensorProto.INT8: (True, 8), onnx.TensorProto.UINT8: (False, 8),
           onnx.TensorProto.INT16: (True, 16), onnx.TensorProto.UINT16: (False, 16),
           onnx.TensorProto.INT32: (True, 32)}
_QDQ_IMPORTERS: dict = {}


def _np_qtype(dtype) -> tuple[bool, int] | None:
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize > 4 or (dtype.kind == "u" and dtype.itemsize > 2):
        return None
    return dtype.kind == "i", 8 * dtype.itemsize


def power_of_two_frac(im, node, index, tensor: str, scale) -> tuple[int, bool]:
    """``frac`` with ``scale == 2**-frac``, and whether it is exact: a scale that is not a power of
    two is an error naming the tensor, the scale and the nearest power of two (with
    ``quantization.snap_scales`` that power of two, noted)."""
    value = float(np.asarray(scale, np.float64).reshape(-1)[0])
    if not np.isfinite(value) or value <= 0:
        raise im.err(node, index, f"tensor {quoted(tensor)}: scale {value!r}; expected a positive power of two")
    mantissa, exp = np.frexp(value)
    if mantissa == 0.5:
        return int(1 - exp), True
    frac = -int(np.round(np.log2(value)))
    nearest = f"2**{-frac} = {2.0 ** -frac:g}"
    if not im.snap_scales:
        raise im.err(node, index, f"tensor {quoted(tensor)} has scale {value:.9g}, not a power of two; fpgagen's "
                                  f"formats scale by powers of two: the nearest is {nearest} (re-export with "
                                  f"power-of-two scales, or set quantization.snap_scales: true to round it)")
    im.notes.append(f"snapped the scale {value:.9g} of {quoted(tensor)} ({node.op_type} "
                    f"{quoted(node.name or f'{node.op_type}_{index}')}) to the power of two {nearest}")
    return frac, False


def quant_point(im, node, index, tensor: str, scale, zp, qtype: tuple[bool, int], what: str,
                rounding: str = "nearest-even", narrow: bool = False):
    """The :class:`QuantPoint` of a per-tensor scale and zero point (0) of type ``qtype``."""
    scale = np.asarray(scale)
    if scale.size != 1:
        raise im.err(node, index, f"{what} {quoted(tensor)} has {scale.size} scales (axis "
                                  f"{_attrs(node).get('axis', 1)}); supported: one scale per tensor")
    if zp is not None and np.any(np.asarray(zp) != 0):
        raise im.err(node, index, f"{what} {quoted(tensor)} has zero point {np.asarray(zp).reshape(-1)[0]}; "
                                  f"fpgagen's formats are symmetric: expected zero point 0")
    frac, exact = power_of_two_frac(im, node, index, tensor, scale)
    label = node.name or f"{node.op_type}_{index}"
    return QuantPoint(Format(qtype[0], qtype[1], frac), rounding, f"{node.op_type} {quoted(label)}", exact, narrow)


def _qtype(im, node, index, zp, attrs, what: str) -> tuple[bool, int]:
    if zp is not None:
        qtype = _np_qtype(np.asarray(zp).dtype)
        given = str(np.asarray(zp).dtype)
    else:
        to = int(attrs.get("output_dtype", 0)) or onnx.TensorProto.UINT8
        qtype, given = _QTYPES.get(to), onnx.TensorProto.DataType.Name(to)
    if qtype is None:
        raise im.err(node, index, f"{what} has element type {given}; supported: int8, uint8, int16, uint16, int32")
    return qtype


def weight_out_axis(node) -> int:
    """The axis of a Conv / Gemm / MatMul weight (ONNX layout) that holds the output channels."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if int(_attrs(node).get("transB", 0)) else 1
    return 1  # MatMul: x @ W, W [K, N]


def weight_quant(im, node, index, tensor: str, scale, zp, qtype=None, **point):
    """The format of a constant (weight or bias) from its DequantizeLinear (``qtype`` from its
    integers) or QONNX Quant (``qtype`` given), and its scale broadcastable to the constant. Scales
    per slice of one axis (DequantizeLinear ``axis``; a QONNX scale with one axis of size > 1) give
    a format per slice (:attr:`QuantPoint.channels`); the importer of the conv/dense layer checks
    that the axis is its output channels'."""
    scale = np.asarray(scale)
    const = np.asarray(im.consts[tensor])
    if qtype is None:
        qtype = _np_qtype(const.dtype)
    if qtype is None:
        raise im.err(node, index, f"constant {quoted(tensor)} has element type {const.dtype}; "
                                  f"supported: int8, uint8, int16, uint16, int32")
    if scale.size == 1:
        return quant_point(im, node, index, tensor, scale, zp, qtype, "constant", **point), float(scale.reshape(-1)[0])
    if node.op_type == "DequantizeLinear":
        axis = int(_attrs(node).get("axis", 1))
        axis += const.ndim if axis < 0 else 0
        ok = scale.ndim == 1 and 0 <= axis < const.ndim and const.shape[axis] == scale.size
        given = f"{scale.size} scales on axis {_attrs(node).get('axis', 1)}"
    else:  # QONNX: the scale broadcasts against the constant
        big = [a for a, n in enumerate(scale.shape) if n > 1]
        axis = big[0] + const.ndim - scale.ndim if len(big) == 1 else -1
        ok = len(big) == 1 and scale.ndim <= const.ndim and 0 <= axis and const.shape[axis] == scale.size
        given = f"scale of shape {list(scale.shape)}"
    if not ok:
        raise im.err(node, index, f"constant {quoted(tensor)} of shape {list(const.shape)} has {given}; supported: "
                                  f"one scale per tensor, or one per slice of one axis")
    zps = np.zeros(scale.size) if zp is None else np.broadcast_to(np.asarray(zp).reshape(-1), (scale.size,))
    fmts = tuple(quant_point(im, node, index, f"{tensor}[{c}]", s, z, qtype, "constant", **point).fmt
                 for c, (s, z) in enumerate(zip(scale.reshape(-1), zps)))
    first = quant_point(im, node, index, f"{tensor}[0]", scale.reshape(-1)[0], None, qtype, "constant", **point)
    finest = max(fmts, key=lambda f: f.frac)
    shape = [1] * const.ndim
    shape[axis] = scale.size
    return (QuantPoint(finest, first.rounding, first.origin, first.exact, first.narrow, fmts, axis),
            scale.astype(np.float64).reshape(shape))


def _qdq(*ops):
    def wrap(fn):
        for op in ops:
            _QDQ_IMPORTERS[op] = fn
        return fn
    return wrap


@_qdq("QuantizeLinear")
def _quantize_linear(im, node, index, computed: bool, attrs) -> None:
    im.check_attrs(node, index, attrs, ("axis", "saturate", "output_dtype", "block_size", "precision"))
    if int(attrs.get("block_size", 0)):
        raise im.err(node, index, f"attribute 'block_size' = {attrs['block_size']}: blocked quantization is not "
                                  f"supported; supported: one scale per tensor")
    scale = im.need_const(node, index, 1, "y_scale")
    zp = im.opt_const(node, index, 2, "y_zero_point")
    qtype = _qtype(im, node, index, zp, attrs, f"the output {quoted(node.output[0])}")
    x = node.input[0]
    if not computed:  # a constant quantized at import: the integers, as onnxruntime rounds them
        point = quant_point(im, node, index, x, scale, zp, qtype, "constant")
        lo, hi = point.fmt.min_int, point.fmt.max_int
        q = np.clip(np.rint(np.asarray(im.consts[x], np.float64) / float(np.ravel(scale)[0])), lo, hi)
        im.consts[node.output[0]] = q.astype(np.int32 if qtype[1] > 16 else np.int16 if qtype[1] > 8 else
                                             (np.int8 if qtype[0] else np.uint8))
        return
    t = im.tensors[x]
    point = quant_point(im, node, index, x, scale, zp, qtype, "tensor")
    im.qouts[node.output[0]] = (t, point, np.asarray(scale), None if zp is None else np.asarray(zp))


@_qdq("DequantizeLinear")
def _dequantize_linear(im, node, index, computed: bool, attrs) -> None:
    im.check_attrs(node, index, attrs, ("axis", "block_size", "output_dtype"))
    if int(attrs.get("block_size", 0)):
        raise im.err(node, index, f"attribute 'block_size' = {attrs['block_size']}: blocked quantization is not "
                                  f"supported; supported: one scale per tensor")
    if int(attrs.get("output_dtype", 0)) not in (0, onnx.TensorProto.FLOAT):
        to = onnx.TensorProto.DataType.Name(int(attrs["output_dtype"]))
        raise im.err(node, index, f"attribute 'output_dtype' = {to} is not supported; supported: FLOAT")
    scale = im.need_const(node, index, 1, "x_scale")
    zp = im.opt_const(node, index, 2, "x_zero_point")
    x = node.input[0]
    if not computed:  # a weight or bias: its float values, exactly, and its format
        point, scale_b = weight_quant(im, node, index, x, scale, zp)
        value = np.asarray(im.consts[x], np.float64) * scale_b
        if point.exact and not np.array_equal(value.astype(np.float32).astype(np.float64), value):
            raise im.err(node, index, f"constant {quoted(x)}: its integers do not fit float32 exactly (|q| >= 2**24); "
                                      f"supported: integers below 2**24")
        im.consts[node.output[0]] = value.astype(np.float32)
        im.const_quant[node.output[0]] = point
        return
    if x not in im.qouts:
        raise im.err(node, index, f"input {quoted(x)} is computed but not by a QuantizeLinear; supported: a "
                                  f"DequantizeLinear of a QuantizeLinear (a Q/DQ pair) or of a constant")
    t, point, q_scale, q_zp = im.qouts[x]
    if not np.array_equal(np.ravel(scale), np.ravel(q_scale)) or (
            zp is not None and q_zp is not None and not np.array_equal(np.ravel(zp), np.ravel(q_zp))):
        raise im.err(node, index, f"scale {np.ravel(scale).tolist()} / zero point differ from the QuantizeLinear's "
                                  f"{np.ravel(q_scale).tolist()}; supported: a Q/DQ pair of one scale")
    quantize_tensor(im, node, index, t, point)


# -- importers: QONNX Quant / BipolarQuant (FINN, Brevitas) ----------------------------------------------
#: the custom-op domains QONNX's Quant and BipolarQuant are exported in
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn", "onnx.brevitas")
#: QONNX rounding_mode -> the IR's rounding (qonnx.custom_op.general.intquant.resolve_rounding_mode)
QONNX_ROUNDING = {"ROUND": "nearest-even", "HALF_EVEN": "nearest-even", "HALF_UP": "nearest-away"}
_QONNX_IMPORTERS: dict = {}


def _qonnx_bits(im, node, index, computed: bool) -> int:
    bw = np.asarray(im.need_const(node, index, 3, "bitwidth"), np.float64).reshape(-1)
    bits = float(bw[0]) if bw.size == 1 else float("nan")
    most = 16 if computed else 32
    if not (bits == int(bits) and 2 <= bits <= most):
        raise im.err(node, index, f"bitwidth {bw.tolist()}: supported: one integer bit width of 2 to {most}"
                                  f"{' for a tensor' if computed else ' for a constant'}")
    return int(bits)


def _qonnx_quant(im, node, index, computed: bool, attrs) -> None:
    """``Quant(x, scale, zeropt, bitwidth)``: ``(clip(round(x / scale + zeropt)) - zeropt) * scale``
    with a power-of-two scale and zero point 0 is the fixed-point format ``s<bits>.f`` / ``u<bits>.f``."""
    im.check_attrs(node, index, attrs, ("signed", "narrow", "rounding_mode"))
    scale = im.need_const(node, index, 1, "scale")
    zp = im.need_const(node, index, 2, "zeropt")
    bits = _qonnx_bits(im, node, index, computed)
    signed, narrow = bool(int(attrs.get("signed", 1))), bool(int(attrs.get("narrow", 0)))
    mode = str(attrs.get("rounding_mode", "ROUND")).upper()
    if mode not in QONNX_ROUNDING:
        raise im.err(node, index, f"rounding_mode {mode!r} is not supported; supported: "
                                  f"{', '.join(QONNX_ROUNDING)} (round half to even, half away from zero)")
    if bits < 2 or (signed and narrow and bits < 2):
        raise im.err(node, index, f"bitwidth {bits}: supported 2 or more")
    point = dict(rounding=QONNX_ROUNDING[mode], narrow=narrow)
    x = node.input[0]
    if not computed:  # a weight or bias quantized as qonnx does it (clip, round; exact for a power of two)
        p, scale_b = weight_quant(im, node, index, x, scale, zp, (signed, bits), **point)
        lo, hi = p.int_range()
        ints = np.clip(round_real(np.asarray(im.consts[x], np.float64) / scale_b, p.rounding), lo, hi)
        value = ints * scale_b
        im.consts[node.output[0]] = value.astype(np.float32)
        im.const_quant[node.output[0]] = p
        return
    t = im.tensors[x]
    p = quant_point(im, node, index, x, scale, zp, (signed, bits), "tensor", **point)
    if narrow and t.ir == im.input_name:
        raise im.err(node, index, "a narrow-range quantizer of the model input is not supported; supported: "
                                  "narrow=0 on the input")
    quantize_tensor(im, node, index, t, p)


def _qonnx_bipolar(im, node, index, computed: bool, attrs) -> None:
    """``BipolarQuant(x, scale)``: ``+scale`` for ``x >= 0``, else ``-scale``. Of a constant (binary
    weights) it is the format ``s2.f`` holding -1 and +1; of a tensor it is a sign function, not a
    rounding, which no requantizer computes."""
    im.check_attrs(node, index, attrs, ())
    if computed:
        raise im.err(node, index, f"BipolarQuant of the computed tensor {quoted(node.input[0])} is a sign "
                                  f"activation; supported: BipolarQuant of a constant (binary weights)")
    x, scale = node.input[0], im.need_const(node, index, 1, "scale")
    p, scale_b = weight_quant(im, node, index, x, scale, None, (True, 2))
    value = np.where(np.asarray(im.consts[x], np.float64) >= 0, 1.0, -1.0) * scale_b
    im.consts[node.output[0]] = value.astype(np.float32)
    im.const_quant[node.output[0]] = p


_QONNX_IMPORTERS.update(Quant=_qonnx_quant, BipolarQuant=_qonnx_bipolar)


def quantize_tensor(im, node, index, t: _Tensor, point) -> None:
    """``node``'s output is ``t`` quantized as ``point`` says: the same IR tensor with the model's
    format, behind a ReLU where an unsigned format clamps a computed signed tensor at 0 (a Relu
    fused into a uint8 quantizer, as onnxruntime writes it; the integer requantizer clamps the same)."""
    if not point.fmt.signed and t.ir != im.input_name:
        out = im.emit(node, index, "act", [t], t.shape, activation=ReLU(), pending=True)
        im.quant[out.ir] = point
        return
    old = im.quant.get(t.ir)
    if old is not None and old.fmt != point.fmt:
        raise im.err(node, index, f"tensor {quoted(t.ir)} is quantized twice, to {old.fmt} by {old.origin} and to "
                                  f"{point.fmt} here; supported: one format per tensor")
    im.quant[t.ir] = point
    im.set_tensor(node.output[0], _Tensor(t.ir, t.shape, t.irs, t.batch_axis))


# -- importers: layout relabellings --------------------------------------------------------------------
@imports("Flatten")
def _flatten(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("axis",))
    rank = len(t.shape) + 1
    axis = int(attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if axis < 1 or int(np.prod(t.shape[: axis - 1])) != 1:
        raise im.err(node, index, f"attribute 'axis' = {attrs.get('axis', 1)} merges the batch axis with "
                                  f"{_fmt_shape(t.shape[: max(axis - 1, 0)]) if axis >= 1 else 'nothing'}; "
                                  f"supported: axis 1 (or an axis after only size-1 axes)")
    im.alias(node, index, t, (int(np.prod(t.shape)),))


def _axes(im, node, index, attrs, rank: int, attr_until: int) -> list[int] | None:
    if im.opset < attr_until:
        im.check_attrs(node, index, attrs, ("axes",))
        axes = attrs.get("axes")
    else:
        im.check_attrs(node, index, attrs, ())
        c = im.opt_const(node, index, 1, "axes")
        axes = None if c is None else [int(a) for a in np.ravel(c)]
    if axes is None:
        return None
    out = sorted(a + rank if a < 0 else a for a in axes)
    if 0 in out:
        raise im.err(node, index, f"axes {list(axes)} include the batch axis 0; supported: per-sample axes")
    if any(a < 0 or a >= rank for a in out) or len(set(out)) != len(out):
        raise im.err(node, index, f"axes {list(axes)} are not valid for rank {rank}")
    return out


@imports("Squeeze")
def _squeeze(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    full = (1, *t.shape)
    axes = _axes(im, node, index, attrs, len(full), 13)
    if axes is None:
        if im.batch == 1:
            raise im.err(node, index, "no 'axes' with a batch fixed to 1 would remove the batch axis too; "
                                      "supported: explicit per-sample axes")
        axes = [i for i, d in enumerate(full) if d == 1 and i > 0]
    for a in axes:
        if full[a] != 1:
            raise im.err(node, index, f"axis {a} has size {full[a]}; Squeeze removes only size-1 axes")
    im.alias(node, index, t, tuple(d for i, d in enumerate(t.shape, 1) if i not in axes))


@imports("Unsqueeze")
def _unsqueeze(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    if im.opset < 13 and "axes" not in attrs:
        raise im.err(node, index, "attribute 'axes' is missing")
    rank = len(t.shape) + 1
    n_axes = len(attrs.get("axes", ())) if im.opset < 13 else np.size(im.need_const(node, index, 1, "axes"))
    axes = _axes(im, node, index, attrs, rank + n_axes, 13)
    shape = list(t.shape)
    for a in axes:
        shape.insert(a - 1, 1)
    im.alias(node, index, t, tuple(shape))


@imports("Reshape")
def _reshape(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("allowzero",))
    target = [int(d) for d in np.ravel(im.need_const(node, index, 1, "the target shape"))]
    full = im.full_shape(t)
    if int(attrs.get("allowzero", 0)) and 0 in target:
        raise im.err(node, index, f"attribute 'allowzero' = 1 with a 0 in the target shape {target} is not supported")
    out = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
    total = int(np.prod(full))
    if out.count(-1) > 1 or not out:
        raise im.err(node, index, f"target shape {target} is not valid")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or total % known:
            raise im.err(node, index, f"target shape {target} does not fit the input [batch, "
                                      f"{', '.join(map(str, t.shape))}]")
        out[out.index(-1)] = total // known
    per_sample = int(np.prod(t.shape))
    if out[0] != full[0] or int(np.prod(out[1:])) != per_sample:
        batch = f"the exported batch {im.batch}" if im.batch else "a free batch size"
        raise im.err(node, index, f"target shape {target} does not keep the batch axis first (the input is "
                                  f"[batch, {', '.join(map(str, t.shape))}] with {batch}); supported: reshapes "
                                  f"that only relabel each sample, e.g. [batch, C*H*W], [0, -1] or [-1, C*H*W] "
                                  f"([1, C*H*W] with the model input's batch fixed to 1)")
    im.alias(node, index, t, tuple(out[1:]))


@imports("Transpose")
def _transpose(im: _Importer, node, index, t: _Tensor, attrs) -> None:
    im.check_attrs(node, index, attrs, ("perm",))
    rank = len(t.shape) + 1
    perm = [int(p) for p in attrs.get("perm", range(rank - 1, -1, -1))]
    if sorted(perm) != list(range(rank)):
        raise im.err(node, index, f"attribute 'perm' = {perm} is not a permutation of {rank} axes")
    if rank == 2 and perm == [1, 0]:  # [B, K] <-> [K, B]: only a Gemm with transA=1 reads the result
        im.set_tensor(node.output[0], replace(t, batch_axis=1 - t.batch_axis))
        return
    if perm[0] != 0:
        raise im.err(node, index, f"attribute 'perm' = {perm} on [batch, {', '.join(map(str, t.shape))}] moves the "
                                  f"batch axis; supported: permutations that keep the batch axis first")
    moved = [p - 1 for p in perm[1:]]
    # a permutation that moves data (not only size-1 axes): the output's elements in the IR's order
    # (composed with the input's own order); the layers that read it decide whether they can
    before = np.arange(int(np.prod(t.shape))) if t.order is None else t.order
    order = _order_or_none(np.transpose(before.reshape(t.shape), moved).ravel())
    im.alias(node, index, t, tuple(t.shape[a] for a in moved), order, im.label(node, index))


# -- the constant evaluator ------------------------------------------------------------------------------
def _np_dtype(onnx_type: int):
    return helper.tensor_dtype_to_np_dtype(onnx_type)


@folds("Constant")
def _c_constant(im, node, args, a):
    for key in ("value_float", "value_floats"):
        if key in a:
            return [np.asarray(a[key], np.float32)]
    for key in ("value_int", "value_ints"):
        if key in a:
            return [np.asarray(a[key], np.int64)]
    if "value" in a:
        return [numpy_helper.to_array(a["value"])]
    raise ModelError(f"{im.where}: Constant node {quoted(node.name)}: attribute {sorted(a)} is not supported; "
                     f"supported: value, value_float(s), value_int(s)")


@folds("Identity", "Dropout")
def _c_identity(im, node, args, a):
    return [args[0], np.ones(np.shape(args[0]), bool)]


@folds("Cast")
def _c_cast(im, node, args, a):
    return [args[0].astype(_np_dtype(a["to"]))]


def _axes_arg(args, a, pos=1):
    if len(args) > pos and args[pos] is not None:
        return [int(x) for x in np.ravel(args[pos])]
    return a.get("axes")


@folds("Reshape")
def _c_reshape(im, node, args, a):
    x, shape = args[0], [int(d) for d in np.ravel(args[1])]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@folds("Transpose")
def _c_transpose(im, node, args, a):
    return [np.transpose(args[0], a.get("perm"))]


@folds("Squeeze")
def _c_squeeze(im, node, args, a):
    axes = _axes_arg(args, a)
    return [np.squeeze(args[0], axis=None if axes is None else tuple(axes))]


@folds("Unsqueeze")
def _c_unsqueeze(im, node, args, a):
    axes = _axes_arg(args, a)
    rank = args[0].ndim + len(axes)
    x = args[0]
    for ax in sorted(ax + rank if ax < 0 else ax for ax in axes):
        x = np.expand_dims(x, ax)
    return [x]


@folds("Flatten")
def _c_flatten(im, node, args, a):
    x = args[0]
    axis = a.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@folds("Concat")
def _c_concat(im, node, args, a):
    return [np.concatenate([np.atleast_1d(x) for x in args], axis=a.get("axis", 0))]


@folds("Gather")
def _c_gather(im, node, args, a):
    return [np.take(args[0], args[1].astype(np.int64), axis=a.get("axis", 0))]


@folds("Shape")
def _c_shape(im, node, args, a):
    shape = np.array(args[0].shape, np.int64)
    return [shape[a.get("start", 0): a.get("end", None)]]


@folds("Size")
def _c_size(im, node, args, a):
    return [np.array(np.size(args[0]), np.int64)]


@folds("Slice")
def _c_slice(im, node, args, a):
    x = args[0]
    if im.opset < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = np.ravel(args[1]), np.ravel(args[2])
        axes = None if len(args) < 4 or args[3] is None else np.ravel(args[3])
        steps = None if len(args) < 5 or args[4] is None else np.ravel(args[4])
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


@folds("ConstantOfShape")
def _c_constant_of_shape(im, node, args, a):
    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return [np.full([int(d) for d in np.ravel(args[0])], value.ravel()[0], value.dtype)]


@folds("Expand")
def _c_expand(im, node, args, a):
    shape = [int(d) for d in np.ravel(args[1])]
    return [args[0] * np.ones(shape, args[0].dtype)]


@folds("Range")
def _c_range(im, node, args, a):
    return [np.arange(args[0], args[1], args[2]).astype(args[0].dtype)]


def _int_div(x, y):
    if np.issubdtype(np.result_type(x, y), np.integer):
        q = np.abs(x) // np.abs(y)
        return (q * np.sign(x) * np.sign(y)).astype(np.result_type(x, y))
    return x / y


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _int_div, "Pow": np.power,
           "MatMul": np.matmul, "Min": np.minimum, "Max": np.maximum, "Equal": np.equal}
_UNARY = {"Neg": np.negative, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Abs": np.abs, "Exp": np.exp,
          "Log": np.log, "Floor": np.floor, "Ceil": np.ceil, "Relu": lambda x: np.maximum(x, 0),
          "Not": np.logical_not}


@folds(*_BINARY)
def _c_binary(im, node, args, a):
    x, y = args[0], args[1]
    out = _BINARY[node.op_type](x, y)
    if node.op_type in ("Min", "Max"):
        for z in args[2:]:
            out = _BINARY[node.op_type](out, z)
    return [np.asarray(out).astype(np.result_type(x, y), copy=False) if node.op_type != "Equal" else out]


@folds(*_UNARY)
def _c_unary(im, node, args, a):
    return [np.asarray(_UNARY[node.op_type](args[0])).astype(args[0].dtype, copy=False)]


@folds("Where")
def _c_where(im, node, args, a):
    return [np.where(args[0], args[1], args[2])]


# the import rules that live with their op (fpgagen/ops/<op>.py)
for _onnx_op, _op in onnx_rules().items():
    imports(_onnx_op)(_op.import_onnx)

SUPPORTED_OPS = tuple(sorted((*_IMPORTERS, *_QDQ_IMPORTERS)))
CONSTANT_OPS = tuple(sorted(_FOLDERS))


# -- entry points ----------------------------------------------------------------------------------
def from_model(model: onnx.ModelProto, source: str = "", name: str | None = None,
               snap_scales: bool = False) -> Graph:
    """The float IR of an in-memory ONNX model (``source`` names its file for provenance/errors);
    ``snap_scales``: round an imported scale that is not a power of two to one (noted)."""
    name = name or model.graph.name or "model"
    return _Importer(model, source, name, snap_scales).run()


def load_onnx(path, snap_scales: bool = False) -> Graph:
    """Read the ONNX file ``path`` into the float IR (:class:`fpgagen.ir.graph.Graph`)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ModelError(f"ONNX model file {str(path)!r} {what}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"ONNX model file {str(path)!r} cannot be read as ONNX: {type(exc).__name__}: {exc}") from exc
    if not model.graph.node and not model.graph.input:
        raise ModelError(f"ONNX model file {str(path)!r} contains no graph")
    return from_model(model, source=str(path), name=path.stem, snap_scales=snap_scales)
