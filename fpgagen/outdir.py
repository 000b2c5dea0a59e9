"""Writing a build directory: all files or none, nothing half-written.

Generators render every file into memory first (a :class:`FileSet`). :meth:`FileSet.write`
then checks every destination (no file where a directory must go, no directory where a file
must go), writes every file into a staging directory inside the output directory, and only
then swaps them in, one rename each; if anything fails on the way, the files already swapped
are put back, so the directory holds exactly the previous build. Files fpgagen did not write
are never touched. Files get the user's umask (0644 under umask 022).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fpgagen.errors import FpgagenError, OutputError

#: the staging directory's name prefix inside an output directory (removed after every write)
STAGING_PREFIX = ".fpgagen-staging-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _oserror(path: Path, exc: OSError, doing: str) -> OutputError:
    return OutputError(f"{path}: cannot {doing}: {exc.strerror or exc}")


def check_output_dir(root: Path | str, key: str = "output directory") -> Path:
    """``root`` as a usable output directory path (it need not exist yet); else an OutputError."""
    if str(root) == "":
        raise OutputError(f"{key}: expected a directory path, got an empty string")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputError(f"{key} {root}: exists and is not a directory; expected a directory "
                          "(or a path where one can be created)")
    for parent in root.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{key} {root}: {parent} is a file, not a directory; cannot create "
                                  "the output directory under it")
            break
    return root


def _check_destinations(root: Path, relpaths) -> None:
    """Every file can land: its parents are directories (or absent), it is not a directory."""
    checked: set[Path] = set()
    for rel in relpaths:
        dest = root / rel
        for parent in reversed(dest.relative_to(root).parents[:-1]):
            p = root / parent
            if p in checked:
                continue
            checked.add(p)
            if (p.exists() or p.is_symlink()) and not p.is_dir():
                raise OutputError(f"{p}: is a file where fpgagen must write the directory {parent}/ "
                                  "(move it away or choose another output directory)")
        if dest.is_dir():
            raise OutputError(f"{dest}: is a directory where fpgagen must write the file {rel} "
                              "(move it away or choose another output directory)")


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """One file, atomically (a single-file :class:`FileSet`)."""
    path = Path(path)
    files = FileSet()
    files.add(path.name, data)
    files.write(path.parent)


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


class FileSet:
    """Files to write under one directory, keyed by relative path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, relpath: str, data: bytes | str) -> None:
        if relpath in self.files:
            raise FpgagenError(f"internal: {relpath} generated twice")
        parts = Path(relpath).parts
        if Path(relpath).is_absolute() or ".." in parts or not parts:
            raise FpgagenError(f"internal: {relpath!r} is not a path inside the output directory")
        self.files[relpath] = data.encode() if isinstance(data, str) else data

    def update(self, other: "FileSet", prefix: str = "") -> None:
        for rel, data in other.files.items():
            self.add(f"{prefix}{rel}", data)

    def write(self, root: Path | str) -> list[Path]:
        """Write every file under ``root``, all or none (see the module docstring)."""
        root = check_output_dir(root)
        rels = sorted(self.files)
        _check_destinations(root, rels)
        try:
            root.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
        except OSError as exc:
            raise _oserror(root, exc, "create the output directory") from None
        mode = 0o666 & ~_umask()
        swapped: list[tuple[Path, Path | None]] = []  # (destination, backup of the old file or None)
        created: list[Path] = []
        try:
            for i, rel in enumerate(rels):
                staged = stage / "new" / str(i)
                staged.parent.mkdir(exist_ok=True)
                with open(staged, "wb") as f:
                    f.write(self.files[rel])
                os.chmod(staged, mode)
            (stage / "old").mkdir()
            for i, rel in enumerate(rels):
                dest = root / rel
                for parent in reversed(Path(rel).parents[:-1]):
                    d = root / parent
                    if not d.is_dir():
                        d.mkdir()
                        created.append(d)
                backup = None
                if dest.exists() or dest.is_symlink():
                    backup = stage / "old" / str(i)
                    os.replace(dest, backup)
                swapped.append((dest, backup))
                os.replace(stage / "new" / str(i), dest)
        except BaseException as exc:
            for dest, backup in reversed(swapped):
                try:
                    if backup is not None:
                        os.replace(backup, dest)
                    elif dest.exists():
                        dest.unlink()
                except OSError:  # pragma: no cover - best effort: report the first failure
                    pass
            for d in reversed(created):
                try:
                    d.rmdir()
                except OSError:  # pragma: no cover
                    pass
            if isinstance(exc, OSError):
                raise _oserror(root, exc, "write the build (nothing was changed)") from None
            raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return [root / rel for rel in rels]
