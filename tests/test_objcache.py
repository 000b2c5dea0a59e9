"""fpgagen.objcache, the OBJCACHE wrapper that reuses Verilator's runtime objects across builds.

A fake compiler (a script that logs each call and writes an object naming its inputs) stands in
for g++: a compile of a source outside the build directory is stored once and restored (object
and dependency file) on the next identical compile; a changed flag, source, build-directory
header the source includes, or include-directory file is a miss; the design's own sources (in
the build directory) and anything but a plain ``-c -o X.o source`` compile pass straight
through; ``FPGAGEN_OBJCACHE=off`` disables it; parallel compiles of one key all succeed; files
get the umask's permissions. The real thing runs in every Verilator test (toolchain.verilator_env).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fpgagen import objcache
from fpgagen.toolchain import objcache_command, verilator_env

SCRIPT = Path(objcache.__file__)
FAKE_CC = """#!{python}
import sys, pathlib
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
out = args[args.index("-o") + 1]
src = [a for a in args if a.endswith(".cpp")][0]
text = pathlib.Path(src).read_text()
hdr = pathlib.Path("Vtop.h").read_text() if pathlib.Path("Vtop.h").exists() else ""
pathlib.Path(out).write_text("object of " + src + " " + str(len(text)) + " " + hdr)
pathlib.Path(out[:-2] + ".d").write_text(out + ": " + src + "\\n")
"""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    cc = tmp_path / "fakecc"
    log = tmp_path / "calls.log"
    cc.write_text(FAKE_CC.format(python=sys.executable, log=str(log)))
    cc.chmod(0o755)
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "verilated.cpp").write_text('#include "verilated.h"\n#include "Vtop.h"\nint x;\n')
    (inc / "verilated.h").write_text('#include "verilated_config.h"\n')
    build = tmp_path / "obj_dir"
    build.mkdir()
    (build / "Vtop.h").write_text("class Vtop;\n")
    cache = tmp_path / "cache"
    monkeypatch.setenv("FPGAGEN_OBJCACHE", str(cache))
    return cc, log, inc, build, cache


def compile_(cc, inc, build, src=None, flags=("-O1",), obj="verilated.o"):
    src = src or inc / "verilated.cpp"
    cmd = [sys.executable, str(SCRIPT), str(cc), *flags, "-I.", f"-I{inc}", "-MMD", "-c", "-o", obj, str(src)]
    return subprocess.run(cmd, cwd=build, capture_output=True, text=True, check=False)


def calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_runtime_object_is_compiled_once_and_restored(setup):
    cc, log, inc, build, cache = setup
    assert compile_(cc, inc, build).returncode == 0 and calls(log) == 1
    first = (build / "verilated.o").read_text()
    assert len(list(cache.glob("*.o"))) == 1 and len(list(cache.glob("*.d"))) == 1
    for f in ("verilated.o", "verilated.d"):
        (build / f).unlink()
    other = build.parent / "obj_dir2"  # another build directory of the same design
    other.mkdir()
    (other / "Vtop.h").write_text("class Vtop;\n")
    assert compile_(cc, inc, other).returncode == 0 and calls(log) == 1  # from the cache
    assert (other / "verilated.o").read_text() == first and (other / "verilated.d").is_file()
    assert compile_(cc, inc, build).returncode == 0 and calls(log) == 1


@pytest.mark.parametrize("change", ["flag", "source", "build header", "include dir"])
def test_anything_that_changes_the_object_is_a_miss(setup, change):
    cc, log, inc, build, cache = setup
    compile_(cc, inc, build)
    flags = ("-O1",)
    if change == "flag":
        flags = ("-O2",)
    elif change == "source":
        (inc / "verilated.cpp").write_text('#include "verilated.h"\n#include "Vtop.h"\nint y;\n')
    elif change == "build header":  # the design's Vtop.h, included by the source
        (build / "Vtop.h").write_text("class Vtop { int port; };\n")
    else:
        (inc / "verilated_config.h").write_text("#define X 1\n")
    assert compile_(cc, inc, build, flags=flags).returncode == 0 and calls(log) == 2


def test_the_designs_own_sources_and_other_commands_pass_through(setup):
    cc, log, inc, build, cache = setup
    (build / "Vtop__ALL.cpp").write_text("int z;\n")
    for _ in range(2):
        assert compile_(cc, inc, build, src=build / "Vtop__ALL.cpp", obj="Vtop__ALL.o").returncode == 0
    assert calls(log) == 2 and not cache.exists()
    res = subprocess.run([sys.executable, str(SCRIPT), str(cc), "-o", "x.o", str(inc / "verilated.cpp")],
                         cwd=build, capture_output=True, text=True, check=False)  # no -c: a link
    assert res.returncode == 0 and calls(log) == 3 and not cache.exists()


def test_off_disables_the_cache(setup, monkeypatch):
    cc, log, inc, build, cache = setup
    monkeypatch.setenv("FPGAGEN_OBJCACHE", "off")
    for _ in range(2):
        assert compile_(cc, inc, build).returncode == 0
    assert calls(log) == 2 and not cache.exists()


def test_a_failing_compile_is_not_stored(setup):
    cc, log, inc, build, cache = setup
    (inc / "broken.cpp").write_text("int broken;\n")
    cc.write_text(cc.read_text() + "sys.exit(1)\n")  # writes its object, then fails
    res = compile_(cc, inc, build, src=inc / "broken.cpp", obj="broken.o")
    assert res.returncode == 1 and calls(log) == 1
    assert not cache.exists() or not list(cache.glob("*.o"))


def test_parallel_compiles_of_one_key_all_succeed(setup):
    cc, log, inc, build, cache = setup
    dirs = []
    for i in range(6):
        d = build.parent / f"w{i}"
        d.mkdir()
        (d / "Vtop.h").write_text("class Vtop;\n")
        dirs.append(d)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda d: compile_(cc, inc, d), dirs))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    texts = {(d / "verilated.o").read_text() for d in dirs}
    assert len(texts) == 1 and len(list(cache.glob("*.o"))) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_files_get_the_umask_permissions(setup):
    cc, log, inc, build, cache = setup
    old = os.umask(0o022)
    try:
        compile_(cc, inc, build)
        (build / "verilated.o").unlink()
        compile_(cc, inc, build)
    finally:
        os.umask(old)
    for p in [*cache.glob("*.o"), build / "verilated.o"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_verilator_env_names_the_wrapper(monkeypatch):
    monkeypatch.delenv("OBJCACHE", raising=False)
    assert str(SCRIPT) in objcache_command() and verilator_env()["OBJCACHE"] == objcache_command()
    monkeypatch.setenv("OBJCACHE", "ccache")  # the user's own choice wins
    assert verilator_env()["OBJCACHE"] == "ccache"
