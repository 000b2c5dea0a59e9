"""``OUT/report.html``: self-contained, carries every section, reads only well-formed build files
(a clear error otherwise), never shows stale verification as current, renders in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from fpgagen.cli import main
from fpgagen.config import resolve_config
from fpgagen.flow import build, verify
from fpgagen.report.html import ReportError, render_report, worst_layer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def cnn_out(tmp_path_factory):
    """The digits CNN built with its Verilog (generated, not simulated): summary.json has hardware."""
    raw = yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text())
    raw["targets"] = ["verilog"]
    out = tmp_path_factory.mktemp("cnn")
    build(resolve_config(raw, "digits_cnn.yaml", CONFIGS, "digits_cnn"), out, progress=False)
    return out


def copy_build(src: Path, dst: Path, summary=None, hists=None, verify_json=None) -> Path:
    """A build directory at ``dst`` with ``src``'s files, optionally edited."""
    for name in ("summary.json", "histograms.json"):
        shutil.copy(src / name, dst / name)
    if summary is not None:
        (dst / "summary.json").write_text(json.dumps(summary))
    if hists is not None:
        (dst / "histograms.json").write_text(json.dumps(hists))
    if verify_json is not None:
        (dst / "verify.json").write_text(json.dumps(verify_json))
    return dst


def load(out: Path, name: str = "summary.json"):
    return json.loads((out / name).read_text())


def test_report_is_self_contained_and_complete(cnn_out):
    html = (cnn_out / "report.html").read_text()
    summary = load(cnn_out)
    # no network: every picture inline, no external script, style, font or image
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert html.count("<svg ") == 2  # the heat map and the cycles chart
    for section in ("Accuracy", "Layers", "MSB histograms", "Verification"):
        assert f"<h2>{section}</h2>" in html
    assert "<h2>Hardware (verilog: <code>fpgagen_digits_cnn</code>)</h2>" in html
    for layer in summary["layers"]:
        assert f"<td class=\"l name\" title=\"{layer['name']}\">{layer['name']}</td>" in html
        assert layer["output"] in html
    assert f"{100 * summary['accuracy']['float']:.2f} %" in html
    assert "Not verified yet" in html
    assert "input input" not in html


def test_layers_table_starts_with_the_input_and_its_saturation(cnn_out):
    html = (cnn_out / "report.html").read_text()
    inp = load(cnn_out)["input"]
    assert inp["overflow_rate"] == pytest.approx(0.0906, abs=5e-4)  # 9 % of the digits' pixels saturate u8.8
    row = re.search(r'<tr class="inputrow">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="l name" title="input">input</td><td class="l">input</td>' in row
    assert "<td>1x8x8</td>" in row and "<td>u8.8</td>" in row
    assert "<td>9.06 %</td><td>0 %</td>" in row
    assert html.index('class="inputrow"') < html.index("/conv1/Conv</td>")


def test_hardware_section_shows_the_balance_of_the_pipeline(cnn_out):
    html = (cnn_out / "report.html").read_text()
    hw = load(cnn_out)["hardware"]
    cycles = {name: e["cycles"] for name, e in hw["layers"].items()}
    assert hw["pipeline_cycles"] == max(cycles.values()) == 1152
    assert "<b>1,152</b><span>cycles per frame (pipeline interval, analytic)</span>" in html
    assert "<b>86,806</b><span>frames/s at 100 MHz (an assumed clock: no <code>hardware.clock_mhz</code>)</span>" in html
    mults = sum(e["multipliers"] for e in hw["layers"].values())
    assert mults == 52 and "<b>52</b><span>multipliers</span>" in html
    busy = sum(e["multipliers"] * e["cycles"] for e in hw["layers"].values())
    assert busy == 24064  # of 52 x 1,152 = 59,904 multiplier-cycles
    assert "<b>0.40</b><span>multiplier utilisation (busy share of multiplier-cycles)</span>" in html
    # weight + bias bits: conv1 8x1x3x3 s8.6 weights and 8 s8.7 biases
    # multipliers, ROM bits, the estimated LUTs (summary.json layers[i].resources), cycles
    luts = next(row for row in load(cnn_out)["layers"] if row["name"] == "/conv1/Conv")["resources"]["luts"]
    assert f"<td>4</td><td>640</td><td>{luts:,}</td><td>1,152</td>" in html
    assert "Latency: not measured yet" in html
    chart = re.search(r'<svg [^>]*class="cycles".*?</svg>', html, re.S).group(0)
    bars = re.findall(r'<rect x="250" y="[\d.]+" width="([\d.]+)" height="16" fill="(#[0-9a-f]+)">', chart)
    assert len(bars) == len(cycles)
    widths = [float(w) for w, _ in bars]
    assert widths == [pytest.approx(max(c * 560 / 1152, 1.0), abs=0.05) for c in cycles.values()]
    assert [colour for _, colour in bars].count("#c0392b") == 1  # the slowest layer, red
    assert 'stroke-dasharray="4 3"' in chart  # the interval line


def test_hardware_at_the_configured_clock_with_measured_latency_and_resources(cnn_out, tmp_path):
    summary = load(cnn_out)
    summary["hardware"].update(clock_mhz=48.0, device="ecp5-25f", resources={"LUT4": 12000, "DSP": 52},
                               available={"LUT4": 24000, "DSP": 28})
    verify_json = {"verilog": {"samples": 3, "mismatches": 0, "cycles_per_frame": 1152.0, "latency_cycles": 1572}}
    html = render_report(copy_build(cnn_out, tmp_path, summary, verify_json=verify_json))
    assert "<b>41,667</b><span>frames/s at 48 MHz</span>" in html
    assert "<b>1,572</b><span>cycles latency, measured (32.75 &micro;s at 48 MHz)</span>" in html
    assert "<h3>Resources on ecp5-25f</h3>" in html
    assert '<td class="l">LUT4</td><td>12,000</td><td>24,000</td><td>50 %</td>' in html
    assert '<td class="l">DSP</td><td>52</td><td>28</td><td class="bad">186 %</td>' in html


def test_resource_estimates_of_the_verilog_backend_against_the_device(cnn_out, tmp_path):
    summary = load(cnn_out)
    summary["hardware"]["resources"] = {
        "estimate": "before synthesis", "device": "ecp5-25f",
        "total": {"multipliers": 52, "rom_bits": 15298, "buffer_bits": 3338, "memories": 21, "brams": 7,
                  "luts": 4100, "ffs": 2600},
        "available": {"multipliers": 28, "brams": 56, "memory_bits": 1032192, "luts": 24288, "ffs": 24288},
        "fits": False, "layers": {}}
    for row in summary["layers"]:
        row["resources"] = {"luts": 1234} if row["name"] == "/conv2/Conv" else None
    html = render_report(copy_build(cnn_out, tmp_path, summary))
    assert "<h3>Resources on ecp5-25f</h3>" in html
    assert '<td class="l">multipliers</td><td>52</td><td>28</td><td class="bad">186 %</td>' in html
    assert '<td class="l">block RAMs (estimated)</td><td>7</td><td>56</td><td>12.5 %</td>' in html
    assert '<td class="l">ROM bits</td><td>15,298</td><td>1,032,192</td><td>1.48 %</td>' in html
    assert '<td class="l">buffer bits</td><td>3,338</td>' in html
    assert '<td class="l">LUTs (estimated)</td><td>4,100</td><td>24,288</td><td>16.9 %</td>' in html
    assert '<td class="l">flip-flops (estimated)</td><td>2,600</td><td>24,288</td><td>10.7 %</td>' in html
    # per layer: a column of the estimated LUTs, the total under it
    assert "<th>LUTs (estimated)</th>" in html and "<td>1,234</td>" in html and "<th>4,100</th>" in html


def test_verification_is_a_table_of_named_figures(cnn_out, tmp_path):
    verify_json = {
        "verilog": {"samples": 20, "mismatches": 0, "cycles_per_frame": 1240.0, "latency_cycles": 1572,
                    "verified_at": "2026-12-02T10:00:00+00:00", "config": "configs/digits_cnn.yaml"},
        "c": {"samples": 20, "mismatches": 3, "first_mismatch_layer": "/fc/Gemm", "flash_bytes": 2000,
              "arm": {"samples": 20, "mismatches": 0, "elf": {"text": 38376, "data": 2492, "bss": 808}}},
    }
    html = render_report(copy_build(cnn_out, tmp_path, verify_json=verify_json))
    assert '<td class="ok">0</td>' in html and '<td class="bad">3</td>' in html
    assert '<span class="ok">bit-exact</span>' in html and '<span class="bad">mismatch</span>' in html
    for name, value in (("cycles per frame (measured)", "1,240"), ("latency, cycles (first input to last output)",
                                                                   "1,572"),
                        ("first mismatching layer", "/fc/Gemm"), ("network constants (flash), bytes", "2,000"),
                        ("Cortex-M4 test image .text, bytes", "38,376"), ("Cortex-M4 mismatches", "0")):
        assert re.search(rf"<tr><td>{re.escape(name)}</td><td[^>]*>{re.escape(value)}</td></tr>", html), name
    assert "{'" not in html and "{&#39;" not in html  # no raw dicts
    assert "2026-12-02T10:00:00+00:00" in html and "unknown (no time recorded)" in html


def test_cortex_m4_instruction_counts_are_shown_as_instructions_not_cycles(cnn_out, tmp_path):
    layers = [{"layer": "/conv1/Conv", "op": "conv", "instructions": 36491.0, "macs": 4608,
               "instructions_per_mac": 7.919},
              {"layer": "/pool/MaxPool", "op": "maxpool", "instructions": 1441.0, "macs": 0,
               "instructions_per_mac": None}]
    verify_json = {"c": {"samples": 20, "mismatches": 0, "arm": {
        "samples": 20, "mismatches": 0, "instructions_per_frame": 70533.0, "instructions_per_mac": 2.979,
        "instruction_count": {"counted": "executed instructions (not cycles) of the network alone",
                              "compiler": "arm-none-eabi-gcc -O2 -mcpu=cortex-m4", "frames": 2, "frame_spread": 0,
                              "layers": layers}}}}
    html = render_report(copy_build(cnn_out, tmp_path, verify_json=verify_json))
    for name, value in (("Cortex-M4 executed instructions per frame (not cycles)", "70,533"),
                        ("Cortex-M4 executed instructions per MAC (not cycles)", "2.979"),
                        ("Cortex-M4 instruction count: compiler", "arm-none-eabi-gcc -O2 -mcpu=cortex-m4"),
                        ("Cortex-M4 instruction count: frames counted", "2")):
        assert re.search(rf"<tr><td>{re.escape(name)}</td><td[^>]*>{re.escape(value)}</td></tr>", html), name
    assert "<h4>Cortex-M4 executed instructions per layer (instructions, not cycles)</h4>" in html
    assert ('<tr><td class="l">/conv1/Conv</td><td class="l">conv</td><td>36,491</td><td>4,608</td>'
            '<td>7.919</td></tr>') in html
    assert '<tr><td class="l">/pool/MaxPool</td><td class="l">maxpool</td><td>1,441</td><td>0</td><td>-</td></tr>' in html
    assert "{'" not in html and "{&#39;" not in html and "[{" not in html  # no raw dicts or lists


def test_stale_results_are_shown_as_stale(cnn_out, tmp_path):
    summary = load(cnn_out)
    digest = summary["files_sha256"]["verilog"]
    verify_json = {
        "verilog": {"samples": 5, "mismatches": 0, "files_sha256": "0" * 64, "verified_at": "t1"},
        "hls": {"samples": 5, "mismatches": 0, "stale": "from an earlier run; the run of t2 verified c only"},
        "c": {"samples": 5, "mismatches": 0, "files_sha256": "1" * 64},
    }
    html = render_report(copy_build(cnn_out, tmp_path, verify_json=verify_json))
    assert "stale: the generated files changed since (rebuilt after this verification)" in html
    assert "stale: from an earlier run; the run of t2 verified c only" in html
    assert "stale: the current build has no such target" in html  # this build generated no C
    assert "--targets verilog hls c" in html
    assert "bit-exact" not in html
    verify_json["verilog"]["files_sha256"] = digest  # the very files verified: current
    html = render_report(copy_build(cnn_out, tmp_path, verify_json=verify_json))
    assert html.count('<span class="ok">bit-exact</span>') == 1


def test_verify_reports_only_this_runs_targets_and_marks_older_ones_stale(tmp_path):
    cfg = resolve_config(yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text()), "digits_mlp.yaml", CONFIGS,
                         "digits_mlp")
    cfg = {**cfg, "targets": ["hls", "c"]}
    (tmp_path / "verify.json").write_text("[1, 2")  # a corrupt earlier record: refused before anything is written
    with pytest.raises(ReportError, match=r"verify.json is not valid JSON .*: delete it and run `fpgagen verify` again"):
        verify(cfg, ["hls"], samples=4, out=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verify.json"]
    (tmp_path / "verify.json").unlink()
    first, out = verify(cfg, ["hls"], samples=4, out=tmp_path, progress=False)
    assert list(first) == ["hls"]
    r = first["hls"]
    assert r["mismatches"] == 0 and r["config"] == "digits_mlp (a config dict)" and "stale" not in r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", r["verified_at"])
    assert r["files_sha256"] == load(out)["files_sha256"]["hls"]
    second, _ = verify(cfg, ["c"], samples=4, out=tmp_path, progress=False)
    assert list(second) == ["c"]  # the hls result of the first run is not returned as current
    saved = load(out, "verify.json")
    assert saved["c"] == second["c"]
    assert saved["hls"] == {**first["hls"], "stale": f"from an earlier run; the run of {second['c']['verified_at']} "
                                                     f"verified c only"}
    html = (out / "report.html").read_text()
    assert "stale: from an earlier run" in html and html.count("bit-exact") == 1
    third, _ = verify(cfg, ["hls"], samples=4, out=tmp_path, progress=False)
    saved = load(out, "verify.json")
    assert "stale" not in saved["hls"] and saved["c"]["stale"].startswith("from an earlier run")


def test_worst_layer_is_the_largest_sqnr_drop():
    layers = [{"name": "a", "sqnr_db": 40.0}, {"name": "b", "sqnr_db": 38.0},
              {"name": "c", "sqnr_db": None}, {"name": "d", "sqnr_db": 20.0}, {"name": "e", "sqnr_db": 19.0}]
    assert worst_layer({"layers": layers}) == "d"


# -- names --------------------------------------------------------------------------------------
def test_a_5000_character_layer_name_neither_crashes_nor_bloats_the_report(cnn_out, tmp_path):
    summary, hists = load(cnn_out), load(cnn_out, "histograms.json")
    base = len((cnn_out / "report.html").read_text())
    old = summary["layers"][2]["name"]  # /conv2/Conv
    long = "<b>&" + "n" * 5000 + "</b>"
    summary["layers"][2]["name"] = long
    summary["hardware"]["layers"] = {(long if k == old else k): v for k, v in summary["hardware"]["layers"].items()}
    for suffix in (".weight", ".bias"):
        hists[long + suffix] = hists.pop(old + suffix)
    html = render_report(copy_build(cnn_out, tmp_path, summary, hists))
    assert "n" * 300 not in html and len(html) < base + 4000
    assert "<b>&" not in html and "&lt;b&gt;&amp;nnn" in html  # escaped, shortened
    assert html.count("&lt;b&gt;&amp;nn") >= 5  # in the layers table, the heat map and the hardware section


# -- bad build directories ------------------------------------------------------------------------
def report_error(out: Path, capsys) -> str:
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip()


def test_missing_directory_and_files(cnn_out, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert report_error(missing, capsys) == (
        f"fpgagen: error: report: {missing} is not a directory; expected a build directory of `fpgagen build`")
    (tmp_path / "empty").mkdir()
    assert report_error(tmp_path / "empty", capsys) == (
        f"fpgagen: error: report: {tmp_path / 'empty'} is not a build directory: {tmp_path / 'empty' / 'summary.json'} "
        f"is missing (expected the summary.json that `fpgagen build` writes; run `fpgagen build CONFIG -o "
        f"{tmp_path / 'empty'}`)")
    out = tmp_path / "nohist"
    out.mkdir()
    shutil.copy(cnn_out / "summary.json", out)
    assert f"report: {out} is not a build directory: {out / 'histograms.json'} is missing" in report_error(out, capsys)
    (out / "histograms.json").mkdir()
    assert report_error(out, capsys).endswith(
        f"report: {out / 'histograms.json'} is not a file; expected the histograms.json that `fpgagen build` writes "
        f"({{tensor: {{name, bins, zeros, min, max}}}})")


@pytest.mark.parametrize("text, what", [
    ("", "is empty"),
    ('{"name": "digits_cnn", "layers": [', "is not valid JSON (Expecting value at line 1, column 35)"),
    ("not json at all", "is not valid JSON (Expecting value at line 1, column 1)"),
])
def test_corrupt_summary(cnn_out, tmp_path, capsys, text, what):
    out = copy_build(cnn_out, tmp_path)
    (out / "summary.json").write_text(text)
    assert report_error(out, capsys) == (
        f"fpgagen: error: report: {out / 'summary.json'} {what}; expected the summary.json that `fpgagen build` "
        f"writes: rebuild with `fpgagen build`")


def test_summary_not_utf8(cnn_out, tmp_path, capsys):
    out = copy_build(cnn_out, tmp_path)
    (out / "summary.json").write_bytes(b'{"name": "\xff"}')
    assert report_error(out, capsys).endswith(
        f"{out / 'summary.json'} is not UTF-8 text; expected the summary.json that `fpgagen build` writes")


def foreign_summaries(summary: dict):
    bad_layer = json.loads(json.dumps(summary))
    del bad_layer["layers"][1]["output"]
    bad_type = json.loads(json.dumps(summary))
    bad_type["layers"][0]["shift"] = "eight"
    bad_format = json.loads(json.dumps(summary))
    bad_format["input"]["format"] = "int8"
    bad_hw = json.loads(json.dumps(summary))
    bad_hw["hardware"]["layers"]["/fc/Gemm"]["cycles"] = [64]
    return [
        ([1, 2, 3], "summary.json: expected an object, got a list"),
        ({"some": "other tool"}, "summary.json: missing key 'name'"),
        (bad_layer, "summary.json: layers[1]: missing key 'output'"),
        (bad_type, "summary.json: layers[0].shift: expected an integer or null, got 'eight'"),
        (bad_format, "summary.json: input.format: unknown fixed-point format 'int8'"),
        (bad_hw, "summary.json: hardware.layers./fc/Gemm.cycles: expected an integer, got [64]"),
    ]


def test_foreign_summary(cnn_out, tmp_path, capsys):
    for i, (summary, message) in enumerate(foreign_summaries(load(cnn_out))):
        out = tmp_path / str(i)
        out.mkdir()
        copy_build(cnn_out, out, summary)
        err = report_error(out, capsys)
        assert err.startswith(f"fpgagen: error: report: {out}/{message}"), err
        assert err.endswith("; expected the summary.json that `fpgagen build` writes"), err


def test_foreign_histograms_and_verify(cnn_out, tmp_path, capsys):
    hist_expect = "; expected the histograms.json that `fpgagen build` writes ({tensor: {name, bins, zeros, min, max}})"
    cases = [
        ("histograms.json", ["a"], "histograms.json: expected an object, got a list" + hist_expect),
        ("histograms.json", {"input": {"bins": {}}}, "histograms.json: input: missing key 'zeros'" + hist_expect),
        ("histograms.json", {"input": {"bins": {"x": 1}, "zeros": 0, "min": 0, "max": 1}},
         "histograms.json: input.bins: bit 'x' is not an integer in [-1074, 1023]" + hist_expect),
        ("histograms.json", {"input": {"bins": {"3": -1}, "zeros": 0, "min": 0, "max": 1}},
         "histograms.json: input.bins.3: expected a count >= 0, got -1" + hist_expect),
        ("verify.json", {"c": {"passed": True}},
         "verify.json: c: missing key 'samples'; expected the verify.json that `fpgagen verify` writes "
         "({target: {samples, mismatches, ...}})"),
        ("verify.json", "ok", "verify.json: expected an object, got a string"),
    ]
    out = copy_build(cnn_out, tmp_path)
    (out / "verify.json").write_text('{"c": {"samples": 20, "mism')
    assert report_error(out, capsys).endswith(
        "verify.json is not valid JSON (Unterminated string starting at line 1, column 23); expected the "
        "verify.json that `fpgagen verify` writes ({target: {samples, mismatches, ...}}): delete it and run "
        "`fpgagen verify` again")
    from fpgagen.quant.histogram import MAX_BIT, MIN_BIT

    assert (MIN_BIT, MAX_BIT) == (-1074, 1023)  # the float64 exponents
    for i, (name, data, message) in enumerate(cases):
        out = tmp_path / str(i)
        out.mkdir()
        copy_build(cnn_out, out)
        (out / name).write_text(json.dumps(data))
        err = report_error(out, capsys)
        assert err.startswith(f"fpgagen: error: report: {out}/{message}"), err
    with pytest.raises(ReportError):
        render_report(out)


# -- the browser ----------------------------------------------------------------------------------
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian package `chromium`)")
def test_report_renders_in_headless_chromium(cnn_out, tmp_path):
    """The page with every section (hardware, stale and current verification) as a browser draws it;
    the screenshot stays in the test's tmp dir (report.png) to look at."""
    verify_json = {
        "verilog": {"samples": 20, "mismatches": 0, "cycles_per_frame": 1152.0, "latency_cycles": 1572,
                    "verified_at": "2026-12-02T10:00:00+00:00", "config": "configs/digits_cnn.yaml"},
        "c": {"samples": 20, "mismatches": 0, "flash_bytes": 2000, "stale": "from an earlier run"},
    }
    out = copy_build(cnn_out, tmp_path, verify_json=verify_json)
    (out / "report.html").write_text(render_report(out))
    png = tmp_path / "report.png"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,3200",
           f"--screenshot={png}", (out / "report.html").resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr[-2000:]}"
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[0] >= 3000 and img.shape[1] >= 1200
    grey = img[..., :3].mean(axis=2)
    assert grey.std() > 0.05, "the page rendered blank"
    rgb = img[..., :3]
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert np.count_nonzero(saturation > 0.3) > 5000  # the heat map's colours are drawn
    # the cycles chart: the bottleneck's red bar (#c0392b) and the others' blue (#2e86c1)
    red = np.all(np.abs(rgb - np.array([0xc0, 0x39, 0x2b]) / 255) < 0.03, axis=2)
    blue = np.all(np.abs(rgb - np.array([0x2e, 0x86, 0xc1]) / 255) < 0.03, axis=2)
    assert red.sum() > 3000 and blue.sum() > 3000
