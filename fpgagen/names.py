"""Names from an ONNX model made safe for every generated language (Verilog, C, C++).

ONNX allows any string as a node, tensor or graph name: quotes, backslashes, newlines, ``*/``,
backticks, ``#``, unicode, 5,000 characters, keywords of the target language, names that differ
only in case or collide once non-identifier characters are replaced. Every backend turns names
into code through this module only:

- :func:`ident` a readable identifier base (``/conv1/Conv`` -> ``conv1_Conv``): ASCII letters,
  digits and ``_``, never a keyword of Verilog, SystemVerilog, C or C++, never starting with a
  digit, at most :data:`MAX_IDENT` characters (a long name keeps its head and a hash of the whole).
- :class:`Namespace` hands out identifiers unique in one scope (compared case-insensitively, so
  that they are also safe as file names on a case-insensitive file system); it never hands out
  an identifier it has handed out before or that is reserved, whatever order names arrive in.
- :func:`quoted` a name for a comment or a message: quoted, printable ASCII only, ``*/``,
  ``/*`` and backslashes escaped, shortened past :data:`MAX_SHOWN` characters; it never ends a
  line in a backslash (a C line splice) or a comment early.
- :func:`c_string` / :func:`verilog_string` a name as the body of a string literal.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: longest identifier base :func:`ident` returns (backends add short prefixes and suffixes)
MAX_IDENT = 40
#: longest name :func:`quoted` shows before it shortens the middle
MAX_SHOWN = 80
#: longest text :func:`c_string` / :func:`verilog_string` put into one literal
MAX_LITERAL = 200

# C99/C11 and C++20 keywords and alternative tokens.
_C_KEYWORDS = """
auto break case char const continue default do double else enum extern float for goto if inline int
long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local alignas alignof and and_eq asm bitand bitor bool catch char8_t char16_t char32_t class
compl concept consteval constexpr constinit const_cast co_await co_return co_yield decltype delete
dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq nullptr operator
or or_eq private protected public reinterpret_cast requires static_assert static_cast template this
thread_local throw true try typeid typename using virtual wchar_t xor xor_eq override final
main NULL EOF errno stdin stdout stderr assert offsetof
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t
""".split()

# Verilog-2005 and SystemVerilog-2017 keywords (Verilator reserves the SystemVerilog ones too).
_VERILOG_KEYWORDS = """
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before
begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class
clocking cmos config const constraint context continue cover covergroup coverpoint cross deassign
default defparam design disable dist do edge else end endcase endchecker endclass endclocking
endconfig endfunction endgenerate endgroup endinterface endmodule endpackage endprimitive endprogram
endproperty endspecify endsequence endtable endtask enum event eventually expect export extends
extern final first_match for force foreach forever fork forkjoin function generate genvar global
highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir include
initial inout input inside instance int integer interconnect interface intersect join join_any
join_none large let liblist library local localparam logic longint macromodule matches medium
modport module nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or
output package packed parameter pmos posedge primitive priority program property protected pull0
pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence
rcmos real realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0
rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint
shortreal showcancelled signed small soft solve specify specparam static string strong strong0
strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this
throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type
typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void
wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split()

#: every word no generated identifier may be (compared case-insensitively)
RESERVED = frozenset(w.lower() for w in _C_KEYWORDS + _VERILOG_KEYWORDS)


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def ident(name: str, max_len: int = MAX_IDENT) -> str:
    """A readable identifier base for ``name``; not unique by itself (see :class:`Namespace`)."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    out = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", ascii_name)).strip("_") or "t"
    if out[0].isdigit():
        out = "n" + out
    if len(out) > max_len:
        out = out[: max_len - 9].rstrip("_") + "_" + _digest(name)
    if out.lower() in RESERVED:
        out += "_"
    return out


class Namespace:
    """Identifiers unique within one scope.

    ``ns.unique(name)`` returns :func:`ident` ``(name)``, or with the first free suffix
    ``_2``, ``_3``, ... appended; identifiers are compared case-insensitively and never equal a
    reserved word or an identifier of ``reserved``.
    """

    def __init__(self, reserved=(), max_len: int = MAX_IDENT) -> None:
        self._used: set[str] = {r.lower() for r in reserved}
        self.max_len = max_len

    def __contains__(self, identifier: str) -> bool:
        return identifier.lower() in self._used

    def reserve(self, identifier: str) -> None:
        """Mark ``identifier`` (used verbatim elsewhere) as taken."""
        self._used.add(identifier.lower())

    def unique(self, name: str) -> str:
        base = ident(name, self.max_len)
        candidate, k = base, 2
        while candidate.lower() in self._used or candidate.lower() in RESERVED:
            candidate, k = f"{base}_{k}", k + 1
        self._used.add(candidate.lower())
        return candidate


def unique_idents(names, reserved=(), max_len: int = MAX_IDENT) -> dict[str, str]:
    """``{name: identifier}`` unique within the list (names must be distinct)."""
    ns = Namespace(reserved, max_len)
    out: dict[str, str] = {}
    for name in names:
        if name in out:
            raise ValueError(f"internal: name {quoted(name)} listed twice")
        out[name] = ns.unique(name)
    return out


def _escape(text: str) -> str:
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def shorten(text: str, max_len: int = MAX_SHOWN) -> str:
    """``text`` with its middle replaced by ``...`` past ``max_len`` characters."""
    text = str(text)
    if len(text) <= max_len:
        return text
    keep = max(max_len - 3, 2)
    return text[: keep - keep // 3] + "..." + text[len(text) - keep // 3:]


def fmt_shape(shape) -> str:
    """``[1, 8, 8]``: a shape as error messages show it."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def quoted(name: str, max_len: int = MAX_SHOWN) -> str:
    """``'name'`` for comments and messages: printable ASCII, escaped, shortened, never splicing."""
    body = _escape(shorten(str(name), max_len))
    # no comment delimiter can form, even across the quote characters around it
    body = body.replace("*/", "*\\/").replace("/*", "/\\*")
    return f"'{body}'"


def c_string(text: str, max_len: int = MAX_LITERAL) -> str:
    """The body of a C/C++ string literal (without the double quotes) holding ``text``
    (shortened past ``max_len`` characters: C99 compilers need take only 4,095)."""
    text = shorten(str(text), max_len)
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~" and ch != "?":  # '?' apart: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def verilog_string(text: str, max_len: int = MAX_LITERAL) -> str:
    """The body of a Verilog string literal (without the double quotes) holding ``text``
    (shortened past ``max_len`` characters)."""
    text = shorten(str(text), max_len)
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~" and ch != "`":
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)
