"""The YAML config: resolution of defaults and the wording of every error a user can provoke."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from fpgagen.config import SCHEMA, load_config, resolve_config, schema_rows
from fpgagen.data import fit_shape, load_data
from fpgagen.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not really onnx; the config only checks the path")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    return tmp_path


def write(project, text: str) -> Path:
    path = project / "build.yaml"
    path.write_text(text)
    return path


MINIMAL = """\
model: model.onnx
data:
  calibration: calib.npz
  validation: calib.npz
  preprocess: {scale: 0.00392156862745098, offset: 0.0}
quantization:
  word_length: 8
targets: []
"""


def test_issue_example_resolves_with_defaults(project):
    cfg = load_config(write(project, MINIMAL))
    assert cfg["name"] == "build"
    assert cfg["model"] == str(project / "model.onnx")
    assert cfg["data"]["calibration"] == str(project / "calib.npz")
    assert cfg["data"]["preprocess"] == {"scale": 0.00392156862745098, "offset": 0.0}
    assert cfg["quantization"]["word_length"] == 8
    assert cfg["quantization"]["method"] == "mse"
    assert cfg["quantization"]["layers"] == {}
    assert cfg["targets"] == []
    assert cfg["parallelism"] == {"pe": 1, "simd": 1, "taps": None, "layers": {}, "auto": False, "multipliers": None,
                                  "target_cycles": None, "target_fps": None}


@pytest.mark.parametrize(
    "text, message",
    [
        (MINIMAL + "extra: 1\n", r"build.yaml: extra: unknown key; expected one of name, model"),
        (MINIMAL.replace("word_length: 8", "word_length: eight"),
         r"build.yaml: quantization.word_length: expected an integer between 2 and 16, got 'eight'"),
        (MINIMAL.replace("word_length: 8", "word_length: 0"),
         r"quantization.word_length: expected an integer between 2 and 16, got 0"),
        (MINIMAL.replace("word_length: 8", "wordlength: 8"),
         r"quantization.wordlength: unknown key; expected one of word_length, method"),
        (MINIMAL.replace("word_length: 8", "method: best"),
         r"quantization.method: expected one of max, coverage, mse, got 'best'"),
        (MINIMAL.replace("calib.npz\n  validation", "missing.npz\n  validation"),
         r"data.calibration: file 'missing.npz' not found \(looked for .*missing.npz\)"),
        (MINIMAL.replace("model: model.onnx\n", ""), r"build.yaml: model: missing; Path of the ONNX model"),
        (MINIMAL.replace("scale: 0.00392156862745098", "scale: 0"),
         r"data.preprocess.scale: expected a non-zero number, got 0"),
        (MINIMAL.replace("targets: []", "targets: [vhdl]"),
         r"targets: expected a list of targets from verilog, hls, c, verilog-netlist, got \['vhdl'\]"),
        (MINIMAL.replace("word_length: 8", "layers: {conv1: {output: q8.3}}"),
         r"quantization.layers.conv1.output: expected a fixed-point format such as 's8.3'"),
        (MINIMAL.replace("word_length: 8", "layers: {conv1: {outptu: s8.3}}"),
         r"quantization.layers.conv1.outptu: unknown key; expected one of output, weight, bias"),
        (MINIMAL + "parallelism: {layers: {conv1: {pe: 0}}}\n",
         r"parallelism.layers.conv1.pe: expected a positive integer, got 0"),
        ("- just\n- a list\n", r"build.yaml: top level: expected a mapping"),
        ("model: [unclosed\n", r"build.yaml: not valid YAML"),
    ],
)
def test_config_errors_name_file_key_expected_and_given(project, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(project, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_builtin_dataset_needs_no_file(project):
    cfg = resolve_config({"model": "model.onnx", "data": {"calibration": "sklearn-digits:train"}}, "x.yaml", project)
    assert cfg["data"]["calibration"] == "sklearn-digits:train"
    x, y = load_data("sklearn-digits:test", "data.validation", (1, 8, 8), 1 / 16, 0.0)
    assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32 and float(x.max()) == 1.0
    assert len(y) == len(x) and 400 < len(x) < 500
    xf, _ = load_data("sklearn-digits:test", "data.validation", (64,), 1 / 16, 0.0)
    assert np.array_equal(xf.reshape(-1, 1, 8, 8), x)


def test_data_shape_rules():
    assert fit_shape(np.zeros((5, 1, 8, 8)), (1, 8, 8), "k").shape == (5, 1, 8, 8)
    assert fit_shape(np.zeros((5, 8, 8)), (1, 8, 8), "k").shape == (5, 1, 8, 8)  # channel axis of 1
    with pytest.raises(ConfigError, match=re.escape("k: x has shape [5, 8, 8]; expected [N, 64] for the model input")):
        fit_shape(np.zeros((5, 8, 8)), (64,), "k")  # never a silent reshape
    with pytest.raises(ConfigError, match=re.escape("expected [N, 3, 8, 8] for the model input")):
        fit_shape(np.zeros((5, 8, 8)), (3, 8, 8), "k")


def test_data_errors(tmp_path):
    np.savez(tmp_path / "noy.npz", images=np.zeros((2, 8, 8)))
    with pytest.raises(ConfigError, match=r"expected an array named 'x' \(and optionally 'y'\), found \['images'\]"):
        load_data(str(tmp_path / "noy.npz"), "data.calibration", (1, 8, 8), 1.0, 0.0)
    np.savez(tmp_path / "bad_y.npz", x=np.zeros((2, 8, 8)), y=np.array([0.5, 1.0]))
    with pytest.raises(ConfigError, match=r"y must be integer labels of shape \[2\], got dtype float64"):
        load_data(str(tmp_path / "bad_y.npz"), "data.validation", (1, 8, 8), 1.0, 0.0)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match=r"data.calibration: .*junk.npz: cannot read data"):
        load_data(str(tmp_path / "junk.npz"), "data.calibration", (1, 8, 8), 1.0, 0.0)


def test_every_key_documented():
    rows = schema_rows()
    assert len(rows) >= 20
    for key, default, doc in rows:
        assert doc.endswith(".") or doc.endswith(")"), key
    assert ("quantization.word_length", "8", SCHEMA["quantization"]["word_length"].doc) in rows


def test_pyproject_lists_every_package():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(meta["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parent.parts) for p in (ROOT / "fpgagen").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"
    assert "fpgagen.templates" in listed and (ROOT / "templates" / "__init__.py").is_file()


def test_readme_config_table_matches_the_schema():
    from fpgagen.config import schema_rows

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for key, default, doc in schema_rows():
        assert f"| `{key}` | {default} | {doc} |" in readme, f"README config table is stale for {key}"
