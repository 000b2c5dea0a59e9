"""Writing a build directory: every file atomically, nothing half-written.

Generators render every file into memory first (a :class:`FileSet`); only when all of them
succeeded are they written, each to a temporary name in the same directory and then renamed.
Files fpgagen did not write are never deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from fpgagen.errors import FpgagenError


def atomic_write(path: Path | str, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


class FileSet:
    """Files to write under one directory, keyed by relative path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, relpath: str, data: bytes | str) -> None:
        if relpath in self.files:
            raise FpgagenError(f"internal: {relpath} generated twice")
        self.files[relpath] = data.encode() if isinstance(data, str) else data

    def update(self, other: "FileSet", prefix: str = "") -> None:
        for rel, data in other.files.items():
            self.add(f"{prefix}{rel}", data)

    def write(self, root: Path | str) -> list[Path]:
        root = Path(root)
        written = []
        for rel, data in sorted(self.files.items()):
            atomic_write(root / rel, data)
            written.append(root / rel)
        return written
