"""``OUT/report.html``: one self-contained page (pictures inline as SVG, no network access).

Rendered from the files of a build directory (``summary.json``, ``histograms.json`` and, when
present, ``verify.json``), so ``fpgagen report OUT`` re-renders it at any time. Each file is
checked first: a missing, unreadable, corrupt or foreign one is a :class:`ReportError` naming
the file and what was expected, never a traceback.

The hardware section reads ``summary.json`` ``hardware`` as the Verilog backend writes it:
``layers: {name: {parallelism, multipliers, cycles[, memory_bits]}}``, ``pipeline_cycles``
and, when given, ``clock_mhz``, ``device``, ``resources: {name: used}`` with
``available: {name: capacity}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from markupsafe import Markup, escape

from fpgagen.errors import FpgagenError
from fpgagen.ir.format import Format, channel_formats_text, range_text
from fpgagen.names import shorten
from fpgagen.quant.histogram import MAX_BIT, MIN_BIT, MsbHistogram
from fpgagen.render import render

#: the clock the frame rate is quoted at when the build names none (``hardware.clock_mhz``)
DEFAULT_CLOCK_MHZ = 100.0
#: characters of a name shown in a table cell / in its tooltip
SHOWN, TOOLTIP = 40, 200


class ReportError(FpgagenError):
    """A build directory whose files cannot be reported: missing, corrupt or of another shape."""


# -- reading and checking the build directory's files ------------------------------------------
WHAT = {
    "summary.json": "the summary.json that `fpgagen build` writes",
    "histograms.json": "the histograms.json that `fpgagen build` writes ({tensor: {name, bins, zeros, min, max}})",
    "verify.json": "the verify.json that `fpgagen verify` writes ({target: {samples, mismatches, ...}})",
}
#: how to get a good file again
REDO = {"summary.json": "rebuild with `fpgagen build`", "histograms.json": "rebuild with `fpgagen build`",
        "verify.json": "delete it and run `fpgagen verify` again"}
STR, INT, NUM = (str,), (int,), (int, float)
OPT_STR, OPT_INT, OPT_NUM = (str, type(None)), (int, type(None)), (int, float, type(None))
LIST, OPT_DICT = (list,), (dict, type(None))

#: what the report reads of summary.json (a key ending in ``?`` may be absent)
SUMMARY_SCHEMA = {
    "name": STR, "model": STR, "fpgagen": STR,
    "input": {"tensor": STR, "shape": LIST, "format": STR, "overflow_rate?": OPT_NUM, "underflow_rate?": OPT_NUM},
    "output": {"tensor": STR, "shape": LIST, "format": STR},
    "notes": LIST,
    "calibration": {"samples": INT, "method": STR, "weight_method": STR},
    "accuracy": {"float": OPT_NUM, "fixed": OPT_NUM},
    "validation": {"samples": INT, "top1_agreement": OPT_NUM},
    "layers": [{
        "name": STR, "op": STR, "onnx_nodes": LIST, "output_tensor": STR, "shape": LIST, "activation": STR,
        "input": LIST, "weight": OPT_STR, "bias": OPT_STR, "output": STR, "shift": OPT_INT,
        "acc_width": OPT_INT, "acc_frac": OPT_INT, "overflow_rate": OPT_NUM, "underflow_rate": OPT_NUM,
        "sqnr_db": OPT_NUM + STR, "quant_sqnr_db": OPT_NUM + STR, "weights?": OPT_INT, "biases?": OPT_INT,
        "weight_channels?": (list, type(None)), "shifts?": (list, type(None)),
    }],
    "hardware": OPT_DICT,
    "files_sha256?": OPT_DICT,
}
HARDWARE_SCHEMA = {"layers": {}, "pipeline_cycles": INT, "clock_mhz?": OPT_NUM}
HARDWARE_LAYER_SCHEMA = {"cycles": INT, "multipliers?": OPT_INT, "parallelism?": OPT_STR, "memory_bits?": OPT_INT}
HIST_SCHEMA = {"bins": (dict,), "zeros": INT, "min": OPT_NUM, "max": OPT_NUM}
VERIFY_SCHEMA = {"samples": INT, "mismatches": INT}


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _expected(types) -> str:
    names = []
    for t in types:
        name = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object",
                type(None): "null"}[t]
        if name not in names:
            names.append(name)
    return " or ".join(names)


def _fail(path: Path, where: str, message: str):
    place = f"{path}: {where}: " if where else f"{path}: "
    raise ReportError(f"report: {place}{message}; expected {WHAT.get(path.name, path.name)}")


def check_shape(value, schema, path: Path, where: str = "") -> None:
    """``value`` against ``schema`` (dict of keys, [item schema], or a tuple of types)."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            _fail(path, where, f"expected an object, got {_kind(value)}")
        for key, sub in schema.items():
            name = key.rstrip("?")
            if name not in value:
                if not key.endswith("?"):
                    _fail(path, where, f"missing key {name!r}")
                continue
            check_shape(value[name], sub, path, f"{where}.{name}" if where else name)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            _fail(path, where, f"expected a list, got {_kind(value)}")
        for i, item in enumerate(value):
            check_shape(item, schema[0], path, f"{where}[{i}]")
    elif isinstance(value, bool) or not isinstance(value, schema):
        if not (isinstance(value, bool) and bool in schema):
            _fail(path, where, f"expected {_expected(schema)}, got {shorten(repr(value), 60)}")


def read_json(out: Path, name: str, required: bool = True):
    """The parsed ``out/name`` (None when absent and not ``required``); a clear error otherwise."""
    path = Path(out) / name
    if not path.exists():
        if not required:
            return None
        if not Path(out).is_dir():
            raise ReportError(f"report: {out} is not a directory; expected a build directory of `fpgagen build`")
        raise ReportError(f"report: {out} is not a build directory: {path} is missing (expected "
                          f"{WHAT[name]}; run `fpgagen build CONFIG -o {out}`)")
    if not path.is_file():
        raise ReportError(f"report: {path} is not a file; expected {WHAT[name]}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"report: {path} is not UTF-8 text; expected {WHAT[name]}") from None
    except OSError as exc:
        raise ReportError(f"report: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        what = "empty" if not text.strip() else f"not valid JSON ({exc.msg.removesuffix(' at')} at {where})"
        raise ReportError(f"report: {path} is {what}; expected {WHAT[name]}: {REDO[name]}") from None


def check_summary(summary, path: Path) -> dict:
    check_shape(summary, SUMMARY_SCHEMA, path)
    hw = summary["hardware"]
    if hw is not None:
        check_shape(hw, HARDWARE_SCHEMA, path, "hardware")
        for name, entry in hw["layers"].items():
            check_shape(entry, HARDWARE_LAYER_SCHEMA, path, f"hardware.layers.{shorten(name, SHOWN)}")
    for where in ("input.format", "output.format"):
        section, key = where.split(".")
        _parse_format(summary[section][key], path, where)
    for i, layer in enumerate(summary["layers"]):
        for key in ("weight", "bias", "output"):
            if layer[key] is not None:
                _parse_format(layer[key], path, f"layers[{i}].{key}")
    return summary


def _parse_format(text: str, path: Path, where: str) -> Format:
    try:
        return Format.parse(text)
    except FpgagenError as exc:
        _fail(path, where, str(exc))


def check_histograms(hists, path: Path) -> dict:
    if not isinstance(hists, dict):
        _fail(path, "", f"expected an object, got {_kind(hists)}")
    for name, h in hists.items():
        where = shorten(name, SHOWN)
        check_shape(h, HIST_SCHEMA, path, where)
        for bit, count in h["bins"].items():
            try:
                ok = MIN_BIT <= int(bit) <= MAX_BIT
            except ValueError:
                ok = False
            if not ok:
                _fail(path, f"{where}.bins", f"bit {shorten(bit, 20)!r} is not an integer in [{MIN_BIT}, {MAX_BIT}]")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                _fail(path, f"{where}.bins.{bit}", f"expected a count >= 0, got {shorten(repr(count), 40)}")
    return hists


def check_verify(verify, path: Path) -> dict:
    if not isinstance(verify, dict):
        _fail(path, "", f"expected an object, got {_kind(verify)}")
    for target, result in verify.items():
        check_shape(result, VERIFY_SCHEMA, path, shorten(target, SHOWN))
    return verify


def read_verify(out: Path) -> dict | None:
    """``out/verify.json``, checked (None when there is none)."""
    path = Path(out) / "verify.json"
    data = read_json(Path(out), "verify.json", required=False)
    return None if data is None else check_verify(data, path)


def render_report(out: Path | str) -> str:
    """The report of the build directory ``out``."""
    out = Path(out)
    summary = check_summary(read_json(out, "summary.json"), out / "summary.json")
    hists = check_histograms(read_json(out, "histograms.json"), out / "histograms.json")
    return render_report_data(summary, hists, read_verify(out))


# -- what the page shows ------------------------------------------------------------------------
def hist_from_dict(d: dict) -> MsbHistogram:
    """An :class:`MsbHistogram` (counts, zeros, min, max) back from ``as_dict()``."""
    h = MsbHistogram(d.get("name", ""))
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
        label = "model input" + ("" if inp["tensor"] == "input" else f" {shorten(inp['tensor'], 40)}")
        rows.append((label, hist_from_dict(hists[inp["tensor"]]), Format.parse(inp["format"])))
    for layer in summary["layers"]:
        name = shorten(layer["name"], 40)
        for key, suffix in (("weight", ".weight"), ("bias", ".bias")):
            if layer[key] and layer["name"] + suffix in hists:
                rows.append((f"{name} {key}", hist_from_dict(hists[layer["name"] + suffix]), Format.parse(layer[key])))
        if layer["output_tensor"] in hists and layer["shift"] is not None:
            rows.append((f"{name} out", hist_from_dict(hists[layer["output_tensor"]]), Format.parse(layer["output"])))
    return rows


def worst_layer(summary: dict) -> str | None:
    """The layer whose trace SQNR drops most below its input's."""
    worst, drop_max = None, -math.inf
    prev = None
    for layer in summary["layers"]:
        value = layer["sqnr_db"]
        if value is None or isinstance(value, str):
            continue
        if prev is not None and prev - value > drop_max:
            worst, drop_max = layer["name"], prev - value
        prev = value
    return worst


def pct(rate) -> str:
    if rate is None:
        return ""
    return f"{100 * rate:.3g} %"


def number(value) -> str:
    """A figure for a table cell: integers with thousands separators, floats to 4 digits."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if (value.is_integer() or abs(value) >= 1000) and abs(value) < 1e15 else f"{value:.4g}"
    if value is None:
        return ""
    return shorten(str(value), 160)


def layer_table(summary: dict) -> list[dict]:
    """The rows of the layers table: the model input first, then every layer."""
    inp = summary["input"]
    rows = [{"name": inp["tensor"], "op": "input", "onnx_nodes": [], "shape": inp["shape"], "activation": "",
             "input": "", "weight": "", "bias": "", "output": inp["format"], "acc": "", "shift": "",
             "overflow_rate": inp.get("overflow_rate"), "underflow_rate": inp.get("underflow_rate"),
             "sqnr_db": None, "quant_sqnr_db": None, "is_input": True}]
    for layer in summary["layers"]:
        acc = f"s{layer['acc_width']}.{layer['acc_frac']}" if layer["acc_width"] is not None else ""
        weight, shift = layer["weight"] or "", "" if layer["shift"] is None else layer["shift"]
        if layer.get("weight_channels"):  # per-channel formats, compactly: the range of their fracs
            weight = channel_formats_text([Format.parse(f) for f in layer["weight_channels"]]) + " per channel"
            shift = range_text(layer["shifts"])
        rows.append({**layer, "input": ", ".join(map(str, layer["input"])), "weight": weight,
                     "bias": layer["bias"] or "", "acc": acc, "shift": shift, "is_input": False})
    return rows


def hardware_view(summary: dict, verify: dict | None) -> dict | None:
    """Per-layer multipliers, memory, cycles against the pipeline interval; frame rate and latency."""
    hw = summary["hardware"]
    if not hw:
        return None
    interval = max(hw["pipeline_cycles"], 1)
    clock = hw.get("clock_mhz")
    layers = []
    by_name = {layer["name"]: layer for layer in summary["layers"]}
    for name, entry in hw["layers"].items():
        layer = by_name.get(name, {})
        bits = entry.get("memory_bits")
        if bits is None and layer.get("weights") is not None:
            bits = sum(layer[count] * Format.parse(layer[fmt]).word
                       for count, fmt in (("weights", "weight"), ("biases", "bias")) if layer.get(count) and layer[fmt])
        layers.append({"name": name, "op": layer.get("op", ""), "parallelism": entry.get("parallelism") or "",
                       "multipliers": entry.get("multipliers") or 0, "memory_bits": bits, "cycles": entry["cycles"],
                       "luts": (layer.get("resources") or {}).get("luts"),
                       "share": entry["cycles"] / interval})
    mults = sum(layer["multipliers"] for layer in layers)
    busy = sum(layer["multipliers"] * layer["cycles"] for layer in layers)
    measured = (verify or {}).get("verilog")
    if measured and stale_reason("verilog", measured, summary):
        measured = None
    view = {
        "target": hw.get("target", "verilog"), "top": hw.get("top", ""), "interval": hw["pipeline_cycles"],
        "layers": layers, "multipliers": mults,
        "memory_bits": sum(layer["memory_bits"] or 0 for layer in layers),
        "memory_from_backend": any("memory_bits" in e for e in hw["layers"].values()),
        "utilisation": busy / (mults * interval) if mults else None,
        "clock_mhz": clock or DEFAULT_CLOCK_MHZ, "clock_assumed": not clock,
        "fps": (clock or DEFAULT_CLOCK_MHZ) * 1e6 / interval,
        "measured_interval": measured.get("cycles_per_frame") if measured else None,
        "latency": measured.get("latency_cycles") if measured else None,
        "device": hw.get("device") or ((hw.get("resources") or {}).get("device")
                                        if isinstance(hw.get("resources"), dict) else None),
        "resources": _resources(hw),
        "luts": (((hw.get("resources") or {}).get("total") or {}).get("luts")
                 if isinstance(hw.get("resources"), dict) else None),
        "chart": Markup(cycles_chart_svg(layers, hw["pipeline_cycles"])) if layers else "",
    }
    if view["latency"] is not None:
        view["latency_us"] = view["latency"] / view["clock_mhz"]
    return view


def _resources(hw: dict) -> list:
    """(resource, used, available, share) rows from ``hardware.resources`` / ``available``: the
    Verilog backend's estimate (``{total, available}``) or flat ``{name: count}`` figures."""
    used, avail = hw.get("resources"), hw.get("available") or {}
    if not isinstance(used, dict):
        return []
    if isinstance(used.get("total"), dict):  # the backend's estimate before synthesis
        total, cap = used["total"], used.get("available") or {}
        names = [("multipliers", "multipliers", "multipliers"), ("luts", "LUTs (estimated)", "luts"),
                 ("ffs", "flip-flops (estimated)", "ffs"), ("brams", "block RAMs (estimated)", "brams"),
                 ("rom_bits", "ROM bits", "memory_bits"), ("buffer_bits", "buffer bits", None)]
        used = {label: total[key] for key, label, _ in names if key in total}
        avail = {label: cap.get(c) for key, label, c in names if key in total and c}
    rows = []
    for name, value in used.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            cap = avail.get(name) if isinstance(avail, dict) else None
            cap = cap if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None
            rows.append((shorten(name, SHOWN), value, cap, value / cap if cap else None))
    return rows


def cycles_chart_svg(layers: list[dict], interval: int) -> str:
    """A bar per layer: its cycles per frame against the pipeline interval (the slowest layer)."""
    label_w, bar_w, row_h = 250, 560, 22
    top = 8
    height = top + row_h * len(layers) + 34
    scale = bar_w / max(interval, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="cycles" width="{label_w + bar_w + 230}" '
           f'height="{height}" font-family="sans-serif" font-size="11">']
    for i, layer in enumerate(layers):
        y = top + i * row_h
        w = max(layer["cycles"] * scale, 1.0)
        slowest = layer["cycles"] >= interval
        colour = "#c0392b" if slowest else "#2e86c1"
        name = escape(shorten(layer["name"], 36))
        tip = escape(f"{shorten(layer['name'], TOOLTIP)}: {layer['cycles']:,} cycles per frame, "
                   f"{100 * layer['share']:.0f} % of the {interval:,}-cycle interval, "
                   f"{layer['multipliers']} multipliers ({layer['parallelism'] or '-'})")
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
                   f'<title>{tip}</title></rect>')
        note = f"{layer['cycles']:,} ({100 * layer['share']:.0f} %)" + (f", {layer['multipliers']} mult"
                                                                       if layer["multipliers"] else "")
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(note)}</text>')
    x = label_w + interval * scale
    y_end = top + row_h * len(layers)
    out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y_end}" stroke="#333" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{label_w}" y="{y_end + 16}">cycles per frame; dashed: the pipeline interval '
               f'({interval:,} cycles, set by the slowest layer, red). A short bar is a layer that idles.</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


#: the verification figures by key (nested keys joined with '.'), in the order shown
FIGURES = {
    "cycles_per_frame": "cycles per frame (measured)",
    "cycles_per_frame_analytic": "cycles per frame (analytic)",
    "latency_cycles": "latency, cycles (first input to last output)",
    "build_seconds": "simulator build, s",
    "sim_frames_per_second": "simulation speed, frames/s",
    "sim_cycles_per_second": "simulation speed, clock cycles/s",
    "simulator": "simulator",
    "top": "top function",
    "compile_seconds": "C simulation compile, s",
    "compile_cached": "compile reused from cache",
    "sim_seconds": "C simulation run, s",
    "mismatched_values": "mismatched output values",
    "macs": "multiply-accumulates per inference",
    "flash_bytes": "network constants (flash), bytes",
    "arena_bytes": "activation arena (RAM), bytes",
    "arena_lower_bound": "arena lower bound, bytes",
    "compiler": "compiler",
    "arm.board": "Cortex-M4 board",
    "arm.samples": "Cortex-M4 samples",
    "arm.mismatches": "Cortex-M4 mismatches",
    "arm.flash_bytes": "Cortex-M4 network flash, bytes",
    "arm.ram_bytes": "Cortex-M4 network RAM, bytes",
    "arm.model.text": "Cortex-M4 network .text, bytes",
    "arm.model.data": "Cortex-M4 network .data, bytes",
    "arm.model.bss": "Cortex-M4 network .bss, bytes",
    "arm.elf.text": "Cortex-M4 test image .text, bytes",
    "arm.elf.data": "Cortex-M4 test image .data, bytes",
    "arm.elf.bss": "Cortex-M4 test image .bss, bytes",
    "arm.compiler": "Cortex-M4 compiler",
    "arm.instructions_per_frame": "Cortex-M4 executed instructions per frame (not cycles)",
    "arm.instructions_per_mac": "Cortex-M4 executed instructions per MAC (not cycles)",
    "arm.instruction_count.compiler": "Cortex-M4 instruction count: compiler",
    "arm.instruction_count.frames": "Cortex-M4 instruction count: frames counted",
    "arm.instruction_count.frame_spread": "Cortex-M4 instruction count: spread between frames",
    "arm.instruction_count.counted": "Cortex-M4 instruction count: what is counted",
    "arm.skipped": "Cortex-M4 check skipped",
    "first_mismatch_sample": "first mismatching sample",
    "first_mismatch_layer": "first mismatching layer",
}
#: the keys the verification table shows in its own columns
META = ("samples", "mismatches", "verified_at", "config", "files_sha256", "stale")


#: lists of per-layer figures the report shows as their own table, not as a figure
TABLES = ("arm.instruction_count.layers",)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, f"{path}.")
        elif not (not prefix and key in META) and path not in TABLES:
            items.append((path, value))
    return items


def instruction_layers(result: dict) -> list[dict]:
    """The per-layer executed instructions of a C target's Cortex-M4 count (``verify.json``
    ``arm.instruction_count.layers``), as table rows; [] where there are none."""
    layers = ((result.get("arm") or {}).get("instruction_count") or {}).get("layers")
    if not isinstance(layers, list):
        return []
    rows = []
    for entry in layers:
        if not isinstance(entry, dict):
            continue
        per_mac = entry.get("instructions_per_mac")
        rows.append({"layer": shorten(str(entry.get("layer", "")), SHOWN), "op": shorten(str(entry.get("op", "")), 20),
                     "instructions": number(entry.get("instructions")), "macs": number(entry.get("macs")),
                     "per_mac": number(per_mac) if isinstance(per_mac, (int, float)) else "-"})
    return rows


def stale_reason(target: str, result: dict, summary: dict) -> str | None:
    """Why ``result`` (of ``verify.json``) does not describe the build of ``summary``, or None:
    a later verify run left it out, or the generated files it checked have changed since."""
    if result.get("stale"):
        return str(result["stale"])
    digests = summary.get("files_sha256")
    if isinstance(digests, dict) and result.get("files_sha256"):
        if target not in digests:
            return "the current build has no such target"
        if digests[target] != result["files_sha256"]:
            return "the generated files changed since (rebuilt after this verification)"
    return None


def verification_view(verify: dict | None, summary: dict) -> list[dict]:
    """Per target: status (current, stale and why), samples, mismatches and named figures."""
    if not verify:
        return []
    rows = []
    for target, r in verify.items():
        stale = stale_reason(target, r, summary)
        items = _flatten(r)
        order = {key: i for i, key in enumerate(FIGURES)}
        items.sort(key=lambda kv: order.get(kv[0], len(order)))
        figures = [(FIGURES.get(k, k.replace("_", " ").replace(".", " / ")), number(v),
                    isinstance(v, (int, float)) and not isinstance(v, bool)) for k, v in items]
        rows.append({"target": shorten(target, SHOWN), "samples": r["samples"], "mismatches": r["mismatches"],
                     "verified_at": r.get("verified_at") or "unknown (no time recorded)",
                     "config": shorten(str(r.get("config") or ""), 120), "stale": stale, "figures": figures,
                     "instruction_layers": instruction_layers(r)})
    return rows


def render_report_data(summary: dict, hists: dict, verify: dict | None) -> str:
    """The report page from a build's summary, histograms and verification results."""
    from fpgagen.report.heatmap import heatmap_svg

    rows = heatmap_rows(summary, hists)
    heatmap = Markup(heatmap_svg(rows)) if rows else ""
    return render(
        "report/report.html.j2", s=summary, worst=worst_layer(summary), pct=pct, number=number,
        short=lambda text, n=SHOWN: shorten(text, n), tip=lambda text: shorten(text, TOOLTIP),
        layers=layer_table(summary), heatmap=heatmap, hardware=hardware_view(summary, verify),
        verify=verification_view(verify, summary),
    )
