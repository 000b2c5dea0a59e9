"""``OUT/report.html``: one self-contained page (images inline, no network access).

Rendered from the files of a build directory (``summary.json``, ``histograms.json`` and, when
present, ``verify.json``), so ``fpgagen report OUT`` re-renders it at any time.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from pathlib import Path

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format
from fpgagen.quant.histogram import MIN_BIT, MsbHistogram
from fpgagen.render import render


def hist_from_dict(d: dict) -> MsbHistogram:
    """An :class:`MsbHistogram` (counts, zeros, min, max) back from ``as_dict()``."""
    h = MsbHistogram(d["name"])
    for bit, count in d["bins"].items():
        h.counts[int(bit) - MIN_BIT] = count
    h.zeros = d["zeros"]
    if d["min"] is not None:
        h.min, h.max = d["min"], d["max"]
    return h


def heatmap_rows(summary: dict, hists: dict) -> list:
    """(label, histogram, format) per logged tensor: the input, then per layer weight, bias, output."""
    rows = []
    inp = summary["input"]
    if inp["tensor"] in hists:
        rows.append((f"input {inp['tensor']}", hist_from_dict(hists[inp["tensor"]]), Format.parse(inp["format"])))
    for layer in summary["layers"]:
        for key, suffix in (("weight", ".weight"), ("bias", ".bias")):
            name = layer["name"] + suffix
            if layer[key] and name in hists:
                rows.append((name, hist_from_dict(hists[name]), Format.parse(layer[key])))
        if layer["output_tensor"] in hists and layer["shift"] is not None:
            rows.append((f"{layer['name']} out", hist_from_dict(hists[layer["output_tensor"]]),
                         Format.parse(layer["output"])))
    return rows


def heatmap_base64(rows, title: str) -> str:
    from fpgagen.report.heatmap import heatmap_png

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heatmap.png"
        heatmap_png(rows, path, title=title)
        return base64.b64encode(path.read_bytes()).decode()


def worst_layer(summary: dict) -> str | None:
    """The layer whose trace SQNR drops most below its input's."""
    worst, drop_max = None, -math.inf
    prev = None
    for layer in summary["layers"]:
        value = layer["sqnr_db"]
        if value is None or value == "inf":
            continue
        if prev is not None and prev - value > drop_max:
            worst, drop_max = layer["name"], prev - value
        prev = value
    return worst


def pct(rate) -> str:
    if rate is None:
        return ""
    return f"{100 * rate:.3g} %"


def read_verify(out: Path) -> dict | None:
    path = Path(out) / "verify.json"
    return json.loads(path.read_text()) if path.is_file() else None


def render_report(out: Path | str) -> str:
    """The report of the build directory ``out``."""
    out = Path(out)
    try:
        summary = json.loads((out / "summary.json").read_text())
        hists = json.loads((out / "histograms.json").read_text())
    except FileNotFoundError as exc:
        raise FpgagenError(f"report: {out} is not a build directory: {exc.filename} is missing") from None
    return render_report_data(summary, hists, read_verify(out))


def render_report_data(summary: dict, hists: dict, verify: dict | None) -> str:
    """The report page from a build's summary, histograms and verification results."""
    hardware = summary.get("hardware") or {}
    try:
        heatmap, missing = heatmap_base64(heatmap_rows(summary, hists), f"MSB histograms: {summary['name']}"), ""
    except FpgagenError as exc:  # matplotlib absent: the page says so instead of the image
        heatmap, missing = "", str(exc)
    return render(
        "report/report.html.j2", s=summary, worst=worst_layer(summary), pct=pct,
        heatmap=heatmap, heatmap_missing=missing, verify=verify,
        cycles=hardware.get("layers"), pipeline_cycles=hardware.get("pipeline_cycles"),
    )

