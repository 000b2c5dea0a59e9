"""The graph rewrites on hand-built graphs (no ONNX).

Constants are small integers and powers of two, so the folded float model equals the unfolded one
exactly: the comparisons are ``np.array_equal``, no tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgagen.errors import ModelError
from fpgagen.golden.float_exec import run_float, run_node
from fpgagen.ir.graph import Graph, Node
from fpgagen.passes import run_passes
from fpgagen.ops.activation import Clip, LeakyRelu, ReLU, coerce, compose
from fpgagen.passes.pending import PendingNode
from fpgagen.ops.conv import ConvParams
from fpgagen.ops.pool import AvgPoolParams, Window

RNG = np.random.default_rng(7)


def ints(*shape, lo=-3, hi=4) -> np.ndarray:
    return RNG.integers(lo, hi, size=shape).astype(np.float32)


def pow2(*shape) -> np.ndarray:
    return (RNG.choice([-2.0, -0.5, 0.25, 1.0, 2.0, 4.0], size=shape)).astype(np.float32)


def conv(name, x, y, co, ci, k=3, pads=(0, 0, 0, 0), groups=1, act=None, bias=True) -> Node:
    return Node(name, "conv", [x], y, ConvParams((k, k), (1, 1), pads, groups),
                weight=ints(co, ci // groups, k, k), bias=ints(co) if bias else None, activation=act,
                onnx_nodes=[name], onnx_op="Conv")


def dense(name, x, y, out, inp, act=None) -> Node:
    return Node(name, "dense", [x], y, weight=ints(out, inp), bias=ints(out), activation=act,
                onnx_nodes=[name], onnx_op="Gemm")


def affine(name, x, y, scale, shift) -> PendingNode:
    return PendingNode(name, "affine", [x], y, weight=np.asarray(scale, np.float32),
                       bias=np.asarray(shift, np.float32), onnx_nodes=[name], onnx_op="BatchNormalization")


def act(name, x, y, a="relu") -> PendingNode:
    return PendingNode(name, "act", [x], y, activation=a, onnx_nodes=[name], onnx_op="Relu")


def pending(name, op, x, y, onnx_op) -> PendingNode:
    return PendingNode(name, op, [x], y, onnx_nodes=[name], onnx_op=onnx_op)


def reference(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph before the passes, node by node (pending nodes included), in float64."""
    values = {graph.input: x.astype(np.float64)}
    for node in graph.nodes:
        v = values[node.inputs[0]]
        if node.op == "affine":
            y = v * node.weight.astype(np.float64) + node.bias.astype(np.float64)
        elif node.op == "act":
            y = node.activation.apply(v)
        elif node.op in ("identity", "softmax"):
            y = v
        else:
            y = run_node(node, [values[t] for t in node.inputs], np.float64)
        values[node.output] = y
    return values[graph.output]


def graph(nodes, in_shape, shapes) -> Graph:
    return Graph("g", "x", nodes[-1].output, nodes, {"x": in_shape, **shapes})


def check_exact(g: Graph, n=3):
    x = ints(n, *g.shapes[g.input], lo=-4, hi=5)
    want = reference(g, x)
    got = run_float(run_passes(g), x, dtype=np.float64)
    assert all(type(node) is Node for node in g.nodes)
    assert np.array_equal(got, want)
    return g


def test_compose_activations():
    assert compose(None, "relu") == ReLU() and compose("relu", None) == ReLU()
    assert compose("relu", "relu") == ReLU()
    assert compose("relu", ("clip", 0.0, 6.0)) == Clip(0.0, 6.0)
    assert compose(("clip", 0.0, 6.0), "relu") == Clip(0.0, 6.0)
    assert compose(("clip", 0.0, 6.0), ("clip", 0.0, 2.0)) == Clip(0.0, 2.0)
    # LeakyRelu: relu(leaky(x)) = leaky(relu(x)) = relu(x) for alpha >= 0; two slopes multiply
    assert compose(LeakyRelu(0.1), ReLU()) == ReLU() and compose(ReLU(), LeakyRelu(0.1)) == ReLU()
    assert compose(LeakyRelu(0.5), LeakyRelu(0.25)) == LeakyRelu(0.125)
    x = np.linspace(-4, 4, 17)
    for first, second in [(LeakyRelu(0.1), ReLU()), (ReLU(), LeakyRelu(0.3)), (LeakyRelu(0.5), LeakyRelu(0.25)),
                          (Clip(0.0, 2.0), LeakyRelu(0.2)), (LeakyRelu(0.2), Clip(0.0, 3.0))]:
        assert np.array_equal(compose(first, second).apply(x), second.apply(first.apply(x)))
    with pytest.raises(ModelError, match=r"leakyrelu\(0.1\) after leakyrelu\(-0.5\) cannot be fused"):
        compose(LeakyRelu(-0.5), LeakyRelu(0.1))


def test_fold_backward_into_conv_and_dense():
    g = graph([
        conv("c", "x", "a", 4, 2, pads=(1, 1, 1, 1)),
        affine("bn", "a", "b", pow2(4, 1, 1), ints(4, 1, 1)),
        act("r", "b", "c1"),
        PendingNode("fl", "identity", ["c1"], "i", onnx_op="Identity"),
        Node("f", "flatten", ["i"], "v"),
        dense("d", "v", "y0", 5, 4 * 5 * 5),
        affine("bn2", "y0", "y", pow2(5), ints(5)),
    ], (2, 5, 5), {"a": (4, 5, 5), "b": (4, 5, 5), "c1": (4, 5, 5), "i": (4, 5, 5), "v": (100,),
                   "y0": (5,), "y": (5,)})
    check_exact(g)
    assert [(n.op, n.activation, n.onnx_nodes) for n in g.nodes] == [
        ("conv", ReLU(), ["c", "bn", "r"]), ("flatten", None, []), ("dense", None, ["d", "bn2"])]
    assert g.output == "y" and g.nodes[0].output == "i"  # later names are kept
    assert set(g.shapes) == {"x", "i", "v", "y"}
    assert any("Identity 'fl'" in note for note in g.notes)


def test_fold_forward_through_flatten_into_dense():
    """MNIST's BatchNormalization after a ReLU, before Flatten and Gemm."""
    g = graph([
        conv("c", "x", "a", 3, 2, act="relu"),
        affine("bn", "a", "b", pow2(3, 1, 1), ints(3, 1, 1)),
        Node("f", "flatten", ["b"], "v"),
        dense("d", "v", "y", 4, 3 * 3 * 3),
    ], (2, 5, 5), {"a": (3, 3, 3), "b": (3, 3, 3), "v": (27,), "y": (4,)})
    check_exact(g)
    assert [n.op for n in g.nodes] == ["conv", "flatten", "dense"]
    assert g.nodes[2].onnx_nodes == ["d", "bn"]


def test_fold_forward_full_shape_constant_into_dense():
    # a shift that varies inside a channel cannot go into a conv bias, but a following dense takes it
    g = graph([
        affine("sub", "x", "a", pow2(2, 3, 3), ints(2, 3, 3)),
        Node("f", "flatten", ["a"], "v"),
        dense("d", "v", "y", 4, 18),
    ], (2, 3, 3), {"a": (2, 3, 3), "v": (18,), "y": (4,)})
    check_exact(g)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_fold_forward_into_unpadded_conv(groups):
    g = graph([
        affine("norm", "x", "a", pow2(4, 1, 1), ints(4, 1, 1)),
        conv("c", "a", "y", 4, 4, groups=groups),
    ], (4, 5, 5), {"a": (4, 5, 5), "y": (4, 3, 3)})
    check_exact(g)
    assert g.nodes[0].onnx_nodes == ["c", "norm"] and g.nodes[0].inputs == ["x"]


def test_scale_only_folds_forward_into_padded_conv():
    g = graph([
        affine("mul", "x", "a", pow2(2, 1, 1), np.zeros(())),
        conv("c", "a", "y", 3, 2, pads=(1, 0, 2, 1)),
    ], (2, 4, 4), {"a": (2, 4, 4), "y": (3, 5, 3)})
    check_exact(g)


def test_affines_in_a_row_merge():
    g = graph([
        affine("sub", "x", "a", np.ones(()), ints(2, 1, 1)),
        affine("div", "a", "b", pow2(2, 1, 1), np.zeros(())),
        affine("mul", "b", "c1", np.float32(2.0), np.zeros(())),
        conv("c", "c1", "y", 3, 2),
    ], (2, 4, 4), {"a": (2, 4, 4), "b": (2, 4, 4), "c1": (2, 4, 4), "y": (3, 2, 2)})
    check_exact(g)
    assert g.nodes[0].onnx_nodes == ["c", "sub", "div", "mul"]


def test_activation_moves_up_through_maxpool_and_flatten():
    pool = Window((2, 2), (2, 2), (0, 0, 1, 1))
    g = graph([
        conv("c", "x", "a", 3, 2, pads=(1, 1, 1, 1)),
        Node("p", "maxpool", ["a"], "b", pool),
        act("r", "b", "c1", ("clip", 0.0, 2.0)),
        Node("f", "flatten", ["c1"], "v"),
        act("r2", "v", "w"),
        dense("d", "w", "y", 2, 27),
    ], (2, 5, 5), {"a": (3, 5, 5), "b": (3, 3, 3), "c1": (3, 3, 3), "v": (27,), "w": (27,), "y": (2,)})
    check_exact(g)
    assert [(n.op, n.activation) for n in g.nodes] == [
        ("conv", Clip(0.0, 2.0)), ("maxpool", None), ("flatten", None), ("dense", None)]
    assert g.nodes[0].onnx_nodes == ["c", "r", "r2"]


def test_activation_falls_back_to_the_nearest_max_pool():
    pool = Window((2, 2), (2, 2), (0, 0, 1, 1))
    # the pool reads the model input: no conv/dense before it can take the ReLU
    g = graph([Node("p", "maxpool", ["x"], "b", pool), act("r", "b", "c1"), Node("f", "flatten", ["c1"], "v"),
               dense("d", "v", "y", 2, 27)], (3, 5, 5), {"b": (3, 3, 3), "c1": (3, 3, 3), "v": (27,), "y": (2,)})
    check_exact(g)
    assert [(n.op, n.activation) for n in g.nodes] == [("maxpool", ReLU()), ("flatten", None), ("dense", None)]
    assert g.nodes[0].onnx_nodes == ["r"]
    # the conv also feeds an add: the Clip (through a flatten) and a ReLU after it land on the pool
    g = graph([
        conv("c", "x", "a", 3, 2, pads=(1, 1, 1, 1)),
        Node("p", "maxpool", ["a"], "b", pool),
        Node("f", "flatten", ["b"], "v"),
        act("r", "v", "w", ("clip", 0.0, 2.0)),
        act("r2", "w", "w2"),
        Node("s", "add", ["a", "a"], "z"),
        Node("p2", "maxpool", ["z"], "z2", pool),
        Node("f2", "flatten", ["z2"], "zv"),
        Node("t", "add", ["w2", "zv"], "y"),
    ], (2, 5, 5), {"a": (3, 5, 5), "b": (3, 3, 3), "v": (27,), "w": (27,), "w2": (27,), "z": (3, 5, 5),
                   "z2": (3, 3, 3), "zv": (27,), "y": (27,)})
    check_exact(g)
    assert [(n.name, n.activation) for n in g.nodes if n.activation] == [("p", Clip(0.0, 2.0))]


def test_relu_into_add_gap_avgpool():
    for op, params, out in (("gap", None, (2, 1, 1)), ("avgpool", AvgPoolParams((2, 2)), (2, 3, 3))):
        g = graph([Node("p", op, ["x"], "a", params=params), act("r", "a", "y")], (2, 4, 4), {"a": out, "y": out})
        check_exact(g)
        assert g.nodes[0].activation == ReLU()
    g = graph([conv("c", "x", "a", 2, 2, pads=(1, 1, 1, 1)), Node("s", "add", ["a", "x"], "b"),
               act("r", "b", "y")], (2, 4, 4), {"a": (2, 4, 4), "b": (2, 4, 4), "y": (2, 4, 4)})
    check_exact(g)
    assert [n.activation for n in g.nodes] == [None, ReLU()]


def test_final_softmax_dropped_with_a_note():
    g = graph([dense("d", "x", "l", 3, 4), pending("sm", "softmax", "l", "y", "Softmax")], (4,), {"l": (3,)})
    run_passes(g)
    assert g.output == "l" and [n.name for n in g.nodes] == ["d"]
    assert g.notes == ["dropped Softmax 'sm' at the output: the model now outputs the logits 'l' "
                       "(the argmax is unchanged)"]


def test_identity_after_input_and_at_output():
    g = graph([pending("i0", "identity", "x", "a", "Identity"), dense("d", "a", "b", 3, 4),
               pending("i1", "identity", "b", "y", "Dropout")], (4,), {"a": (4,), "b": (3,), "y": (3,)})
    check_exact(g)
    assert g.nodes[0].inputs == ["x"] and g.output == "y" and len(g.nodes) == 1


def test_dead_branches_removed():
    g = graph([dense("d", "x", "a", 3, 4), dense("unused", "a", "u", 2, 3), act("r", "u", "u2"),
               dense("d2", "a", "y", 2, 3)], (4,), {"a": (3,), "u": (2,), "u2": (2,), "y": (2,)})
    check_exact(g)
    assert [n.name for n in g.nodes] == ["d", "d2"] and set(g.shapes) == {"x", "a", "y"}
    assert g.notes == ["removed Relu 'r': its output does not reach the model output",
                       "removed Gemm 'unused': its output does not reach the model output"]


# -- errors ----------------------------------------------------------------------------------------
def test_affine_before_padded_conv_is_an_error():
    g = graph([
        conv("c0", "x", "a", 2, 2, act="relu"),
        affine("bn", "a", "b", pow2(2, 1, 1), np.ones((2, 1, 1))),
        conv("c", "b", "y", 3, 2, pads=(1, 1, 1, 1)),
    ], (2, 5, 5), {"a": (2, 3, 3), "b": (2, 3, 3)})
    with pytest.raises(ModelError, match=r"BatchNormalization 'bn' cannot be folded into a neighbouring layer: it "
                                         r"comes after Conv 'c0' \(which already has an activation\), .*conv 'c' "
                                         r"after it pads its input with zeros \(pads \(1, 1, 1, 1\)\)"):
        run_passes(g)


def test_affine_varying_within_channel_before_conv_is_an_error():
    g = graph([affine("add", "x", "a", np.ones(()), ints(2, 4, 4)), conv("c", "a", "y", 3, 2)],
              (2, 4, 4), {"a": (2, 4, 4)})
    with pytest.raises(ModelError, match=r"its constant varies within a channel, so it cannot be folded into conv 'c'"):
        run_passes(g)


@pytest.mark.parametrize("case", ["shared_conv", "input_vector", "input_map", "input_flatten", "shared_flatten"])
def test_unfusable_activations_get_a_clamp_layer(case):
    """An activation with no layer to fuse into (it reads the model input, or a tensor others read
    too) becomes a 1x1 max pool with the activation fused, right after that tensor: exact."""
    if case == "shared_conv":
        g = graph([conv("c", "x", "a", 2, 2, pads=(1, 1, 1, 1)), act("r", "a", "b"), Node("s", "add", ["b", "a"], "y")],
                  (2, 4, 4), {"a": (2, 4, 4), "b": (2, 4, 4), "y": (2, 4, 4)})
    elif case == "input_vector":  # relabelled (4, 1, 1) for the pool, flattened back after it
        g = graph([act("r", "x", "v"), dense("d", "v", "y", 3, 4)], (4,), {"v": (4,), "y": (3,)})
        g.onnx_input_shape = (4,)
    elif case == "input_map":
        g = graph([act("r", "x", "a", ("clip", 0.0, 2.0)), conv("c", "a", "y", 2, 2)], (2, 4, 4),
                  {"a": (2, 4, 4), "y": (2, 2, 2)})
    elif case == "input_flatten":  # through a flatten: the clamp goes before it
        g = graph([Node("f", "flatten", ["x"], "v", onnx_op="Flatten"), act("r", "v", "w"), dense("d", "w", "y", 2, 8)],
                  (2, 2, 2), {"v": (8,), "w": (8,), "y": (2,)})
    else:  # a conv whose output feeds two layers, then a flatten
        g = graph([conv("c", "x", "a", 2, 2), Node("f", "flatten", ["a"], "v", onnx_op="Flatten"), act("r", "v", "w"),
                   Node("f2", "flatten", ["a"], "v2"), Node("s", "add", ["w", "v2"], "y")],
                  (2, 4, 4), {"a": (2, 2, 2), "v": (8,), "w": (8,), "v2": (8,), "y": (8,)})
    x = ints(3, *g.shapes[g.input], lo=-4, hi=5)
    want = reference(g, x)
    out = run_passes(g)
    clamps = [n for n in out.nodes if n.op == "maxpool"]
    assert len(clamps) == 1 and clamps[0].name == "r/clamp" and clamps[0].onnx_nodes == ["r"]
    assert clamps[0].params == Window((1, 1), (1, 1), (0, 0, 0, 0))
    assert clamps[0].activation == coerce(g_act(case))
    if case == "input_vector":
        assert out.shapes[out.input] == (4, 1, 1) and out.onnx_input_shape == (4,)
        assert [n.op for n in out.nodes] == ["maxpool", "flatten", "dense"]
    if case in ("input_flatten", "shared_flatten"):
        flat = out.node("f")
        assert out.producer(flat.inputs[0]) is clamps[0]
    got = run_float(out, x.reshape((3, *out.shapes[out.input])), dtype=np.float64)
    assert np.array_equal(got, want)


def g_act(case):
    return ("clip", 0.0, 2.0) if case == "input_map" else "relu"


def test_activation_errors():
    # a vector that other layers read too: no layer to fuse into, and a vector cannot be pooled
    g = graph([dense("d", "x", "v", 4, 4), act("r", "v", "w"), Node("s", "add", ["w", "v"], "y")],
              (4,), {"v": (4,), "w": (4,), "y": (4,)})
    with pytest.raises(ModelError, match=r"Relu 'r': its input 'v' \(computed by Gemm 'd', a vector of 4\) is also "
                                         r"read by 's'; fpgagen fuses an activation into the layer that computes its "
                                         r"input \(or a max pool between them\), or clamps a feature map with a 1x1 "
                                         r"max pool, so that vector must feed only the activation"):
        run_passes(g)


def test_softmax_inside_is_an_error():
    g = graph([dense("d", "x", "l", 3, 4), pending("sm", "softmax", "l", "s", "LogSoftmax"),
               dense("d2", "s", "y", 2, 3)], (4,), {"l": (3,), "s": (3,)})
    with pytest.raises(ModelError, match=r"LogSoftmax 'sm' is not at the model output"):
        run_passes(g)


def test_leftover_pending_nodes_are_an_error():
    g = graph([dense("d", "x", "l", 3, 4), act("r", "l", "y")], (4,), {"l": (3,)})
    with pytest.raises(ModelError, match=r"model 'g': could not lower Relu 'r'"):
        run_passes(g, passes=())


def test_pending_node_rejects_unknown_ops():
    with pytest.raises(ModelError, match=r"unknown pending op 'conv'"):
        PendingNode("n", "conv", ["x"], "y")
