"""Hostile input to the command line: every case a clear exit-2 message, nothing half-written.

Each test pins the wording a user sees: the file, key or path, what was expected, what was given.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml

from fpgagen import cli
from fpgagen.errors import OutputError
from fpgagen.outdir import FileSet, STAGING_PREFIX

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "digits"


def write_config(tmp_path: Path, filename="c.yaml", text: str | None = None, **changes) -> Path:
    raw = {
        "model": str(EXAMPLES / "digits_mlp.onnx"),
        "data": {"calibration": str(EXAMPLES / "digits_flat_calib.npz"),
                 "validation": str(EXAMPLES / "digits_flat_valid.npz"),
                 "preprocess": {"scale": 0.0625}, "samples": 64},
        "targets": [],
    }
    raw.update(changes)
    path = tmp_path / filename
    path.write_text(text if text is not None else yaml.safe_dump(raw))
    return path


def run(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["--quiet" if a == "--quiet" else a for a in argv])
    return code, capsys.readouterr().err


# -- output paths ------------------------------------------------------------------------------
def test_out_is_an_existing_file(tmp_path, capsys):
    cfg = write_config(tmp_path)
    (tmp_path / "f").write_text("x")
    code, err = run(capsys, "build", str(cfg), "-o", str(tmp_path / "f"), "--quiet")
    assert code == 2
    assert f"-o {tmp_path / 'f'}: exists and is not a directory; expected a directory" in err


def test_out_under_a_file(tmp_path, capsys):
    cfg = write_config(tmp_path)
    (tmp_path / "f").write_text("x")
    code, err = run(capsys, "calibrate", str(cfg), "-o", str(tmp_path / "f" / "sub" / "out"), "--quiet")
    assert code == 2
    assert f"{tmp_path / 'f'} is a file, not a directory; cannot create the output directory under it" in err


def test_empty_out_is_an_error(tmp_path, capsys):
    cfg = write_config(tmp_path)
    code, err = run(capsys, "build", str(cfg), "-o", "", "--quiet")
    assert code == 2
    assert "-o: expected a directory path, got an empty string" in err


def test_config_output_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    cfg = write_config(tmp_path, output="taken")
    code, err = run(capsys, "build", str(cfg), "--quiet")
    assert code == 2
    assert f"output {tmp_path / 'taken'}: exists and is not a directory" in err


def test_file_where_a_target_directory_must_go(tmp_path, capsys):
    cfg = write_config(tmp_path, targets=["c"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "c").write_text("not a directory")
    code, err = run(capsys, "build", str(cfg), "-o", str(out), "--quiet")
    assert code == 2
    assert f"{out / 'c'}: is a file where fpgagen must write the directory c/" in err
    assert sorted(p.name for p in out.iterdir()) == ["c"]  # nothing else written
    assert (out / "c").read_text() == "not a directory"


def test_directory_where_a_file_must_go(tmp_path, capsys):
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    (out / "summary.json").mkdir(parents=True)
    code, err = run(capsys, "calibrate", str(cfg), "-o", str(out), "--quiet")
    assert code == 2
    assert f"{out / 'summary.json'}: is a directory where fpgagen must write the file summary.json" in err
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "x\\y", "line\nbreak", "nul\0"])
def test_name_cannot_leave_the_output_directory(tmp_path, capsys, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, name=name)
    code, err = run(capsys, "build", str(cfg), "--quiet")
    assert code == 2
    assert "name: expected a build name usable as one directory name (no '/', '\\' or control characters" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


def test_config_file_name_cannot_name_the_build(tmp_path, capsys):
    cfg = write_config(tmp_path, filename="...yaml")
    code, err = run(capsys, "build", str(cfg), "--quiet")
    assert code == 2
    assert "name: the config file's name '..' cannot name the build; set `name:` to a build name" in err


# -- all or nothing ----------------------------------------------------------------------------
def test_failed_swap_restores_the_previous_build(tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = FileSet()
    for rel in ("a.txt", "c/b.txt", "c/z.txt"):
        old.add(rel, f"old {rel}")
    old.write(out)
    (out / "mine.txt").write_text("foreign")
    new = FileSet()
    for rel in ("a.txt", "c/b.txt", "c/new.txt", "c/z.txt"):
        new.add(rel, f"new {rel}")
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        if str(dst).endswith("z.txt") and STAGING_PREFIX not in str(dst) and not calls["n"]:
            calls["n"] += 1  # the disk fills up once, on the third file
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OutputError, match="cannot write the build \\(nothing was changed\\): No space left"):
        new.write(out)
    monkeypatch.setattr(os, "replace", real_replace)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["a.txt", "c/b.txt", "c/z.txt", "mine.txt"]
    assert (out / "a.txt").read_text() == "old a.txt" and (out / "c/z.txt").read_text() == "old c/z.txt"
    assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())


def test_files_get_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        f = FileSet()
        f.add("x/y.txt", "y")
        f.write(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x" / "y.txt").stat().st_mode) == 0o644


def test_internal_paths_stay_inside():
    f = FileSet()
    for bad in ("../x", "/abs", ""):
        with pytest.raises(Exception, match="not a path inside the output directory"):
            f.add(bad, "x")


# -- malformed config and data -----------------------------------------------------------------
def test_config_not_utf8(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(b"name: caf\xe9\n")
    code, err = run(capsys, "build", str(cfg))
    assert code == 2
    assert f"{cfg}: expected UTF-8 text, found byte 0xe9 at offset 9" in err


def test_config_duplicate_key(tmp_path, capsys):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("model: a.onnx\ntargets: [c]\nmodel: b.onnx\n")
    code, err = run(capsys, "build", str(cfg))
    assert code == 2
    assert "found the key 'model' twice (first at line 1); YAML would silently keep the last" in err


def test_config_alias_bomb_fails_fast(tmp_path, capsys):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    code, err = run(capsys, "build", str(cfg))
    assert code == 2
    assert "the config holds more than 100,000 values (YAML aliases expanded)" in err
    assert len(err) < 400


def test_config_too_big(tmp_path, capsys):
    cfg = tmp_path / "big.yaml"
    cfg.write_text("# " + "x" * (2 << 20) + "\n")
    code, err = run(capsys, "build", str(cfg))
    assert code == 2
    assert "config is 2,097,155 bytes; expected at most 1,048,576" in err


def test_huge_value_is_shortened_in_the_message(tmp_path, capsys):
    cfg = write_config(tmp_path, targets="v" * 100_000)
    code, err = run(capsys, "build", str(cfg))
    assert code == 2
    assert "targets: expected a list of targets from verilog, hls, c, verilog-netlist, got 'vvvv" in err
    assert len(err) < 500


def test_config_is_a_directory(tmp_path, capsys):
    code, err = run(capsys, "build", str(tmp_path))
    assert code == 2 and f"{tmp_path}: config file is a directory, not a file" in err


@pytest.mark.parametrize("array, expected", [
    (np.float32(3.0), "x has shape []; expected [N, 64] (a batch of samples)"),
    (np.array([1, "a"], dtype=object), "cannot read data as .npz/.npy: Object arrays cannot be loaded"),
])
def test_bad_npy(tmp_path, capsys, array, expected):
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    cfg = write_config(tmp_path, data={"calibration": str(tmp_path / "x.npy")})
    code, err = run(capsys, "calibrate", str(cfg), "-o", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert "data.calibration" in err and expected in err
    assert not (tmp_path / "out").exists()


# -- labels, parallelism keys ------------------------------------------------------------------
def test_data_that_is_not_numpy(tmp_path, capsys):
    (tmp_path / "x.npz").write_text("hello")
    cfg = write_config(tmp_path, data={"calibration": str(tmp_path / "x.npz")})
    code, err = run(capsys, "calibrate", str(cfg), "-o", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert "x.npz: cannot read data as .npz/.npy: not a NumPy array file, or it holds Python objects" in err


def test_labels_outside_the_classes(tmp_path, capsys):
    with np.load(EXAMPLES / "digits_flat_valid.npz") as f:
        x, y = f["x"], f["y"].copy()
    y[3] = 12
    np.savez(tmp_path / "v.npz", x=x, y=y)
    cfg = write_config(tmp_path, data={"calibration": str(EXAMPLES / "digits_flat_calib.npz"),
                                       "validation": str(tmp_path / "v.npz"), "samples": 64})
    code, err = run(capsys, "build", str(cfg), "-o", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert "data.validation: labels y range from 0 to 12, but the model's output" in err
    assert "has 10 classes (labels 0 to 9); top-1 accuracy would be wrong" in err
    assert not (tmp_path / "out").exists()


def test_validation_without_labels_warns(tmp_path, capsys):
    with np.load(EXAMPLES / "digits_flat_valid.npz") as f:
        np.savez(tmp_path / "v.npz", x=f["x"][:50])
    cfg = write_config(tmp_path, data={"calibration": str(EXAMPLES / "digits_flat_calib.npz"),
                                       "validation": str(tmp_path / "v.npz"), "samples": 64})
    code = cli.main(["build", str(cfg), "-o", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    assert "fpgagen: warning: data.validation:" in captured.err
    assert "holds no labels 'y': top-1 accuracy is not measured" in captured.err
    assert "top-1" not in captured.out  # no 0.00 % accuracy printed
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["accuracy"] == {"float": None, "fixed": None} and len(s["warnings"]) == 1


def test_unknown_parallelism_layer_without_targets(tmp_path, capsys):
    cfg = write_config(tmp_path, parallelism={"layers": {"nope": {"pe": 2}}})
    code, err = run(capsys, "build", str(cfg), "-o", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert "parallelism.layers.nope: no layer named 'nope'; layers are: " in err
    assert not (tmp_path / "out").exists()


def test_unreadable_config_is_exit_2(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    cfg = write_config(tmp_path)
    cfg.chmod(0)
    code, err = run(capsys, "build", str(cfg))
    assert code == 2 and "cannot read the config: Permission denied" in err
