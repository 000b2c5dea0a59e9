"""The MSB heat map: the grid and the outside-the-format masks it is drawn from, the PNG and the
report's SVG, determinism."""

import io
import re
import sys

import numpy as np
import pytest

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format
from fpgagen.quant.histogram import MsbHistogram, msb_histogram
from fpgagen.report.heatmap import heatmap_grid, heatmap_png, heatmap_svg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def seeds_row():
    return ("seeds", msb_histogram([0.03125, 2.1, 16.25]), Format.parse("s8.3"))


def network_rows():
    rng = np.random.default_rng(0)
    return [
        ("input", msb_histogram(rng.uniform(0, 1, 1000)), Format.parse("u8.8")),
        ("conv1.weight", msb_histogram(rng.standard_normal(500) * 0.1), Format.parse("s8.9")),
        ("conv1.bias", msb_histogram(rng.standard_normal(8) * 0.01), Format.parse("s8.10")),
        ("conv1 out", msb_histogram(np.maximum(rng.standard_normal(5000), 0) * 5), Format.parse("u8.5")),
        seeds_row(),
        ("no format", msb_histogram([1.0, 3.0, 0.0]), None),
    ]


# -- the grid ---------------------------------------------------------------------------------
def test_grid_of_the_worked_example():
    grid = heatmap_grid([seeds_row()])
    assert grid.labels == ["seeds"] and grid.formats == [Format.parse("s8.3")]
    assert grid.bits.tolist() == [4, 3, 2, 1, 0, -1, -2, -3, -4, -5]  # data 2^4..2^-5, format 2^3..2^-3
    assert grid.counts.tolist() == [[1, 0, 0, 1, 0, 0, 0, 0, 0, 1]]
    # s8.3 represents magnitude bits 2^3 .. 2^-3: grey above (16.25 saturates) and below (0.03125)
    assert grid.outside.tolist() == [[True] + [False] * 7 + [True, True]]
    assert grid.above.tolist() == [[True] + [False] * 9]  # 16.25 saturates: overflow
    assert grid.below.tolist() == [[False] * 8 + [True, True]]  # 0.03125 underflows
    assert grid.zeros.tolist() == [0]
    assert grid.bits[~grid.outside[0]].tolist() == list(Format.parse("s8.3").bits())


def test_grey_mask_is_exactly_each_rows_format():
    rows = network_rows()
    grid = heatmap_grid(rows)
    assert grid.counts.shape == grid.outside.shape == (len(rows), grid.bits.size)
    assert np.all(np.diff(grid.bits) == -1)  # contiguous, high bits first
    for i, (label, hist, fmt) in enumerate(rows):
        assert grid.labels[i] == label
        assert grid.counts[i].tolist() == [hist.count_at(int(b)) for b in grid.bits]
        assert grid.counts[i].sum() == hist.nonzero  # every value falls in a column
        if fmt is None:
            assert not grid.outside[i].any()
        else:
            representable = set(fmt.bits())
            assert grid.outside[i].tolist() == [int(b) not in representable for b in grid.bits]
            assert grid.bits[~grid.outside[i]].tolist() == list(range(fmt.msb, -fmt.frac - 1, -1))


def test_columns_cover_formats_beyond_the_data():
    grid = heatmap_grid([("x", msb_histogram([0.3, 0.2]), "u8.8"), ("y", msb_histogram([5.0]), None)])
    # data 2^2 .. 2^-3, u8.8 represents 2^-1 .. 2^-8
    assert grid.bits.tolist() == list(range(2, -9, -1))
    assert grid.outside[0].tolist() == [True, True, True] + [False] * 8
    assert grid.formats[0] == Format.parse("u8.8")  # strings are parsed


def test_grid_of_rows_without_values_or_formats():
    grid = heatmap_grid([("zeros", msb_histogram(np.zeros(4)), None), ("empty", MsbHistogram(), None)])
    assert grid.bits.tolist() == [0] and grid.counts.tolist() == [[0], [0]]
    assert not grid.outside.any()


# -- the PNG ----------------------------------------------------------------------------------
def decode(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_png_is_produced_and_decodes(tmp_path):
    pytest.importorskip("matplotlib")
    rows = network_rows()
    path = tmp_path / "heatmap.png"
    png = heatmap_png(rows, path, title="MSB histograms: test")
    assert png.startswith(PNG_SIGNATURE)
    assert 5_000 < len(png) < 2_000_000
    assert path.read_bytes() == png
    image = decode(png)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    height, width = image.shape[:2]
    assert 200 <= height <= 4000 and 500 <= width <= 4000
    # not blank: a coloured colormap and grey cells are drawn
    rgb = image[..., :3]
    assert (rgb.max(axis=2) - rgb.min(axis=2) > 0.3).mean() > 0.02  # saturated (coloured) pixels
    assert np.unique(rgb.reshape(-1, 3), axis=0).shape[0] > 50


def shaded_pixels(image: np.ndarray, kind: str) -> np.ndarray:
    """The light red (above the format: overflow) or light blue (below its LSB) cell faces."""
    r, g, b = (image[..., k] for k in range(3))
    if kind == "over":
        return (r > 0.8) & (r - b > 0.2) & (r - g > 0.15)
    return (b > 0.8) & (b - r > 0.2)


def test_shading_in_the_picture_matches_the_format():
    pytest.importorskip("matplotlib")
    other = ("b", msb_histogram([2.0**-8, 2.0**8]), None)  # columns 2^8 .. 2^-8: 17 cells
    plain = decode(heatmap_png([("a", msb_histogram([1.0]), None), other]))
    image = decode(heatmap_png([("a", msb_histogram([1.0]), "s8.3"), other]))
    assert shaded_pixels(plain, "over").mean() < 0.005 and shaded_pixels(plain, "under").mean() < 0.005
    over, under = shaded_pixels(image, "over"), shaded_pixels(image, "under")
    assert over.mean() > 0.04 and under.mean() > 0.04
    # one band of pixel rows (the top row, the one with a format) holds both shades
    rows = np.flatnonzero((over | under).sum(axis=1) > 0.2 * image.shape[1])
    assert rows.size > 10 and np.all(np.diff(rows) == 1) and rows[-1] < image.shape[0] / 2
    # s8.3: 5 cells above (2^8..2^4, red, left), 7 represented, 5 below (2^-4..2^-8, blue, right)
    red = np.flatnonzero(over[rows].sum(axis=0) > rows.size / 2)
    blue = np.flatnonzero(under[rows].sum(axis=0) > rows.size / 2)
    assert red.max() < blue.min()
    left, right, gap = red.max() - red.min() + 1, blue.max() - blue.min() + 1, blue.min() - red.max() - 1
    assert abs(left - right) <= 3
    assert gap / left == pytest.approx(7 / 5, rel=0.06)


def test_png_is_deterministic():
    pytest.importorskip("matplotlib")
    first = heatmap_png(network_rows(), title="t")
    again = heatmap_png(network_rows(), title="t")  # equal input built anew
    assert first == again
    assert b"Software" not in first and b"tIME" not in first  # no version, no timestamp
    assert heatmap_png(network_rows(), title="other") != first


def test_many_columns_stay_a_sane_size():
    pytest.importorskip("matplotlib")
    wide = msb_histogram(np.logspace(-40, 40, 500))  # about 266 bit positions
    png = heatmap_png([("wide", wide, "s8.3")])
    height, width = decode(png).shape[:2]
    assert width <= 3000 and height <= 1000


# -- the report's inline SVG -----------------------------------------------------------------------
def svg_cells(svg: str) -> list[tuple[str, str]]:
    """(fill, tooltip) of every grid cell, row by row."""
    return re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="30" height="20" fill="([^"]+)" stroke="[^"]+" '
                      r'stroke-width="1"><title>([^<]*)</title></rect>', svg)


def test_svg_rows_are_normalised_each_on_its_own():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(100_000)
    small, big = ("small", msb_histogram(values[:: 100_000 // 30][:30]), None), ("big", msb_histogram(values), None)
    grid = heatmap_grid([small, big])
    assert grid.shares.sum(axis=1) == pytest.approx([1.0, 1.0])
    svg = heatmap_svg([small, big])
    cells = svg_cells(svg)
    n = grid.bits.size
    assert len(cells) == 2 * n
    # the share's colour, not the count's: the row of 30 is as bright as the row of 100,000 where
    # it holds the same share, and its largest share is printed in %
    top_small, top_big = grid.shares[0].argmax(), grid.shares[1].argmax()
    assert cells[top_small][0] not in ("white",) and cells[n + top_big][0] != "white"
    assert f">{100 * grid.shares[0].max():.0f}</text>" in svg and f">{100 * grid.shares[1].max():.0f}</text>" in svg
    j = int(np.flatnonzero(grid.bits == 0)[0])
    assert f"MSB at 2^0: {grid.counts[1, j]} of 100000 non-zero values" in cells[n + j][1]


def test_svg_shades_overflow_and_underflow_apart_and_counts_zeros():
    hist = msb_histogram(np.array([0.0, 0.0, 0.0, 40.0, 1.0, 1.5, 2.0**-9]))
    svg = heatmap_svg([("t", hist, "s8.3")])
    grid = heatmap_grid([("t", hist, "s8.3")])
    cells = svg_cells(svg)
    for (fill, tip), bit, above, below, count in zip(cells, grid.bits, grid.above[0], grid.below[0], grid.counts[0]):
        assert above == (bit > 3) and below == (bit < -3)
        if count:
            assert fill.startswith("#")  # coloured by share, framed when outside
        else:
            assert fill == ("url(#hm-over)" if above else "url(#hm-under)" if below else "white")
        if above:
            assert tip.endswith("; above the top bit of s8.3: they saturate (overflow)")
        if below:
            assert tip.endswith("; below the LSB of s8.3: they round toward zero (underflow)")
    # the 40.0 (2^5, saturates) and the 2^-9 (underflows) cells are framed in their shade's colour
    assert svg.count('fill="url(#hm-over-lines)" stroke="#c0392b"') == 1
    assert svg.count('fill="url(#hm-under-lines)" stroke="#2471a3"') == 1
    assert '<pattern id="hm-over"' in svg and '<pattern id="hm-under"' in svg
    # per-row figures: 3 exact zeros of 7 values, 1 of 7 over, 1 of 7 under
    assert "<title>3 exact zeros of 7 values (42.9 %)</title>3</text>" in svg
    assert "<title>1 of 7 values have their MSB above s8.3: they saturate</title>14.3 %</text>" in svg
    assert "<title>1 of 7 values have their MSB below the LSB of s8.3: they round toward zero</title>14.3 %</text>" in svg
    assert "above the format&#39;s top bit" in svg and "below the format&#39;s LSB" in svg  # the legend


def test_svg_labels_are_escaped_and_shortened():
    from fpgagen.report.heatmap import MAX_LABEL

    label = "<b>&" + "x" * 5000
    svg = heatmap_svg([(label, msb_histogram([1.0, 2.0]), "s8.3")], title="a < b")
    assert "<b>&" not in svg and "&lt;b&gt;&amp;" in svg and "x" * 200 not in svg
    assert len(svg) < 20_000
    assert re.search(r"<title>&lt;b&gt;&amp;x+\.\.\.x+</title>&lt;b&gt;&amp;x+\.\.\.x+</text>", svg)
    shown = re.search(r"</title>(&lt;b&gt;&amp;x+\.\.\.x+)</text>", svg).group(1)
    assert len(shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")) == MAX_LABEL
    assert "a &lt; b" in svg


def test_svg_is_deterministic_and_needs_no_matplotlib(monkeypatch):
    first = heatmap_svg(network_rows(), title="t")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert heatmap_svg(network_rows(), title="t") == first
    assert first.startswith("<svg ") and first.rstrip().endswith("</svg>")


def test_png_of_a_5000_character_label_draws():
    pytest.importorskip("matplotlib")
    png = heatmap_png([("n" * 5000, msb_histogram([1.0, 2.0]), "s8.3"), seeds_row()])
    height, width = decode(png).shape[:2]
    assert width <= 3000 and height <= 1000


# -- errors -----------------------------------------------------------------------------------
def test_missing_matplotlib_names_the_report_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FpgagenError, match=r"the MSB heat map needs matplotlib, which is not installed: install the 'report' extra"):
        heatmap_png([seeds_row()])
    assert heatmap_grid([seeds_row()]).bits.size == 10  # the numbers need no matplotlib


def test_bad_rows():
    with pytest.raises(FpgagenError, match=r"heat map: no rows to draw"):
        heatmap_grid([])
    with pytest.raises(FpgagenError, match=r"heat map row 0: expected \(label, MsbHistogram, Format or None\), got \('x', 1\)"):
        heatmap_grid([("x", 1)])
    with pytest.raises(FpgagenError, match=r"heat map row 1 \(b\): expected an MsbHistogram, not list"):
        heatmap_grid([seeds_row(), ("b", [1.0], None)])
    with pytest.raises(FpgagenError, match=r"unknown fixed-point format 'int8'"):
        heatmap_grid([("x", msb_histogram([1.0]), "int8")])
    with pytest.raises(FpgagenError, match=r"heat map rows must be a list .*not int"):
        heatmap_grid(3)


def test_a_long_tail_of_tiny_values_folds_into_the_last_column():
    from fpgagen.report.heatmap import TAIL_BITS

    hist = msb_histogram(np.array([2.0**-100, 2.0**-60, 0.5, 3.0]))
    grid = heatmap_grid([("t", hist, "s8.3")])
    assert grid.folded
    assert grid.bits[-1] == -3 - TAIL_BITS
    assert grid.counts[0, -1] == 2  # both tiny values, counted in the "<=" column
    assert grid.counts.sum() == 4
    assert not heatmap_grid([("t", msb_histogram(np.array([0.5, 3.0])), "s8.3")]).folded
