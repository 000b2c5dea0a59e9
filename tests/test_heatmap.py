"""The MSB heat map: the grid and grey mask it is drawn from, the PNG, determinism."""

import base64
import io
import sys

import numpy as np
import pytest

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format
from fpgagen.quant.histogram import MsbHistogram, msb_histogram
from fpgagen.report.heatmap import heatmap_grid, heatmap_png

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


def grey_pixels(image: np.ndarray) -> np.ndarray:
    """Neutral mid-grey pixels: the grey face of the cells outside a format (over white)."""
    rgb = image[..., :3]
    value = rgb.mean(axis=2)
    return ((rgb.max(axis=2) - rgb.min(axis=2)) < 0.02) & (value > 0.5) & (value < 0.8)


def test_grey_in_the_picture_matches_the_format():
    pytest.importorskip("matplotlib")
    other = ("b", msb_histogram([2.0**-8, 2.0**8]), None)  # columns 2^8 .. 2^-8: 17 cells
    plain = grey_pixels(decode(heatmap_png([("a", msb_histogram([1.0]), None), other])))
    greyed = grey_pixels(decode(heatmap_png([("a", msb_histogram([1.0]), "s8.3"), other])))
    assert plain.mean() < 0.01 and greyed.mean() > 0.08
    # pixel rows crossing grey cells (text has a few grey anti-aliased pixels, cells many)
    rows = np.flatnonzero(greyed.sum(axis=1) > 0.2 * greyed.shape[1])
    assert rows.size > 10 and np.all(np.diff(rows) == 1)  # one band: the row with a format...
    assert rows[-1] < greyed.shape[0] / 2  # ...which is the top one
    # s8.3 greys 5 cells on the left (2^8..2^4) and 5 on the right (2^-4..2^-8), 7 cells apart
    columns = np.flatnonzero(greyed[rows].sum(axis=0) > rows.size / 2)
    breaks = np.flatnonzero(np.diff(columns) > 5)
    assert breaks.size == 1
    left = columns[breaks[0]] - columns[0] + 1
    gap = columns[breaks[0] + 1] - columns[breaks[0]] - 1
    right = columns[-1] - columns[breaks[0] + 1] + 1
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


def test_html_report_embeds_the_heatmap():
    pytest.importorskip("matplotlib")
    from fpgagen.report.html import heatmap_base64

    rows = network_rows()
    encoded = heatmap_base64(rows, "MSB histograms: net")
    assert base64.b64decode(encoded) == heatmap_png(rows, title="MSB histograms: net")


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
