"""Heat map of MSB histograms, drawn as the Deep Network Quantizer app draws it.

One row per logged parameter (weights, biases, activations), one column per bit position with
the high bits on the left, colour = number of values whose MSB is that bit (log scale, empty
cells white). The bits a row's chosen format cannot represent - above its top magnitude bit
(they saturate) or below its LSB (they underflow) - are greyed and hatched over.

:func:`heatmap_grid` gives the numbers the picture is drawn from; :func:`heatmap_png` draws it
with matplotlib (the ``report`` extra), imported only when a picture is asked for. The PNG
bytes depend on the input only (no timestamp, no software version), so a build is reproducible.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format
from fpgagen.quant.histogram import MAX_BIT, MIN_BIT, MsbHistogram

DPI = 100
CMAP = "viridis"
GREY = (0.55, 0.55, 0.55, 0.75)  # face of a cell the format cannot represent
HATCH = "///"


class HeatmapGrid(NamedTuple):
    """What the heat map shows.

    ``labels[i]`` and ``formats[i]`` name row ``i``; ``bits`` are the column bit positions, high
    to low; ``counts[i, j]`` is how many values of row ``i`` have their MSB at ``bits[j]``;
    ``outside[i, j]`` is True where row ``i``'s format cannot represent bit ``bits[j]`` (always
    False for a row without a format).
    """

    labels: list
    formats: list
    bits: np.ndarray
    counts: np.ndarray
    outside: np.ndarray
    #: True when the last column also counts every value below it (a long tail was folded)
    folded: bool = False


#: bit positions kept below the lowest LSB of any format; smaller values fold into the last column
TAIL_BITS = 6


def _check_rows(rows) -> list:
    """``rows`` as a list of (label, MsbHistogram, Format | None), or a clear error."""
    try:
        rows = list(rows)
    except TypeError:
        raise FpgagenError(
            f"heat map rows must be a list of (label, MsbHistogram, Format or None), "
            f"not {type(rows).__name__}"
        ) from None
    if not rows:
        raise FpgagenError("heat map: no rows to draw (expected at least one (label, histogram, format))")
    checked = []
    for i, row in enumerate(rows):
        if not (isinstance(row, (tuple, list)) and len(row) == 3):
            raise FpgagenError(
                f"heat map row {i}: expected (label, MsbHistogram, Format or None), got {row!r}"
            )
        label, hist, fmt = row
        if not isinstance(hist, MsbHistogram):
            raise FpgagenError(
                f"heat map row {i} ({label}): expected an MsbHistogram, not {type(hist).__name__}"
            )
        checked.append((str(label), hist, None if fmt is None else Format.parse(fmt)))
    return checked


def heatmap_grid(rows) -> HeatmapGrid:
    """The grid and the 'outside the format' mask that :func:`heatmap_png` draws.

    Columns run over every bit position from the highest to the lowest that any histogram holds
    a value at or any format represents (``fmt.msb`` down to ``-fmt.frac``); when formats are
    given, values more than :data:`TAIL_BITS` below the lowest LSB (float residue such as
    2**-100, all underflow anyway) are counted in the last column instead of widening the map.
    """
    rows = _check_rows(rows)
    highs, lows = [], []
    for _, hist, fmt in rows:
        if hist.nonzero:
            highs.append(hist.highest)
            lows.append(hist.lowest)
        if fmt is not None:
            highs.append(fmt.msb)
            lows.append(-fmt.frac)
    top, bottom = (max(highs), min(lows)) if highs else (0, 0)
    lsbs = [-fmt.frac for _, _, fmt in rows if fmt is not None]
    folded = bool(lsbs) and bottom < min(lsbs) - TAIL_BITS
    if folded:
        bottom = min(lsbs) - TAIL_BITS
    bits = np.arange(top, bottom - 1, -1, dtype=np.int64)
    inside_hist = (bits >= MIN_BIT) & (bits <= MAX_BIT)
    counts = np.zeros((len(rows), bits.size), np.int64)
    outside = np.zeros((len(rows), bits.size), bool)
    for i, (_, hist, fmt) in enumerate(rows):
        counts[i, inside_hist] = hist.counts[bits[inside_hist] - MIN_BIT]
        if folded:
            counts[i, -1] = int(hist.counts[: bottom - MIN_BIT + 1].sum())
        if fmt is not None:
            outside[i] = (bits > fmt.msb) | (bits < -fmt.frac)
    return HeatmapGrid([r[0] for r in rows], [r[2] for r in rows], bits, counts, outside, folded)


def _bit_label(bit: int) -> str:
    # plain text: mathtext labels cost a second of layout per figure
    return str(bit)


def heatmap_png(rows, path: "str | Path | None" = None, title: str = "") -> bytes:
    """Draw the heat map of ``rows`` = [(label, MsbHistogram, Format | None), ...] as PNG.

    Returns the PNG bytes and, when ``path`` is given, also writes them there. The same input
    always gives the same bytes. Needs matplotlib (``pip install "fpgagen[report]"``).
    """
    grid = heatmap_grid(rows)
    try:
        import matplotlib  # noqa: F401  (imported here: matplotlib is an optional extra)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PatchCollection
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as exc:
        raise FpgagenError(
            "the MSB heat map needs matplotlib, which is not installed: install the 'report' "
            f"extra, e.g. pip install -e \".[report]\" ({exc})"
        ) from None

    n_rows, n_cols = grid.counts.shape
    longest = max([len(f"{label}  {fmt}") for label, fmt in zip(grid.labels, grid.formats)] + [8])
    left_in = 0.3 + 0.062 * longest  # room for the row labels at fontsize 8
    width = min(max(4.0 + 0.32 * n_cols, 6.0) + left_in, 30.0)
    height = min(max(1.6 + 0.32 * n_rows, 2.6), 40.0)
    # A Figure with its own Agg canvas: no pyplot, no global backend switch, nothing left open.
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    vmax = max(int(grid.counts.max()), 2)
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="white")
    shown = np.ma.masked_equal(grid.counts, 0)  # empty cells: white
    image = ax.imshow(
        shown, cmap=cmap, norm=LogNorm(vmin=1, vmax=vmax), aspect="auto", interpolation="nearest",
        extent=(-0.5, n_cols - 0.5, n_rows - 0.5, -0.5),
    )
    cells = [Rectangle((j - 0.5, i - 0.5), 1.0, 1.0) for i, j in zip(*np.nonzero(grid.outside))]
    if cells:
        ax.add_collection(PatchCollection(
            cells, facecolor=GREY, edgecolor=(0.3, 0.3, 0.3, 0.9), hatch=HATCH, linewidth=0.0,
        ))
    # thin lines between rows and columns
    ax.set_xticks(np.arange(-0.5, n_cols, 1.0), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1.0), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)

    step = max(1, int(np.ceil(n_cols / 40)))
    ax.set_xticks(np.arange(0, n_cols, step))
    labels = [_bit_label(int(b)) for b in grid.bits[::step]]
    if grid.folded and (grid.bits.size - 1) % step == 0:
        labels[-1] = "<=" + labels[-1]
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yticks(np.arange(n_rows))
    ax.set_yticklabels(
        [f"{label}  {fmt}" if fmt is not None else label for label, fmt in zip(grid.labels, grid.formats)],
        fontsize=8,
    )
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    xlabel = "MSB bit position k (values in [2^k, 2^(k+1)); high bits left)"
    if cells:
        xlabel += "; grey hatched: bits the chosen format cannot represent"
    ax.set_xlabel(xlabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    bar.set_label("count (log scale)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    # a fixed layout (tight_layout measures every label: slow); margins in inches
    top_in, bottom_in, right_in = (0.45 if title else 0.15), 0.55, 1.0
    fig.subplots_adjust(left=left_in / width, right=1 - right_in / width,
                        bottom=bottom_in / height, top=1 - top_in / height)

    buf = io.BytesIO()
    # metadata: no "Software" (matplotlib version) entry; Agg PNGs carry no timestamp.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
