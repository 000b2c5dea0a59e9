"""The ``fpgagen`` command line: help, exit codes and the messages a mistyped config gets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fpgagen.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fpgagen.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT)


def write_cfg(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((CONFIGS / "digits_mlp.yaml").read_text())
    for key in ("model",):
        raw[key] = str((CONFIGS / raw[key]).resolve())
    for key in ("calibration", "validation"):
        raw["data"][key] = str((CONFIGS / raw["data"][key]).resolve())
    raw["targets"] = []
    raw.update(changes)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("command", [[], ["build"], ["calibrate"], ["verify"], ["report"]])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: fpgagen" in text
    assert "example" in text


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_print_config_shows_defaults(tmp_path, capsys):
    assert main(["build", str(write_cfg(tmp_path)), "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["quantization"]["word_length"] == 8
    assert cfg["quantization"]["method"] == "mse"
    assert cfg["data"]["batch_size"] == 256
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, message", [
    ({"quantisation": {}}, r"cfg\.yaml: quantisation: unknown key; expected one of name, model"),
    ({"quantization": {"word_length": "eight"}}, r"cfg\.yaml: quantization\.word_length: expected an integer"),
    ({"quantization": {"method": "best"}}, r"cfg\.yaml: quantization\.method: expected one of max, coverage, mse"),
    ({"model": "nope.onnx"}, r"cfg\.yaml: model: file 'nope\.onnx' not found"),
    ({"targets": ["vhdl"]}, r"cfg\.yaml: targets: expected .*verilog.*got \['vhdl'\]"),
])
def test_config_mistakes_exit_2_with_the_key_path(tmp_path, capsys, change, message):
    assert main(["build", str(write_cfg(tmp_path, **change)), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpgagen: error: ")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["build", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: config file not found" in capsys.readouterr().err


def test_build_calibrate_report_commands(tmp_path):
    cfg = write_cfg(tmp_path)
    out = tmp_path / "out"
    r = run("build", cfg, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("built digits_mlp: 3 layers -> ")
    assert "top-1 float 97.56 %" in r.stdout
    assert r.stderr == ""  # no progress bars when not on a terminal
    summary = json.loads((out / "summary.json").read_text())
    (out / "report.html").unlink()
    r = run("report", out)
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    r = run("calibrate", cfg, "-o", tmp_path / "cal")
    assert r.returncode == 0, r.stderr
    for layer in summary["layers"]:
        assert f"{layer['name']}" in r.stdout and layer["output"] in r.stdout


def test_report_of_a_directory_that_is_no_build(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a build directory: " in capsys.readouterr().err


def test_verify_without_targets_is_an_error(tmp_path, capsys):
    assert main(["verify", str(write_cfg(tmp_path)), "-o", str(tmp_path / "o")]) == 2
    assert "verify: no targets: name them with --targets" in capsys.readouterr().err


def test_verify_bad_samples(tmp_path, capsys):
    assert main(["verify", str(write_cfg(tmp_path)), "--samples", "0", "--targets", "c"]) == 2
    assert "--samples: expected a positive integer, got 0" in capsys.readouterr().err


def test_progress_bar_draws_on_a_terminal_only():
    import io

    from fpgagen.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        with Progress("calibrate", 4, stream=stream) as bar:
            bar.update(2)
            bar.update(2)
    assert pipe.getvalue() == ""
    lines = tty.getvalue().split("\r")
    assert "2/4" in lines[-2] and lines[-1].startswith("calibrate") and "4/4" in lines[-1]
    assert tty.getvalue().endswith("\n")
