"""The one identifier sanitiser and the escapes for comments and string literals."""

import re
import subprocess
import shutil

import pytest

from fpgagen.names import MAX_IDENT, RESERVED, Namespace, c_string, ident, quoted, shorten, unique_idents, verilog_string

HOSTILE = ["/conv1/Conv", "a.b", "a-b", "a_b", "A_B", "卷积层", "层", "x*/y", "q'\"\\", "line\nbreak",
           "`define", "#include", "int", "module", "wire", "9lives", "", "_", "x" * 5000, "d", "d_2", "d"]


def test_ident_is_a_safe_identifier():
    for name in HOSTILE:
        out = ident(name)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", out), (name, out)
        assert len(out) <= MAX_IDENT
        assert out.lower() not in RESERVED


def test_ident_readable():
    assert ident("/conv1/Conv") == "conv1_Conv"
    assert ident("9lives") == "n9lives"
    assert ident("int") == "int_"
    assert ident("") == "t"
    long = ident("x" * 5000)
    assert long.startswith("xxxx") and long != ident("x" * 4999)


def test_namespace_never_repeats_and_never_creates_the_clash():
    ns = Namespace(reserved=["top"])
    got = [ns.unique(n) for n in HOSTILE + ["top", "TOP", "d_2_2"]]
    assert len({g.lower() for g in got}) == len(got)
    assert "top" not in {g.lower() for g in got}
    # names that differ only in case or collide after sanitising
    assert unique_idents(["a.b", "a-b", "a_b"]) == {"a.b": "a_b", "a-b": "a_b_2", "a_b": "a_b_3"}
    assert unique_idents(["d", "d_2", "x"]) == {"d": "d", "d_2": "d_2", "x": "x"}
    with pytest.raises(ValueError, match="listed twice"):
        unique_idents(["d", "d"])


def test_quoted_is_comment_safe():
    for name in HOSTILE:
        q = quoted(name)
        assert q.startswith("'") and q.endswith("'")
        assert "*/" not in q and "/*" not in q and "\n" not in q
        assert all(" " <= ch <= "~" for ch in q)
    assert quoted("/conv1/Conv") == "'/conv1/Conv'"
    assert len(quoted("x" * 5000)) <= 90
    assert shorten("abc") == "abc"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_escapes_compile_in_c(tmp_path):
    lines = []
    for i, name in enumerate(HOSTILE):
        lines.append(f"// layer {quoted(name)}\n/* layer {quoted(name)} */")
        lines.append(f'static const char s{i}[] = "{c_string(name)}";')
    lines.append("const char *all[] = {" + ", ".join(f"s{i}" for i in range(len(HOSTILE))) + "};")
    lines.append("int main(void) { return 0; }")
    src = tmp_path / "n.c"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wno-unused",
                    "-o", str(tmp_path / "n"), str(src)], check=True)
    # the literal holds the name's UTF-8 bytes exactly
    src2 = tmp_path / "p.c"
    src2.write_text('#include <stdio.h>\nint main(void){fputs("' + c_string("q'\"\\\n卷?") + '", stdout);return 0;}\n')
    subprocess.run(["gcc", "-o", str(tmp_path / "p"), str(src2)], check=True)
    assert subprocess.run([str(tmp_path / "p")], capture_output=True).stdout == "q'\"\\\n卷?".encode()
    assert len(c_string("x" * 5000)) <= 200


def test_verilog_string_has_no_backtick_or_raw_quote():
    s = verilog_string('`define "x"\\')
    assert "`" not in s and '\\"' in s
