"""A compiler wrapper that reuses Verilator's runtime objects across builds (``OBJCACHE``).

Every Verilator build compiles the same runtime (``verilated.cpp``, ``verilated_vpi.cpp``,
``verilated_threads.cpp``, ``verilated_dpi.cpp``) and cocotb's ``verilator.cpp`` main from
scratch: most of the build time of a small design. Verilator's makefile runs each compile as
``$(OBJCACHE) $(CXX) ...``; :func:`fpgagen.toolchain.verilator_env` sets ``OBJCACHE`` to this
script (run by path, standard library only, so it starts fast).

Only compiles of a source *outside* the build directory (the runtime, the cocotb main) are
cached; the design's own files are compiled as usual. The key is a SHA-256 of everything that
can change the object: the compiler (resolved path, size, mtime), the command line (with the
build directory's path taken out), the source's contents, every file of Verilator's include
directory (name, size, mtime) and the contents of every header of the build directory the
source can include (e.g. cocotb's main includes the design's ``Vtop.h``). Objects go into the
cache by an atomic rename, so parallel builds (pytest-xdist workers) never see a partial file;
two builds missing the same key both compile and store identical objects.

Cache directory: ``$FPGAGEN_OBJCACHE`` (``off`` disables it), else
``$XDG_CACHE_HOME/fpgagen/verilator-objects`` (``~/.cache/...``); at most :data:`MAX_ENTRIES`
objects are kept (the least recently used go first).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: objects kept in the cache (each with its dependency file)
MAX_ENTRIES = 400
#: bump to invalidate every stored object
VERSION = "1"
_INCLUDE = re.compile(rb'^\s*#\s*include\s*"([^"]+)"', re.M)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def cache_dir() -> Path | None:
    """Where objects are kept, or None when caching is off."""
    value = os.environ.get("FPGAGEN_OBJCACHE", "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fpgagen" / "verilator-objects"


def _parse(argv: list[str]) -> tuple[str, str] | None:
    """(source, object) of a plain ``-c -o X.o source.cpp`` compile, else None (not cached)."""
    if "-c" not in argv or "-o" not in argv:
        return None
    i = argv.index("-o")
    if i + 1 >= len(argv):
        return None
    obj = argv[i + 1]
    sources = [a for a in argv[1:] if a.endswith((".cpp", ".cc", ".c")) and not a.startswith("-")]
    if len(sources) != 1 or not obj.endswith(".o") or "/" in obj:
        return None
    return sources[0], obj


def _stat_line(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _includes(text: bytes) -> set[str]:
    return {m.decode("utf-8", "replace") for m in _INCLUDE.findall(text)}


def key(argv: list[str], source: Path, build_dir: Path) -> str | None:
    """The cache key of this compile, None when it cannot be cached safely."""
    compiler = shutil.which(argv[0])
    if compiler is None:
        return None
    h = hashlib.sha256()
    h.update(f"fpgagen-objcache {VERSION}\n".encode())
    h.update((_stat_line(Path(os.path.realpath(compiler))) + "\n").encode())
    build = str(build_dir)
    h.update("\0".join(a.replace(build, "<build>") for a in argv).encode() + b"\n")
    text = source.read_bytes()
    h.update(hashlib.sha256(text).digest())
    # every include directory named with -I outside the build directory: its files' stamps
    names = _includes(text)
    for arg in argv:
        if arg.startswith("-I") and len(arg) > 2:
            d = Path(arg[2:])
            if not d.is_absolute() or d.resolve() == build_dir or not d.is_dir():
                continue
            for entry in sorted(d.iterdir()):
                if entry.is_file():
                    h.update((_stat_line(entry) + "\n").encode())
                    if entry.suffix in (".h", ".hpp"):
                        names |= _includes(entry.read_bytes())
    # the build directory's headers the source (or any runtime header) may include, transitively
    seen: set[str] = set()
    pending = sorted(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        local = build_dir / name
        if local.is_file():
            data = local.read_bytes()
            h.update(f"{name}\0".encode() + hashlib.sha256(data).digest())
            pending += sorted(_includes(data) - seen)
    return h.hexdigest()


def _store(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary file and an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as a plain write would create it (mkstemp: 0600)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prune(cache: Path) -> None:
    objs = sorted(cache.glob("*.o"), key=lambda p: p.stat().st_mtime)
    for old in objs[: max(0, len(objs) - MAX_ENTRIES)]:
        old.unlink(missing_ok=True)
        old.with_suffix(".d").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """Run the compile ``argv`` (``OBJCACHE`` prefix: argv[0] is the compiler), from the cache
    when the same compile was stored before."""
    if not argv:
        print("usage: objcache.py COMPILER ARGS...", file=sys.stderr)
        return 2
    cache = cache_dir()
    parsed = _parse(argv)
    build_dir = Path.cwd().resolve()
    if cache is None or parsed is None:
        return subprocess.call(argv)
    source, obj = Path(parsed[0]), parsed[1]
    if not source.is_absolute() or source.resolve().parent == build_dir or not source.is_file():
        return subprocess.call(argv)  # the design's own files: compiled as usual
    try:
        k = key(argv, source, build_dir)
    except OSError:
        k = None
    if k is None:
        return subprocess.call(argv)
    cached_o, cached_d = cache / f"{k}.o", cache / f"{k}.d"
    dep = Path(obj).with_suffix(".d")
    if cached_o.is_file() and cached_d.is_file():
        try:
            _store(cached_d, build_dir / dep)
            _store(cached_o, build_dir / obj)
            os.utime(cached_o)  # recently used
            return 0
        except OSError:
            pass  # fall through: compile
    code = subprocess.call(argv)
    if code == 0 and (build_dir / obj).is_file():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if (build_dir / dep).is_file():
                _store(build_dir / dep, cached_d)
            else:
                cached_d.write_text("")
            _store(build_dir / obj, cached_o)  # the object last: a stored .o always has its .d
            _prune(cache)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
