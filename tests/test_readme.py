"""The README's Python API section runs as written: every code block, from the repository root.

Each block runs in a fresh interpreter in a scratch directory that links the repository's
``configs/`` and ``examples/`` (so ``out/`` lands there, not in the checkout); a line of the form
``expr  # -> value`` must evaluate to ``value``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def api_blocks() -> list[str]:
    text = README.read_text()
    start = text.index("## Python API")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.S)
    assert len(blocks) >= 3, "the README's Python API section lost its code blocks"
    return blocks


CHECK = '''
import numpy as _np
def _check(line, got, want):
    same = _np.array_equal(got, want) if isinstance(got, _np.ndarray) else got == want
    assert same, f"README line {line}: got {got!r}, the README says {want!r}"
'''


def with_checks(block: str) -> str:
    """``block`` with every ``expr  # -> value`` line turned into an assertion."""
    lines = [CHECK]
    for i, line in enumerate(block.splitlines(), 1):
        m = re.match(r"^(\S.*?)\s+# -> (.*)$", line)
        if m and "=" not in m.group(1).split("(")[0]:
            expr, want = m.groups()
            want = re.sub(r"\barray\(", "_np.array(", want).replace("Format(", "fpgagen.Format.parse(")
            lines.append(f"_check({i}, ({expr}), {want})")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("index", range(len(api_blocks())))
def test_readme_python_block_runs_as_written(index, tmp_path):
    block = api_blocks()[index]
    for name in ("configs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    script = tmp_path / "block.py"
    script.write_text(with_checks(block))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"README block {index + 1} failed:\n{block}\n--- stderr:\n{r.stderr[-3000:]}"
    if "fpgagen.report(" in block:
        assert (tmp_path / "out" / "digits_cnn" / "report.html").is_file()


def test_checks_are_really_made():
    code = with_checks('fpgagen.quantize([16.25], "s8.3")        # -> array([127])\nx = 1  # -> 2\n')
    assert "_check(1, (fpgagen.quantize([16.25], \"s8.3\")), _np.array([127]))" in code
    assert "x = 1  # -> 2" in code  # an assignment is not an expression to check
