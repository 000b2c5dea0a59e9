"""Train the two digits example models and export them to ONNX.

    pip install torch==2.13.0 && python examples/digits/train.py

Writes, next to this file:
  digits_mlp.onnx         MLP 64-32-16-10, input "input" [1, 64] (batch fixed at 1)
  digits_cnn.onnx         small CNN, input "input" [N, 1, 8, 8] (dynamic batch "N")
  digits_calib.npz        x uint8 [1347, 8, 8] raw pixels 0..16, y int64   (train split)
  digits_valid.npz        x uint8 [450, 8, 8]  raw pixels 0..16, y int64   (test split)
  digits_flat_calib.npz   the same images flattened: x uint8 [1347, 64]
  digits_flat_valid.npz   x uint8 [450, 64]

Preprocessing for both models: x * 0.0625 (= x / 16), no offset.
Everything is deterministic: fixed split (random_state=0), fixed torch seed, one thread.
Only this script needs torch; the shipped .onnx/.npz files are used without it.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
SCALE = 0.0625  # preprocessing: pixel * SCALE, pixels 0..16 -> 0..1
SEED = 0
EPOCHS = 100
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-3  # L2 penalty: keeps weights (|w| < ~1.5) and logits (|z| < ~25) modest
PRODUCER = "fpgagen-examples"


class DigitsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))  # 8x4x4
        x = self.pool(torch.relu(self.conv2(x)))  # 16x2x2
        x = torch.flatten(x, 1)  # 64
        return self.fc(x)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def load_split():
    d = load_digits()
    images = d.images.astype(np.uint8)  # [1797, 8, 8], values 0..16
    labels = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=0.25, random_state=0, stratify=labels
    )
    return x_tr, x_te, y_tr, y_te


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    n = x.shape[0]
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        if (epoch + 1) % 25 == 0:
            print(f"  {name} epoch {epoch + 1:3d}  loss {total / n:.4f}")


@torch.no_grad()
def torch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).numpy().mean())


def tidy_onnx(path: Path, graph_name: str) -> None:
    """Strip doc strings, set producer/graph name, check and shape-infer, save."""
    m = onnx.load(str(path))
    m.producer_name = PRODUCER
    m.producer_version = ""
    m.doc_string = ""
    m.graph.name = graph_name
    m.graph.doc_string = ""
    for node in m.graph.node:
        node.doc_string = ""
    for coll in (m.graph.input, m.graph.output, m.graph.value_info):
        for vi in coll:
            vi.doc_string = ""
    for init in m.graph.initializer:
        init.doc_string = ""
    del m.metadata_props[:]
    onnx.checker.check_model(m, full_check=True)
    m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    # keep the file plain: shape inference results are not stored
    del m.graph.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))


def export(model: nn.Module, example: torch.Tensor, path: Path, graph_name: str,
           dynamic_batch: bool) -> None:
    model.eval()
    kwargs = {}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "N"}, "logits": {0: "N"}}
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        opset_version=13,
        do_constant_folding=True,
        dynamo=False,
        **kwargs,
    )
    tidy_onnx(path, graph_name)


def ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray, batch_fixed: bool) -> tuple[float, np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if batch_fixed:
        logits = np.concatenate([sess.run(["logits"], {"input": x[i : i + 1]})[0] for i in range(len(x))])
    else:
        logits = sess.run(["logits"], {"input": x})[0]
    return float((logits.argmax(1) == y).mean()), logits


def main() -> int:
    seed_everything(SEED)
    x_tr, x_te, y_tr, y_te = load_split()
    print(f"train {x_tr.shape}, test {x_te.shape}")

    np.savez_compressed(HERE / "digits_calib.npz", x=x_tr, y=y_tr)
    np.savez_compressed(HERE / "digits_valid.npz", x=x_te, y=y_te)
    np.savez_compressed(HERE / "digits_flat_calib.npz", x=x_tr.reshape(-1, 64), y=y_tr)
    np.savez_compressed(HERE / "digits_flat_valid.npz", x=x_te.reshape(-1, 64), y=y_te)

    ftr = x_tr.astype(np.float32) * np.float32(SCALE)
    fte = x_te.astype(np.float32) * np.float32(SCALE)
    ytr_t, yte_t = torch.from_numpy(y_tr), torch.from_numpy(y_te)

    ok = True
    specs = [
        ("digits_mlp", DigitsMLP, (-1, 64), False, 0.96),
        ("digits_cnn", DigitsCNN, (-1, 1, 8, 8), True, 0.97),
    ]
    for name, cls, shape, dynamic, target in specs:
        torch.manual_seed(SEED)
        model = cls()
        xtr_t = torch.from_numpy(ftr.reshape(shape))
        xte_t = torch.from_numpy(fte.reshape(shape))
        print(f"training {name}")
        train(model, xtr_t, ytr_t, name)
        acc_t = torch_accuracy(model, xte_t, yte_t)
        path = HERE / f"{name}.onnx"
        export(model, xte_t[:1], path, name, dynamic)
        acc_o, logits_o = ort_accuracy(path, fte.reshape(shape), y_te, batch_fixed=not dynamic)
        with torch.no_grad():
            logits_t = model(xte_t).numpy()
        diff = float(np.abs(logits_o - logits_t).max())
        print(f"{name}: torch test acc {acc_t:.4f}, onnxruntime test acc {acc_o:.4f}, "
              f"max |logit diff| {diff:.2e}, train acc {torch_accuracy(model, xtr_t, ytr_t):.4f}")
        same_pred = bool((logits_o.argmax(1) == logits_t.argmax(1)).all())
        if not same_pred or acc_o != acc_t or diff > 1e-4 * max(1.0, float(np.abs(logits_t).max())):
            print(f"  MISMATCH between torch and onnxruntime for {name}", file=sys.stderr)
            ok = False
        if acc_o < target:
            print(f"  {name} accuracy {acc_o:.4f} below target {target}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
