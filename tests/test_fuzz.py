"""A fixed slice of the random-network differential tester (tools/fuzz.py) in CI.

Each seed is one random ONNX net run in its own worker process: onnx.checker and onnxruntime
accept it, fpgagen's float executor agrees with onnxruntime, and every target's integers equal
the golden model's (``fpgagen.verify``). A target may only pass or reject a documented unsupported
feature (``fuzz.DOCUMENTED``): no mismatch, no crash, no hang, no other rejection.

Known open bugs (issue 11 item 4) xfail strictly, by seed and target, naming the bug: when a fix
lands the test XPASSes and fails, and the entry is deleted from ``KNOWN``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("fuzz", ROOT / "tools" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fuzz", fuzz)
_spec.loader.exec_module(fuzz)

C_HLS_SEEDS = range(30)
#: small nets (a Verilator build each): a residual dense net, a residual conv net, an average pool
VERILOG_SEEDS = (2, 5, 43)
TIMEOUT = 300.0

#: (seed, target) -> the known open bug it hits (the bug's name in fuzz.KNOWN_BUGS)
#: (empty: the C word-length and no-layer bugs the slice hit are fixed and pass exactly)
KNOWN: dict[tuple[int, str], str] = {}


class KnownBug(Exception):
    """A known open bug was hit (the xfail of its seed catches exactly this)."""


def _params(seeds, targets):
    out = []
    for seed in seeds:
        bugs = sorted({KNOWN[(seed, t)] for t in targets if (seed, t) in KNOWN})
        marks = [pytest.mark.xfail(strict=True, raises=KnownBug, reason="; ".join(bugs))] if bugs else []
        out.append(pytest.param(seed, targets, marks=marks, id=f"seed{seed}-{'+'.join(targets)}"))
    return out


def _check(seed: int, targets: tuple[str, ...], tmp_path: Path) -> None:
    res = fuzz.run_seed(seed, list(targets), TIMEOUT, tmp_path)
    desc = res.get("desc", "")
    assert "invalid" not in res, f"seed {seed}: the generator made an invalid net: {res['invalid']}\n{desc}"
    if "float" in res:
        assert res["float"]["ok"], f"seed {seed}: float executor vs onnxruntime: {res['float']}\n{desc}"
    known = []
    for t in targets:
        r = res["targets"][t]
        kind = str(r.get("kind", ""))
        if r["class"] == "pass" or kind.startswith("documented:"):
            continue
        detail = f"seed {seed} {t}: {r['class']} {kind}\n{r.get('message', '')[-1500:]}\nnet: {desc}"
        bug = KNOWN.get((seed, t))
        if bug is not None and kind == f"known:{bug}":
            known.append(detail)
            continue
        raise AssertionError(detail)
    if known:
        raise KnownBug("\n".join(known))


@pytest.mark.parametrize("seed, targets", _params(C_HLS_SEEDS, ("c", "hls")))
def test_fuzz_c_hls(seed, targets, tmp_path):
    _check(seed, targets, tmp_path)


@pytest.mark.parametrize("seed, targets", _params(VERILOG_SEEDS, ("verilog",)))
def test_fuzz_verilog(seed, targets, tmp_path):
    _check(seed, targets, tmp_path)


def test_generator_is_deterministic_and_valid(tmp_path):
    """Same seed, same net; every net of a larger range passes onnx.checker and onnxruntime."""
    assert fuzz.generate(5) == fuzz.generate(5)
    assert fuzz.build_model(fuzz.generate(5)).SerializeToString() == fuzz.build_model(fuzz.generate(5)).SerializeToString()
    for seed in range(200, 260):
        case = tmp_path / f"s{seed}"
        fuzz.write_case(fuzz.generate(seed), case)
        fuzz.check_valid(case)


def test_reduction_candidates_stay_valid(tmp_path):
    """Every simplification the reducer tries is still a valid net (the builder clamps intents)."""
    spec = fuzz.generate(17)
    for i, cand in enumerate(fuzz._candidates(spec)):
        if i % 4:
            continue
        case = tmp_path / f"c{i}"
        fuzz.write_case(cand, case)
        fuzz.check_valid(case)


def test_rejections_are_classified(monkeypatch):
    assert fuzz.classify_rejection("c", "node 'conv1' (Conv): attribute 'dilations' = [2, 2] is not supported; "
                                        "supported: dilations all 1") == "documented:dilations other than 1"
    # every bug once known is fixed: its message is a finding again
    assert fuzz.classify_rejection("c", "c target: tensor 'x' (the model input) has format s9.4; the C runtime "
                                        "stores one byte per element") == "finding"
    monkeypatch.setattr(fuzz, "KNOWN_BUGS", [("C bytes", ("c",), r"stores one byte per element")])
    assert fuzz.classify_rejection("c", "the C runtime stores one byte per element") == "known:C bytes"
    assert fuzz.classify_rejection("hls", "the C runtime stores one byte per element") == "finding"
    assert fuzz.classify_rejection("hls", "something new went wrong") == "finding"


def test_shrink_finds_a_minimal_net():
    """Delta debugging keeps the failure (here: 'the net has an AveragePool with ceil_mode') and
    drops everything else: one layer, plain settings."""
    def has_ceil_avgpool(spec):
        return any(lay["op"] == "avgpool" and lay.get("ceil") for lay in spec["layers"])

    seed = next(s for s in range(1000) if has_ceil_avgpool(fuzz.generate(s)) and len(fuzz.generate(s)["layers"]) > 3)
    small, tries = fuzz.shrink(fuzz.generate(seed), has_ceil_avgpool, echo=lambda msg: None)
    assert [lay["op"] for lay in small["layers"]] == ["avgpool"]
    assert small["layers"][0]["ceil"] and small["word_length"] == 8 and small["opset"] == 13
    assert tries > 0


def test_a_hung_worker_is_killed_and_blamed(tmp_path):
    """A worker over its time budget is killed; the target it was on counts as a hang."""
    fuzz.write_case(fuzz.generate(3), tmp_path / "case")
    res = fuzz.run_worker(tmp_path / "case", ["hls", "c"], timeout=0.2, grace=0.0)
    assert res["targets"]["hls"]["class"] == "hang"
    assert res["targets"]["c"]["class"] == "skipped"
    assert res["wall"] < 30
