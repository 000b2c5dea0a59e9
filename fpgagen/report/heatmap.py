"""Heat map of MSB histograms, drawn as the Deep Network Quantizer app draws it.

One row per logged parameter (weights, biases, activations), one column per bit position with
the high bits on the left, colour = the share of the row's non-zero values whose MSB is that bit
(each row normalised on its own: a bias of 30 values reads as well as an activation of 100,000;
log scale, empty cells white). The bits a row's chosen format cannot represent are shaded two
ways: above its top magnitude bit (the values saturate: overflow) and below its LSB (they round
toward zero: underflow). Exact zeros have no MSB: they are counted in a column of their own.

:func:`heatmap_grid` gives the numbers the picture is drawn from; :func:`heatmap_svg` draws it as
an inline SVG with a tooltip per cell (the report's); :func:`heatmap_png` draws it with
matplotlib (the ``report`` extra), imported only when a picture is asked for. Both depend on
the input only (no timestamp, no software version), so a build is reproducible.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
from markupsafe import escape

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format
from fpgagen.names import shorten
from fpgagen.quant.histogram import MAX_BIT, MIN_BIT, MsbHistogram

DPI = 100
CMAP = "viridis"
#: face, edge and hatch of the cells above a row's format (overflow) and below its LSB (underflow)
PNG_SHADES = {"over": ((0.85, 0.33, 0.27, 0.55), (0.6, 0.1, 0.1, 0.9), "///"),
              "under": ((0.25, 0.5, 0.78, 0.55), (0.1, 0.25, 0.55, 0.9), "\\\\\\")}


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
    #: per row, the exact zeros (no MSB: not in ``counts``)
    zeros: "np.ndarray | None" = None
    #: ``[i, j]``: bit ``bits[j]`` lies above row ``i``'s format (those values saturate: overflow)
    above: "np.ndarray | None" = None

    @property
    def below(self) -> np.ndarray:
        """``[i, j]``: bit ``bits[j]`` lies below row ``i``'s LSB (those values underflow)."""
        return self.outside & ~self.above

    @property
    def shares(self) -> np.ndarray:
        """``counts`` as a fraction of each row's non-zero values (0 for an empty row)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)


#: row labels are drawn shortened to this many characters (the middle elided)
MAX_LABEL = 48

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
    above = np.zeros((len(rows), bits.size), bool)
    for i, (_, hist, fmt) in enumerate(rows):
        counts[i, inside_hist] = hist.counts[bits[inside_hist] - MIN_BIT]
        if folded:
            counts[i, -1] = int(hist.counts[: bottom - MIN_BIT + 1].sum())
        if fmt is not None:
            above[i] = bits > fmt.msb
            outside[i] = above[i] | (bits < -fmt.frac)
    zeros = np.array([hist.zeros for _, hist, _ in rows], np.int64)
    return HeatmapGrid([r[0] for r in rows], [r[2] for r in rows], bits, counts, outside, folded, zeros, above)


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
    shown_labels = [shorten(label, MAX_LABEL) for label in grid.labels]
    longest = max([len(f"{label}  {fmt}") for label, fmt in zip(shown_labels, grid.formats)] + [8])
    left_in = 0.3 + 0.062 * longest  # room for the row labels at fontsize 8
    width = min(max(4.0 + 0.32 * n_cols, 6.0) + left_in, 30.0)
    height = min(max(1.6 + 0.32 * n_rows, 2.6), 40.0)
    # A Figure with its own Agg canvas: no pyplot, no global backend switch, nothing left open.
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="white")
    shown = np.ma.masked_equal(grid.counts, 0)  # empty cells: white
    shares = np.ma.masked_where(shown.mask, np.maximum(grid.shares, MIN_SHARE))
    image = ax.imshow(
        shares, cmap=cmap, norm=LogNorm(vmin=MIN_SHARE, vmax=1.0), aspect="auto", interpolation="nearest",
        extent=(-0.5, n_cols - 0.5, n_rows - 0.5, -0.5),
    )
    shaded = False
    for kind, mask in (("over", grid.above), ("under", grid.below)):
        face, edge, hatch = PNG_SHADES[kind]
        cells = [Rectangle((j - 0.5, i - 0.5), 1.0, 1.0) for i, j in zip(*np.nonzero(mask))]
        if cells:
            shaded = True
            ax.add_collection(PatchCollection(cells, facecolor=face, edgecolor=edge, hatch=hatch, linewidth=0.0))
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
        [f"{label}  {fmt}" if fmt is not None else label for label, fmt in zip(shown_labels, grid.formats)],
        fontsize=8,
    )
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    xlabel = "MSB bit position k (values in [2^k, 2^(k+1)); high bits left)"
    if shaded:
        xlabel += "; red ///: above the format (saturates), blue \\\\\\: below its LSB (underflows)"
    ax.set_xlabel(xlabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    bar.set_label("share of the row's non-zero values", fontsize=8)
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


# -- the inline SVG of the report ---------------------------------------------------------------
#: viridis at 0, 1/8, ..., 1 (matplotlib's values): the colour of a cell's share of its row
_VIRIDIS = ((68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
            (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37))
#: the smallest share the colour scale tells apart (1 in 10,000 values); smaller shares get its colour
MIN_SHARE = 1e-4
CELL_W, CELL_H = 30, 20
#: (stroke, background, legend caption, tooltip) of the two kinds of cells outside a format
SHADES = {
    "over": ("#c0392b", "#fbe3e0", "above the format's top bit: these values saturate (overflow)",
             "above the top bit of {fmt}: they saturate (overflow)"),
    "under": ("#2471a3", "#dfeaf5", "below the format's LSB: these values round toward zero (underflow)",
              "below the LSB of {fmt}: they round toward zero (underflow)"),
}


def _colour(share: float) -> str:
    t = min(max((np.log10(max(share, MIN_SHARE)) - np.log10(MIN_SHARE)) / -np.log10(MIN_SHARE), 0.0), 1.0)
    x = t * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    f = x - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(_VIRIDIS[i], _VIRIDIS[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def _pct(part: int, whole: int) -> str:
    if not whole or not part:
        return "0 %"
    p = 100.0 * part / whole
    return "<0.01 %" if p < 0.01 else f"{p:.3g} %"


def _cell_text(share: float) -> str:
    """The percentage printed in a cell ('' below 1 %: the colour and the tooltip say it)."""
    return "" if share < 0.01 else f"{100 * share:.0f}"


def heatmap_svg(rows, title: str = "") -> str:
    """The heat map of ``rows`` = [(label, MsbHistogram, Format | None), ...] as one inline
    ``<svg>`` element: per-row shares as colour and printed percent, overflow and underflow
    cells shaded apart, a column of exact zeros, a legend and a tooltip (``<title>``) per cell
    with its count. Labels are shortened (:data:`MAX_LABEL`); the same input gives the same text."""
    grid = heatmap_grid(rows)
    n_rows, n_cols = grid.counts.shape
    shares = grid.shares
    totals = grid.counts.sum(axis=1)
    labels = [shorten(label, MAX_LABEL) for label in grid.labels]
    label_w = 12 + 7 * max([len(label) for label in labels] + [10])
    fmt_w = 56
    x0, y0 = label_w + fmt_w, 44 if title else 26
    stats = ("zeros", "non-zero", "over", "under")
    stat_w = 74
    width = max(x0 + n_cols * CELL_W + 10 + len(stats) * stat_w + 10, 860)
    legend_y = y0 + n_rows * CELL_H + 14
    height = legend_y + 92
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">']
    out.append("<defs>")
    for key, (stroke, back, _, _) in SHADES.items():
        angle = 45 if key == "over" else -45
        out.append(f'<pattern id="hm-{key}" width="6" height="6" patternUnits="userSpaceOnUse" '
                   f'patternTransform="rotate({angle})"><rect width="6" height="6" fill="{back}"/>'
                   f'<line x1="0" y1="0" x2="0" y2="6" stroke="{stroke}" stroke-width="2.2"/></pattern>')
        out.append(f'<pattern id="hm-{key}-lines" width="6" height="6" patternUnits="userSpaceOnUse" '
                   f'patternTransform="rotate({angle})"><line x1="0" y1="0" x2="0" y2="6" stroke="{stroke}" '
                   f'stroke-width="1.6" stroke-opacity="0.9"/></pattern>')
    out.append("</defs>")
    if title:
        out.append(f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>')
    # column heads: bit positions, then the per-row figures
    for j, bit in enumerate(grid.bits):
        head = ("&lt;=" if grid.folded and j == n_cols - 1 else "") + str(int(bit))
        out.append(f'<text x="{x0 + j * CELL_W + CELL_W / 2}" y="{y0 - 6}" text-anchor="middle">{head}</text>')
    sx = x0 + n_cols * CELL_W + 10
    for k, name in enumerate(stats):
        out.append(f'<text x="{sx + k * stat_w + stat_w - 6}" y="{y0 - 6}" text-anchor="end" '
                   f'font-weight="bold">{name}</text>')
    out.append(f'<text x="{label_w}" y="{y0 - 6}" font-weight="bold">format</text>')
    for i in range(n_rows):
        y = y0 + i * CELL_H
        fmt = grid.formats[i]
        full = shorten(grid.labels[i], 200)
        out.append(f'<text x="4" y="{y + 14}"><title>{escape(full)}</title>{escape(labels[i])}</text>')
        out.append(f'<text x="{label_w}" y="{y + 14}" font-family="monospace">{escape(fmt or "")}</text>')
        for j, bit in enumerate(grid.bits):
            x = x0 + j * CELL_W
            count, share = int(grid.counts[i, j]), float(shares[i, j])
            kind = ("over" if grid.above[i, j] else "under") if grid.outside[i, j] else None
            where = ("<=" if grid.folded and j == n_cols - 1 else "") + f"2^{int(bit)}"
            tip = f"{full}, MSB at {where}: {count} of {int(totals[i])} non-zero values ({_pct(count, int(totals[i]))})"
            if kind:
                tip += "; " + SHADES[kind][3].format(fmt=fmt)
            tip = escape(tip)
            if count:
                out.append(f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="{_colour(share)}" '
                           f'stroke="white" stroke-width="1"><title>{tip}</title></rect>')
                if kind:
                    stroke = SHADES[kind][0]
                    out.append(f'<rect x="{x + 1.5}" y="{y + 1.5}" width="{CELL_W - 3}" height="{CELL_H - 3}" '
                               f'fill="url(#hm-{kind}-lines)" stroke="{stroke}" stroke-width="3" '
                               f'pointer-events="none"/>')
                text = _cell_text(share)
                if text:
                    ink = "white" if share < 0.03 else "black"
                    out.append(f'<text x="{x + CELL_W / 2}" y="{y + 14}" text-anchor="middle" fill="{ink}" '
                               f'font-size="10" font-weight="bold" pointer-events="none">{text}</text>')
            elif kind:
                out.append(f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="url(#hm-{kind})" '
                           f'stroke="white" stroke-width="1"><title>{tip}</title></rect>')
            else:
                out.append(f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="white" '
                           f'stroke="#e4e4e4" stroke-width="1"><title>{tip}</title></rect>')
        nonzero, zeros = int(totals[i]), int(grid.zeros[i])
        over = int(grid.counts[i][grid.above[i]].sum())
        under = int(grid.counts[i][grid.below[i]].sum())
        figures = (
            (f"{zeros:,}", f"{zeros} exact zeros of {zeros + nonzero} values ({_pct(zeros, zeros + nonzero)})"),
            (f"{nonzero:,}", f"{nonzero} non-zero values"),
            (_pct(over, nonzero + zeros) if fmt is not None else "",
             f"{over} of {nonzero + zeros} values have their MSB above {fmt}: they saturate"),
            (_pct(under, nonzero + zeros) if fmt is not None else "",
             f"{under} of {nonzero + zeros} values have their MSB below the LSB of {fmt}: they round toward zero"),
        )
        for k, (text, tip) in enumerate(figures):
            colour = "#c0392b" if k == 2 and over else "#2471a3" if k == 3 and under else "#222"
            out.append(f'<text x="{sx + k * stat_w + stat_w - 6}" y="{y + 14}" text-anchor="end" fill="{colour}">'
                       f'<title>{escape(tip)}</title>{escape(text)}</text>')
    # legend: the colour scale and the two shades
    bar_x, bar_w = 24, 240
    out.append('<defs><linearGradient id="hm-scale">' + "".join(
        f'<stop offset="{k / (len(_VIRIDIS) - 1):.3f}" stop-color="#{r:02x}{g:02x}{b:02x}"/>'
        for k, (r, g, b) in enumerate(_VIRIDIS)) + "</linearGradient></defs>")
    out.append(f'<text x="4" y="{legend_y + 10}">share of the row\'s non-zero values (log scale; '
               f'cells print it in %, blank below 1 %):</text>')
    out.append(f'<rect x="{bar_x}" y="{legend_y + 16}" width="{bar_w}" height="12" fill="url(#hm-scale)"/>')
    for k, label in enumerate(("0.01 %", "0.1 %", "1 %", "10 %", "100 %")):
        out.append(f'<text x="{bar_x + k * bar_w / 4}" y="{legend_y + 40}" text-anchor="middle" '
                   f'font-size="10">{label}</text>')
    ly = legend_y + 54
    for k, (key, (stroke, _, caption, _)) in enumerate(SHADES.items()):
        x = 4 + k * 420
        out.append(f'<rect x="{x}" y="{ly}" width="{CELL_W}" height="{CELL_H - 4}" fill="url(#hm-{key})" '
                   f'stroke="{stroke}" stroke-width="2"/>')
        out.append(f'<text x="{x + CELL_W + 6}" y="{ly + 12}">{escape(caption)}</text>')
    out.append(f'<text x="4" y="{ly + 34}">columns: MSB bit position k (values in [2^k, 2^(k+1)), high bits '
               f'left); zeros: exact zeros (no MSB); over / under: the shaded cells\' share of all the row\'s '
               f'values. Hover a cell for its count.</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
