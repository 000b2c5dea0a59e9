"""Fixed-point format strings: parsing, the canonical spelling, ranges and errors (SPEC.md 1)."""

import pytest

from fpgagen.errors import FormatError, FpgagenError
from fpgagen.ir.format import MAX_WORD, Format, as_format


@pytest.mark.parametrize(
    "text, signed, word, frac",
    [
        ("s8.3", True, 8, 3),
        ("u8.4", False, 8, 4),
        ("s32.11", True, 32, 11),
        ("s8.-2", True, 8, -2),
        ("u1.0", False, 1, 0),
        ("s2.40", True, 2, 40),
        ("u32.-7", False, 32, -7),
    ],
)
def test_parse_and_canonical_round_trip(text, signed, word, frac):
    fmt = Format.parse(text)
    assert (fmt.signed, fmt.word, fmt.frac) == (signed, word, frac)
    assert fmt == Format(signed, word, frac)
    assert str(fmt) == text
    assert Format.parse(str(fmt)) == fmt
    assert repr(fmt) == f"Format({text!r})"


def test_every_format_round_trips():
    for signed in (False, True):
        for word in range(2 if signed else 1, MAX_WORD + 1):
            for frac in range(-40, 41):
                fmt = Format(signed, word, frac)
                assert Format.parse(str(fmt)) == fmt


def test_non_canonical_spellings_parse_to_the_canonical_one():
    # surrounding blanks and leading zeros are accepted; the canonical string has neither
    assert str(Format.parse("  s8.3 ")) == "s8.3"
    assert str(Format.parse("s08.03")) == "s8.3"
    assert str(Format.parse("u8.-02")) == "u8.-2"


def test_format_passes_through_and_is_a_hashable_value():
    fmt = Format.parse("s8.3")
    assert Format.parse(fmt) is fmt
    assert as_format("s8.3") == fmt
    assert len({Format.parse("s8.3"), Format(True, 8, 3), Format.parse("u8.3")}) == 2
    with pytest.raises(AttributeError):
        fmt.frac = 4  # frozen


def test_ranges_and_bits_of_s8_3():
    fmt = Format.parse("s8.3")
    assert (fmt.min_int, fmt.max_int) == (-128, 127)
    assert (fmt.min_value, fmt.max_value) == (-16.0, 15.875)
    assert fmt.lsb == 0.125
    assert fmt.msb == 3
    assert list(fmt.bits()) == [3, 2, 1, 0, -1, -2, -3]
    assert Format.from_msb(3, signed=True) == fmt


def test_ranges_of_unsigned_and_negative_frac():
    fmt = Format.parse("u8.4")
    assert (fmt.min_int, fmt.max_int, fmt.msb) == (0, 255, 3)
    assert list(fmt.bits()) == [3, 2, 1, 0, -1, -2, -3, -4]
    assert Format.from_msb(3, signed=False) == fmt
    big = Format.parse("s8.-2")
    assert (big.lsb, big.max_value, big.min_value, big.msb) == (4.0, 508.0, -512.0, 8)
    wide = Format.parse("u32.0")
    assert wide.max_int == 2**32 - 1


@pytest.mark.parametrize(
    "text",
    ["", "s8", "8.3", "x8.3", "S8.3", "s8.3.1", "s-8.3", "s8,3", "s8.3x", "s 8.3", "q8.3", "s8.+3"],
)
def test_unknown_format_string(text):
    with pytest.raises(FormatError, match=r"unknown fixed-point format .*expected 's<word>\.<frac>' or 'u<word>\.<frac>', e\.g\. 's8\.3'"):
        Format.parse(text)


def test_unknown_format_string_names_what_was_given():
    with pytest.raises(FormatError, match=r"unknown fixed-point format 'int8'"):
        Format.parse("int8")


def test_format_error_is_a_user_error():
    with pytest.raises(FpgagenError):
        Format.parse("int8")
    with pytest.raises(ValueError):  # FormatError is also a ValueError
        Format.parse("int8")


@pytest.mark.parametrize("value", [8.3, 8, None, b"s8.3", ("s", 8, 3)])
def test_non_string_format(value):
    with pytest.raises(FormatError, match=r"a fixed-point format must be a string such as 's8\.3', not "):
        Format.parse(value)


@pytest.mark.parametrize("text, word", [("s0.3", 0), ("u0.0", 0), ("s33.3", 33), ("u64.0", 64)])
def test_word_length_out_of_range_from_string(text, word):
    with pytest.raises(FormatError, match=rf"^Format word length must be between 1 and 32 bits, not {word}$"):
        Format.parse(text)


@pytest.mark.parametrize("word", [0, -1, 33, 1000])
def test_word_length_out_of_range_from_fields(word):
    with pytest.raises(FormatError, match=rf"word length must be between 1 and 32 bits, not {word}$"):
        Format(True, word, 0)


def test_word_length_limits_are_accepted():
    assert str(Format(False, 1, 0)) == "u1.0"
    assert str(Format(True, 32, 0)) == "s32.0"


def test_signed_one_bit():
    with pytest.raises(FormatError, match=r"a signed format needs at least 2 bits \(sign \+ one bit\), not 1"):
        Format.parse("s1.0")


def test_field_types():
    with pytest.raises(FormatError, match=r"Format signed must be a bool, not 1"):
        Format(1, 8, 3)
    with pytest.raises(FormatError, match=r"Format word must be an integer, not 8\.0"):
        Format(True, 8.0, 3)
    with pytest.raises(FormatError, match=r"Format frac must be an integer, not True"):
        Format(True, 8, True)
