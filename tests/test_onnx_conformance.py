"""ONNX's own backend node tests of every supported op through the importer and the float
executor (tools/onnx_conformance.py): each passes, or is refused with a clear message naming the
node, input or attribute; none crashes or disagrees."""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import onnx_conformance as oc  # noqa: E402

#: measured 2026-12-02 with onnx 1.23.2 (opset 28): 84 pass, 279 unsupported, 0 crash, 0 mismatch
MIN_PASSING = {"Conv": 6, "Gemm": 8, "MaxPool": 11, "AveragePool": 13, "LeakyRelu": 2, "Resize": 3, "Upsample": 1,
               "Softmax": 6, "LogSoftmax": 6, "Reshape": 6, "Unsqueeze": 6}
#: how a refusal names what it refuses
NAMED = re.compile(r"node '[^']+' \(\w+\)|model input '[^']+'|model output|exactly one model (input|output)|"
                   r"\w+ '[^']+' cannot be folded")


@pytest.fixture(scope="module")
def outcomes():
    return [oc.run_case(c) for c in oc.cases()]


def test_no_crash_and_no_mismatch(outcomes):
    bad = [f"{o.kind} {o.case}: {o.message[:200]}" for o in outcomes if o.kind in ("crash", "mismatch")]
    assert bad == [], "\n".join(bad)


def test_refusals_name_the_node_or_the_input(outcomes):
    vague = [f"{o.case}: {o.message[:200]}" for o in outcomes if o.kind == "unsupported" and not NAMED.search(o.message)]
    assert vague == [], "\n".join(vague)


def test_enough_cases_pass(outcomes):
    passing = collections.Counter(o.op for o in outcomes if o.kind == "pass")
    assert sum(passing.values()) >= 84
    short = {op: (passing[op], n) for op, n in MIN_PASSING.items() if passing[op] < n}
    assert short == {}
    print("\n" + oc.table(outcomes))
