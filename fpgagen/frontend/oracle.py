"""Independent executors for a model that carries its own quantization: onnxruntime (QDQ) and
qonnx's executor (QONNX ``Quant``).

With power-of-two scales and zero points 0, onnxruntime's execution of a QDQ model (its fused
integer kernels QLinearConv / QGemm, or its float path) and qonnx's execution of a QONNX model are
fixed-point networks: the golden model's dequantized output must equal theirs exactly (``==``) on
every sample. :func:`compare_onnxruntime` / :func:`compare_qonnx` check that; ``fpgagen verify``
records it as ``onnxruntime`` / ``qonnx`` in ``verify.json`` ("bit-exact vs onnxruntime").
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from fpgagen.errors import ModelError
from fpgagen.fixed import dequantize
from fpgagen.golden.model import quantize_input, run_int
from fpgagen.ir.graph import Graph
from fpgagen.ir.qgraph import QGraph
from fpgagen.names import quoted


def onnxruntime_outputs(model_path, tensor: str, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """onnxruntime's values of the ONNX tensor ``tensor`` (made a graph output if it is not one)
    on the float input ``x`` ``[N, *ONNX input shape]``, run in batches (one by one for a model
    whose batch is fixed)."""
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    g = model.graph
    if tensor not in [o.name for o in g.output]:
        g.output.append(helper.make_empty_tensor_value_info(tensor))
    inputs = [i for i in g.input if i.name not in {init.name for init in g.initializer}]
    dim0 = inputs[0].type.tensor_type.shape.dim[0]
    step = int(dim0.dim_value) if dim0.HasField("dim_value") and dim0.dim_value else batch
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.asarray(x, np.float32)
    outs = [sess.run([tensor], {inputs[0].name: x[i:i + step]})[0] for i in range(0, len(x), step)]
    return np.concatenate(outs)


def output_tensor(graph: Graph, q: QGraph) -> str:
    """The ONNX tensor whose values the integer model outputs: the last of the model's tensors that
    the IR output stands for (after a Q/DQ pair: the DequantizeLinear's output)."""
    names = [name for name, ir in graph.onnx_tensors.items() if ir == q.output]
    return names[-1] if names else q.output


def _compare(what: str, want: np.ndarray, q: QGraph, x: np.ndarray, tensor: str) -> dict:
    got = dequantize(run_int(q, quantize_input(q, x)), q.output_fmt, name=q.output)
    if want.shape[0] != got.shape[0] or want[0].size != got[0].size:
        raise ModelError(f"compare with {what}: its output {quoted(tensor)} has shape {list(want.shape)}, "
                         f"the golden model's {list(got.shape)}")
    differ = [i for i in range(len(x)) if not np.array_equal(want[i].reshape(-1).astype(np.float64),
                                                              got[i].reshape(-1))]
    return {"samples": int(len(x)), "mismatches": len(differ),
            "first_mismatch_sample": differ[0] if differ else None, "executor": what, "tensor": tensor}


def compare_onnxruntime(model_path, graph: Graph, q: QGraph, x: np.ndarray) -> dict:
    """The golden model's dequantized output against onnxruntime's on every sample of the float
    (preprocessed) input ``x``: ``{"samples", "mismatches", "first_mismatch_sample", "executor",
    "tensor"}``."""
    import onnxruntime as ort

    if not len(x):
        raise ModelError("compare with onnxruntime: no samples")
    tensor = output_tensor(graph, q)
    return _compare(f"onnxruntime {ort.__version__}", onnxruntime_outputs(model_path, tensor, x), q, x, tensor)


def qonnx_outputs(model_path, tensor: str, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """qonnx's executor (``qonnx.core.onnx_exec.execute_onnx``: its own Quant, onnxruntime node by
    node for the rest) on ``x``: the values of ``tensor``. qonnx wants fixed shapes: the input's
    batch axis is set to each chunk's size and the shapes inferred."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    base = ModelWrapper(str(model_path))
    g = base.graph
    name = [i.name for i in g.input if i.name not in {init.name for init in g.initializer}][0]
    dim0 = [i for i in g.input if i.name == name][0].type.tensor_type.shape.dim[0]
    step = int(dim0.dim_value) if dim0.HasField("dim_value") and dim0.dim_value else batch
    x = np.asarray(x, np.float32)
    models, outs = {}, []
    for i in range(0, len(x), step):
        chunk = x[i:i + step]
        if len(chunk) not in models:
            m = ModelWrapper(onnx.ModelProto.FromString(base.model.SerializeToString()))
            m.set_tensor_shape(name, list(chunk.shape))
            for vi in list(m.graph.value_info):
                m.graph.value_info.remove(vi)
            for out in m.graph.output:
                out.type.tensor_type.ClearField("shape")
            models[len(chunk)] = m.transform(InferShapes())
        ctx = execute_onnx(models[len(chunk)], {name: chunk}, return_full_exec_context=True)
        outs.append(np.asarray(ctx[tensor]))
    return np.concatenate(outs)


def compare_qonnx(model_path, graph: Graph, q: QGraph, x: np.ndarray) -> dict:
    """The golden model's dequantized output against qonnx's executor, as :func:`compare_onnxruntime`."""
    from importlib.metadata import version

    if not len(x):
        raise ModelError("compare with qonnx: no samples")
    tensor = output_tensor(graph, q)
    return _compare(f"qonnx {version('qonnx')}", qonnx_outputs(model_path, tensor, x), q, x, tensor)


def is_qonnx(graph: Graph) -> bool:
    """The model's quantization comes from QONNX Quant / BipolarQuant nodes (else: QDQ)."""
    return any(p.origin.startswith(("Quant ", "BipolarQuant ")) for p in graph.quant.values())
