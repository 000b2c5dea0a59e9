"""Run ONNX's own backend node tests (``onnx.backend.test.case.node``) of every op fpgagen supports
through its importer and float executor, and print a table per op.

    python tools/onnx_conformance.py            # the table
    python tools/onnx_conformance.py --failures # also each non-passing case with its message

Each case is a one-node (sometimes a few-node) model with inputs and the expected outputs that onnx
generates with its reference implementation; every input after the first (a weight, pads, scales,
a second operand) is made an initializer holding the test's value, since fpgagen takes one model
input and constant parameters. A case is ``pass`` (fpgagen's float run equals the
expected output within float tolerance), ``unsupported`` (a clear ModelError naming the node: e.g.
two model inputs, an integer input, an attribute fpgagen does not take), ``crash`` (any other
exception: a bug) or ``mismatch`` (a bug). tests/test_onnx_conformance.py runs them in CI.
"""

from __future__ import annotations

import argparse
import collections
import warnings
from dataclasses import dataclass

import numpy as np

RTOL, ATOL = 1e-3, 1e-7  # onnx's backend test runner's defaults (expected values are often rounded)


@dataclass
class Outcome:
    case: str
    op: str
    kind: str  # pass / unsupported / crash / mismatch
    message: str = ""


def cases():
    """The node test cases whose every node is an op fpgagen's importer knows (or a Constant)."""
    from onnx.backend.test.case.node import collect_testcases

    from fpgagen.frontend.onnx import SUPPORTED_OPS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = collect_testcases()
    known = set(SUPPORTED_OPS)
    out = []
    for c in found:
        if c.model is None or not c.data_sets:
            continue
        ops = [n.op_type for n in c.model.graph.node]
        if any(op in known for op in ops) and all(op in known or op == "Constant" for op in ops):
            out.append(c)
    return sorted(out, key=lambda c: c.name)


def main_op(case) -> str:
    from fpgagen.frontend.onnx import SUPPORTED_OPS

    return next(n.op_type for n in case.model.graph.node if n.op_type in SUPPORTED_OPS)


def dropped_softmax(model, graph, y: np.ndarray) -> np.ndarray:
    """fpgagen drops a trailing Softmax/LogSoftmax (for argmax, and says so in ``graph.notes``):
    apply it to compare with the expected probabilities."""
    import onnx

    node = model.graph.node[-1]
    if node.op_type not in ("Softmax", "LogSoftmax") or not any(node.op_type in n for n in graph.notes):
        return y
    opset = next(i.version for i in model.opset_import if i.domain in ("", "ai.onnx"))
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    axis = int(attrs.get("axis", -1 if opset >= 13 else 1)) % y.ndim
    shape = y.shape
    if opset < 13:  # the input is coerced to 2-D at `axis`
        y = y.reshape(int(np.prod(shape[:axis])), -1)
        axis = 1
    z = y.astype(np.float64) - y.max(axis=axis, keepdims=True)
    e = np.exp(z)
    out = z - np.log(e.sum(axis=axis, keepdims=True)) if node.op_type == "LogSoftmax" else e / e.sum(axis=axis,
                                                                                                   keepdims=True)
    return out.reshape(shape)


def single_input(case):
    """The case's model with every graph input after the first made an initializer holding the
    test's value (weights, pads, scales ... are inputs in these tests; fpgagen needs constants),
    and the first input's value."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, _ = case.data_sets[0]
    names = [vi.name for vi in model.graph.input if vi.name not in {i.name for i in model.graph.initializer}]
    keep = model.graph.input[0]
    for name, value in list(zip(names, inputs))[1:]:
        if isinstance(value, onnx.TensorProto):  # exotic element types come as TensorProtos already
            init = onnx.TensorProto()
            init.CopyFrom(value)
            init.name = name
        else:
            init = numpy_helper.from_array(np.asarray(value), name)
        model.graph.initializer.append(init)
    del model.graph.input[1:]
    model.graph.input[0].CopyFrom(keep)
    first = inputs[0]
    return model, numpy_helper.to_array(first) if isinstance(first, onnx.TensorProto) else np.asarray(first)


def run_case(case) -> Outcome:
    """One case through ``from_model`` and ``run_float``, classified."""
    from fpgagen.errors import ModelError
    from fpgagen.frontend.onnx import from_model
    from fpgagen.golden.float_exec import run_float

    op = main_op(case)
    _, outputs = case.data_sets[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, x = single_input(case)
            graph = from_model(model, name=case.name)
            if len(outputs) != 1:
                return Outcome(case.name, op, "crash", f"imported a model with {len(outputs)} outputs without an error")
            y = np.asarray(outputs[0])
            if x.dtype.kind != "f":
                return Outcome(case.name, op, "crash", f"imported a model with a {x.dtype} input without an error")
            got = run_float(graph, x.astype(np.float32))
            got = dropped_softmax(model, graph, np.asarray(got).reshape(y.shape) if np.size(got) == y.size else got)
    except ModelError as exc:
        return Outcome(case.name, op, "unsupported", str(exc))
    except Exception as exc:  # noqa: BLE001 - any other exception is a finding
        return Outcome(case.name, op, "crash", f"{type(exc).__name__}: {exc}")
    if y.dtype.kind not in "f":
        return Outcome(case.name, op, "mismatch", f"expected output of dtype {y.dtype}")
    got = np.asarray(got).reshape(y.shape) if np.size(got) == y.size else np.asarray(got)
    if got.shape != y.shape or not np.allclose(got, y, rtol=RTOL, atol=ATOL):
        return Outcome(case.name, op, "mismatch", f"shape {got.shape} vs {y.shape}, max |diff| "
                                                  f"{np.abs(got - y).max() if got.shape == y.shape else 'n/a'}")
    return Outcome(case.name, op, "pass")


def table(outcomes: list[Outcome]) -> str:
    kinds = ("pass", "unsupported", "crash", "mismatch")
    by_op = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_op[o.op][o.kind] += 1
    lines = [f"{'op':20s} " + " ".join(f"{k:>11s}" for k in kinds)]
    total = collections.Counter()
    for op in sorted(by_op):
        lines.append(f"{op:20s} " + " ".join(f"{by_op[op][k]:11d}" for k in kinds))
        total.update(by_op[op])
    lines.append(f"{'total':20s} " + " ".join(f"{total[k]:11d}" for k in kinds))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--failures", action="store_true", help="list every case that does not pass, with its message")
    args = ap.parse_args(argv)
    outcomes = [run_case(c) for c in cases()]
    print(table(outcomes))
    if args.failures:
        for o in outcomes:
            if o.kind != "pass":
                print(f"{o.kind:11s} {o.case}: {o.message[:300]}")
    return 1 if any(o.kind in ("crash", "mismatch") for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
