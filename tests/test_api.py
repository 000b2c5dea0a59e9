"""The public API at the package top level, used as a script would use it."""

import numpy as np
import pytest

import fpgagen


def test_quantize_dequantize_requantize():
    q = fpgagen.quantize([0.03125, 2.1, 16.25], "s8.3")
    assert q.dtype == np.int64 and q.tolist() == [0, 17, 127]
    assert fpgagen.dequantize(q, "s8.3").tolist() == [0.0, 2.125, 15.875]
    q, stats = fpgagen.quantize_with_stats([0.03125, 2.1, 16.25], "s8.3", name="x")
    assert isinstance(stats, fpgagen.QuantStats)
    assert (stats.total, stats.overflow, stats.underflow) == (3, 1, 1)
    assert fpgagen.requantize([272, -272, 5000], "s16.7", "s8.3").tolist() == [17, -17, 127]
    r, stats = fpgagen.requantize_with_stats([272, 4], "s16.7", "s8.3")
    assert r.tolist() == [17, 0] and (stats.overflow, stats.underflow) == (0, 1)


def test_histogram_and_format_choice():
    hist = fpgagen.msb_histogram([0.03125, 2.1, 16.25], name="seeds")
    assert isinstance(hist, fpgagen.MsbHistogram)
    assert hist.occupied().tolist() == [4, 1, -5]
    assert hist + fpgagen.MsbHistogram() is not hist
    assert fpgagen.METHODS == ("max", "coverage", "mse")
    fmt = fpgagen.choose_format(hist, "coverage", eps=1 / 3, signed=True)
    assert isinstance(fmt, fpgagen.Format) and str(fmt) == "s8.3"
    assert fpgagen.Format.parse("s8.3") == fpgagen.Format(signed=True, word=8, frac=3) == fmt
    assert str(fpgagen.choose_format(hist)) == "u8.3"


def test_errors_are_exported():
    assert issubclass(fpgagen.FormatError, fpgagen.FpgagenError)
    assert issubclass(fpgagen.QuantizationError, fpgagen.FpgagenError)
    for name in ("ConfigError", "ModelError", "BackendError"):
        assert issubclass(getattr(fpgagen, name), fpgagen.FpgagenError)
    assert not issubclass(fpgagen.VerificationMismatch, fpgagen.FpgagenError)
    with pytest.raises(fpgagen.FormatError, match=r"unknown fixed-point format 'int8'"):
        fpgagen.quantize([1.0], "int8")
    with pytest.raises(fpgagen.QuantizationError, match=r"^act: 1 NaN"):
        fpgagen.msb_histogram([float("nan")], name="act")


def test_every_public_name_exists_and_the_documented_ones_are_described():
    for name in fpgagen.__all__:
        assert hasattr(fpgagen, name), name
    assert fpgagen.__version__
    doc = fpgagen.__doc__
    for name in ("quantize", "quantize_with_stats", "dequantize", "requantize", "msb_histogram",
                 "MsbHistogram", "choose_format", "Format"):
        assert name in fpgagen.__all__
        assert f"{name}`" in doc, f"{name} is not described in the package docstring"
        assert getattr(fpgagen, name).__doc__, f"{name} has no docstring"


# -- the build flow from a script -------------------------------------------------------------
import os  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "configs" / "digits_cnn.yaml"


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory):
    cfg = fpgagen.load_config(CNN)
    cfg = {**cfg, "targets": []}
    out = tmp_path_factory.mktemp("api_cnn")
    return fpgagen.build(cfg, out=out, progress=False), out


def test_report_stays_the_function_after_importing_the_subpackage(cnn_build):
    _, out = cnn_build
    function = fpgagen.report
    # `import fpgagen.report.html` (run in its own namespace: it would make `fpgagen` a local here)
    # binds the subpackage onto fpgagen, which must not replace the function
    exec("import fpgagen.report.html", {})
    import fpgagen.report.heatmap as heatmap
    from fpgagen.report import html

    assert fpgagen.report is function and callable(fpgagen.report)
    assert fpgagen.report.html is html and fpgagen.report.heatmap is heatmap
    (out / "report.html").unlink()
    assert fpgagen.report(out) == out / "report.html" and (out / "report.html").is_file()


def test_load_data_is_what_the_build_loaded(cnn_build):
    b, _ = cnn_build
    cfg = fpgagen.load_config(CNN)
    x_cal, y_cal = fpgagen.load_data(cfg, "calibration")
    x_val, y_val = fpgagen.load_data(str(CNN), "validation", graph=b.graph)
    assert x_cal.dtype == np.float32 and x_cal.shape == (1347, 1, 8, 8) and y_cal.shape == (1347,)
    assert np.array_equal(x_cal, b.x_calib) and np.array_equal(x_val, b.x_valid)
    assert np.array_equal(y_val, b.y_valid)
    assert float(x_cal.max()) == 1.0  # preprocess.scale 1/16 applied to pixels 0..16
    with pytest.raises(fpgagen.ConfigError, match=r"^data: expected 'calibration' or 'validation', got 'test'$"):
        fpgagen.load_data(cfg, "test", graph=b.graph)


def test_api_takes_the_data_shapes_a_config_takes(cnn_build):
    b, _ = cnn_build
    x = b.x_valid[:40]  # [40, 1, 8, 8]
    flat = x[:, 0]  # [40, 8, 8], as the digits files hold them
    q = b.qgraph
    assert np.array_equal(fpgagen.quantize_input(q, flat), fpgagen.quantize_input(q, x))
    xq = fpgagen.quantize_input(q, flat)
    assert np.array_equal(fpgagen.run_golden(q, xq[:, 0]), fpgagen.run_golden(q, xq))
    cal_flat, cal = fpgagen.calibrate(b.graph, flat, progress=False), fpgagen.calibrate(b.graph, x, progress=False)
    assert {k: h.as_dict() for k, h in cal_flat.hists.items()} == {k: h.as_dict() for k, h in cal.hists.items()}
    v = fpgagen.validate(b.graph, q, flat, b.y_valid[:40], progress=False)
    assert v.samples == 40 and v.accuracy["float"] is not None
    with pytest.raises(fpgagen.ConfigError, match=r"^calibrate: x has shape \[40, 64\]; expected \[N, 1, 8, 8\] "
                                                  r"or \[N, 8, 8\] for the model input$"):
        fpgagen.calibrate(b.graph, flat.reshape(40, 64))


def test_report_is_the_function_when_the_subpackage_is_imported_first():
    import subprocess
    import sys

    code = "import fpgagen.report.html as h\nimport fpgagen\nprint(fpgagen.report.__module__, h.__name__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["fpgagen.api", "fpgagen.report.html"], r.stderr


def test_resolved_config_holds_paths_relative_to_the_build_directory(cnn_build, tmp_path):
    import yaml

    b, out = cnn_build
    text = (out / "config.resolved.yaml").read_text()
    raw = yaml.safe_load(text)
    for path in (raw["model"], raw["data"]["calibration"], raw["data"]["validation"]):
        assert not Path(path).is_absolute(), path  # no absolute path of this machine
    assert (out / raw["model"]).resolve() == (ROOT / "examples" / "digits" / "digits_cnn.onnx")
    assert (out / raw["data"]["validation"]).resolve() == ROOT / "examples" / "digits" / "digits_valid.npz"
    # the build directory's config repeats the build
    again = fpgagen.build(str(out / "config.resolved.yaml"), out=tmp_path, progress=False)
    assert again.summary()["layers"] == b.summary()["layers"]
    assert yaml.safe_load((tmp_path / "config.resolved.yaml").read_text())["model"] == \
        Path(os.path.relpath(ROOT / "examples" / "digits" / "digits_cnn.onnx", tmp_path)).as_posix()


def test_graphs_and_layers_print_short(cnn_build):
    b, _ = cnn_build
    g, q = b.graph, b.qgraph
    assert repr(g) == "Graph('digits_cnn', 6 layers, input 'input' [1, 8, 8] -> output 'logits' [10])"
    assert repr(q) == "QGraph('digits_cnn', 6 layers, input 'input' [1, 8, 8] u8.8 -> output 'logits' [10] s8.3)"
    assert repr(g.nodes[0]) == ("Node('/conv1/Conv', conv, weight [8, 1, 3, 3], bias [8], relu, "
                                "'input' -> '/Relu_output_0')")
    assert repr(q.layers[0]).startswith("QLayer('/conv1/Conv', conv, weight [8, 1, 3, 3], bias [8], relu, "
                                        "'input' -> '/Relu_output_0': conv, in u8.8, out ")
    assert len(repr(g.nodes)) < 1000 and len(repr(q.layers)) < 1500 and "array(" not in repr(q.layers)
    text = str(q)  # print(q): one line per layer
    assert text.splitlines()[0] == "integer model digits_cnn: input input [1, 8, 8] as u8.8"
    assert len(text.splitlines()) == 1 + len(q.layers) and "+relu" in text.splitlines()[1]
    assert str(g).splitlines()[0] == "model digits_cnn: input input (1, 8, 8)" and len(str(g)) < 1000
    import dataclasses

    long = dataclasses.replace(g.nodes[0], name="n" * 5000)
    assert len(repr(long)) < 200 and "..." in repr(long)


def test_verify_help_lists_the_targets(capsys):
    from fpgagen.cli import main
    from fpgagen.config import TARGETS

    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse may wrap at a hyphen
    assert f"targets to verify: any of {', '.join(TARGETS)} (default: the config's `targets`)" in text
    assert TARGETS == ("verilog", "hls", "c", "verilog-netlist")
