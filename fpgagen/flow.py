"""The named build steps, shared by the command line and the Python API.

``load -> calibrate -> choose formats -> lower -> validate -> emit targets``; :func:`build`
runs them all from a resolved config and writes the build directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from fpgagen.version import __version__
from fpgagen.config import dump_config, load_config
from fpgagen.backends.folding import apply_folding
from fpgagen.backends.parallelism import check_parallelism_keys
from fpgagen.data import load_data
from fpgagen.errors import show
from fpgagen.ir.graph import Graph, activation_name
from fpgagen.ir.qgraph import QGraph
from fpgagen.names import shorten
from fpgagen.outdir import FileSet, to_json
from fpgagen.quant.calibrate import Calibration, calibrate
from fpgagen.quant.lower import FormatPlan, LoweringStats, QuantOptions, choose_formats, lower, uncalibrated
from fpgagen.quant.per_channel import resolve_per_channel
from fpgagen.quant.validate import Validation, validate


def load_model(path, snap_scales: bool = False) -> Graph:
    from fpgagen.frontend.onnx import load_onnx

    return load_onnx(path, snap_scales)


def quant_options(cfg: dict) -> QuantOptions:
    q = cfg["quantization"]
    return QuantOptions(
        word_length=q["word_length"], method=q["method"], weight_method=q["weight_method"],
        bias_word_length=q["bias_word_length"], bias_method=q["bias_method"], eps=q["eps"],
        overrides=q["layers"], rounding=q["rounding"], per_channel=q["per_channel"],
    )


@dataclass
class Build:
    """Everything one build computed; the Python API returns it."""

    cfg: dict
    graph: Graph
    calibration: Calibration
    plan: FormatPlan
    qgraph: QGraph
    lowering: LoweringStats
    validation: Validation | None = None
    x_calib: object = None
    x_valid: object = None
    y_valid: object = None
    files: FileSet = field(default_factory=FileSet)
    #: filled by hardware backends: {"layers": {name: {...cycles}}, "pipeline_cycles": N}
    hardware: dict = field(default_factory=dict)
    #: the automatic folding (``parallelism: auto``), None when the config set it by hand
    folding: object = None
    #: things the user should know that do not stop the build (printed by the command line)
    warnings: list = field(default_factory=list)

    def summary(self) -> dict:
        return summary(self)


def default_output(cfg: dict) -> Path:
    return Path(cfg["output"]) if cfg["output"] else Path("out") / cfg["name"]


def output_dir(cfg: dict, out=None) -> Path:
    """The build directory: ``out`` (``-o``), else the config's ``output``, else out/<name>.

    Checked before any work is done: it must be a directory or a path where one can be made.
    """
    from fpgagen.outdir import check_output_dir

    if out is not None:
        return check_output_dir(out, "-o")
    return check_output_dir(default_output(cfg), "output" if cfg["output"] else "output directory")


def check_overrides(cfg: dict, graph: Graph) -> None:
    from fpgagen.errors import ConfigError

    known = {graph.input} | {n.name for n in graph.nodes} | {n.op for n in graph.nodes} | {n.onnx_op for n in graph.nodes}
    for key in cfg["quantization"]["layers"]:
        if key not in known:
            raise ConfigError(
                f"quantization.layers.{shorten(key, 60)}: no layer, op type or input named {show(key)} in model "
                f"{show(graph.name)}; layers are: {shorten(', '.join(n.name for n in graph.nodes), 400)}"
            )


def check_labels(y, q: QGraph, key: str) -> None:
    """Labels index the model's outputs: a label outside them would count as a silent miss."""
    import numpy as np

    from fpgagen.errors import ConfigError

    classes = int(np.prod(q.onnx_output_shape or q.shapes[q.output]))
    if y is not None and len(y) and (y.min() < 0 or y.max() >= classes):
        raise ConfigError(
            f"{key}: labels y range from {int(y.min())} to {int(y.max())}, but the model's output "
            f"{show(q.output)} has {classes} classes (labels 0 to {classes - 1}); top-1 accuracy would be wrong"
        )


def config_data(cfg: dict, which: str, graph: Graph):
    """``(x, y)`` of ``data.<which>`` (``calibration``: at most ``data.samples``; ``validation``),
    preprocessed and shaped for ``graph``'s input; ``(None, None)`` when not configured."""
    from fpgagen.errors import ConfigError

    if which not in ("calibration", "validation"):
        raise ConfigError(f"data: expected 'calibration' or 'validation', got {which!r}")
    pre = cfg["data"]["preprocess"]
    limit = cfg["data"]["samples"] if which == "calibration" else None
    return load_data(cfg["data"][which], f"data.{which}", graph.onnx_input_shape or graph.shapes[graph.input],
                     pre["scale"], pre["offset"], limit)


def run_quantization(cfg: dict, progress: bool | None = None) -> Build:
    """Load the model and data, calibrate, choose formats, lower, validate."""
    graph = load_model(cfg["model"], cfg["quantization"]["snap_scales"])
    check_overrides(cfg, graph)
    options = quant_options(cfg)
    x_cal = None
    need = uncalibrated(graph, options)
    if cfg["data"]["calibration"]:
        x_cal, _ = config_data(cfg, "calibration", graph)
    elif need:
        from fpgagen.errors import ConfigError

        given = (f"the model gives {len(graph.quant)} tensors their formats, but not "
                 if graph.quant else "the model carries no quantization (QDQ, QONNX) of ")
        raise ConfigError(f"data.calibration: missing; {given}{shorten(', '.join(map(show, need)), 300)}: "
                          f"give calibration data to choose their formats")
    if graph.quant and need:
        graph.notes.append(f"calibrated the {len(need)} tensor(s) the model does not quantize: "
                           f"{shorten(', '.join(map(show, need)), 300)}; the other {len(graph.quant)} keep the model's formats")
    elif graph.quant:
        graph.notes.append(f"every tensor keeps the format the model gives it ({len(graph.quant)} tensors): "
                           "no calibration")
    cal = calibrate(graph, x_cal if need else None, cfg["data"]["batch_size"], progress)
    per_channel, why = resolve_per_channel(graph, cal, options, x_cal)
    if per_channel != options.per_channel:  # auto, decided: the resolved config repeats the build
        cfg = {**cfg, "quantization": {**cfg["quantization"], "per_channel": per_channel}}
        options = replace(options, per_channel=per_channel)
    plan = choose_formats(cal, options)
    q, lowering = lower(graph, plan)
    if why:
        q.notes.append(why)
    check_parallelism_keys(cfg, q)
    folding = apply_folding(cfg, q)
    b = Build(cfg, graph, cal, plan, q, lowering, x_calib=x_cal, folding=folding)
    if cfg["data"]["validation"]:
        x_val, y_val = config_data(cfg, "validation", graph)
        check_labels(y_val, q, "data.validation")
        if y_val is None:
            b.warnings.append(f"data.validation: {show(cfg['data']['validation'])} holds no labels 'y': top-1 "
                              "accuracy is not measured (only float/fixed agreement and per-layer SQNR)")
        b.x_valid, b.y_valid = x_val, y_val
        b.validation = validate(graph, q, x_val, y_val, cfg["data"]["batch_size"], progress)
    return b


def _fmt(f) -> str | None:
    return None if f is None else str(f)


def layer_rows(b: Build) -> list[dict]:
    q = b.qgraph
    traces = b.validation.traces if b.validation else {}
    rows = []
    for layer in q.layers:
        w_stats = b.lowering.weights.get(layer.name)
        row = {
            "name": layer.name,
            "op": layer.op,
            "onnx_op": layer.onnx_op,
            "onnx_nodes": layer.onnx_nodes,
            "inputs": layer.inputs,
            "output_tensor": layer.output,
            "shape": list(q.shapes[layer.output]),
            "activation": activation_name(layer.activation),
            "input": [str(f) for f in layer.in_fmts],
            "weight": _fmt(layer.w_fmt),
            "bias": _fmt(layer.b_fmt),
            "output": str(layer.out_fmt),
            "shift": layer.shift,
            "acc_width": layer.acc_width,
            "acc_frac": layer.acc_frac,
            "weights": None if layer.weight is None else int(layer.weight.size),
            # per-channel weight formats (then "weight" is the finest, "shift" the common one)
            "weight_channels": None if layer.w_fmts is None else [str(f) for f in layer.w_fmts],
            "shifts": None if layer.shifts is None else [int(v) for v in layer.shifts],
            "biases": None if layer.bias is None else int(layer.bias.size),
            "weight_overflow_rate": w_stats.overflow_rate if w_stats else None,
            "weight_underflow_rate": w_stats.underflow_rate if w_stats else None,
        }
        row["resources"] = ((b.hardware or {}).get("resources") or {}).get("layers", {}).get(layer.name)
        trace = traces.get(layer.output)
        if trace is not None:
            t = trace.as_dict()
            row.update(overflow_rate=t["overflow_rate"], underflow_rate=t["underflow_rate"],
                       sqnr_db=t["sqnr_db"], quant_sqnr_db=t["quant_sqnr_db"])
        else:
            row.update(overflow_rate=None, underflow_rate=None, sqnr_db=None, quant_sqnr_db=None)
        rows.append(row)
    return rows


def histograms_json(cal: Calibration) -> dict:
    return {name: h.as_dict() for name, h in cal.hists.items()}


def summary(b: Build) -> dict:
    q = b.qgraph
    val = b.validation
    input_trace = val.traces[q.input].as_dict() if val else {}
    return {
        "fpgagen": __version__,
        "name": b.cfg["name"],
        "model": Path(b.cfg["model"]).name,
        "input": {"tensor": q.input, "shape": list(q.onnx_input_shape or q.shapes[q.input]),
                  "format": str(q.input_fmt), "overflow_rate": input_trace.get("overflow_rate"),
                  "underflow_rate": input_trace.get("underflow_rate")},
        "output": {"tensor": q.output, "shape": list(q.onnx_output_shape), "format": str(q.output_fmt)},
        "notes": q.notes,
        "warnings": b.warnings,
        "calibration": {"samples": b.calibration.samples, "method": b.cfg["quantization"]["method"],
                        "weight_method": b.cfg["quantization"]["weight_method"]},
        "accuracy": val.accuracy if val else {"float": None, "fixed": None},
        "validation": {"samples": val.samples if val else 0,
                       "top1_agreement": val.agreement if val else None},
        "layers": layer_rows(b),
        "hardware": b.hardware or None,
        "folding": None if b.folding is None else {
            "how": b.folding.how, "interval_cycles": b.folding.interval, "multipliers": b.folding.multipliers,
            "layers": {n: dict(zip(("pe", "simd", "taps"), fo)) for n, fo in b.folding.layers.items()}},
        "files_sha256": target_digests(b.files),
    }


def formats_yaml(b: Build) -> str:
    """The chosen formats as ``quantization.layers`` overrides: paste them to repeat a build."""
    import yaml

    layers = {b.qgraph.input: {"output": str(b.qgraph.input_fmt)}}
    for layer in b.qgraph.layers:
        if not layer.requantizes:
            continue
        entry = {"output": str(layer.out_fmt)}
        if layer.w_fmts is not None:  # per channel: one format per output channel
            entry["weight"] = [str(f) for f in layer.w_fmts]
        elif layer.w_fmt is not None:
            entry["weight"] = str(layer.w_fmt)
        if layer.b_fmt is not None:
            entry["bias"] = str(layer.b_fmt)
        layers[layer.name] = entry
    head = "# Formats chosen by calibration; as quantization.layers they repeat this build exactly.\n"
    if b.graph.quant:
        head = ("# Formats given by the model (imported quantization) or chosen by calibration; as "
                "quantization.layers they repeat them\n# (the requantizers' rounding comes from the model).\n")
    return head + yaml.safe_dump({"quantization": {"layers": layers}}, sort_keys=False)


def portable_config(cfg: dict, out: Path) -> dict:
    """``cfg`` with its file paths (model, data, output) relative to ``out``, where
    ``config.resolved.yaml`` is written: loading that file finds the same files, and no absolute
    path of the machine that built it is recorded."""
    import copy
    import os

    from fpgagen.config import BUILTIN_DATASETS, INPUT_PATH_KEYS

    cfg = copy.deepcopy(cfg)
    base = Path(out).resolve()
    for where in (*INPUT_PATH_KEYS, "output"):
        *parents, key = where.split(".")
        section = cfg
        for name in parents:
            section = section[name]
        value = section[key]
        if value is not None and value not in BUILTIN_DATASETS:
            section[key] = Path(os.path.relpath(Path(value).resolve(), base)).as_posix()
    return cfg


def quantization_files(b: Build, out: Path, report: bool = True) -> FileSet:
    """summary.json, histograms.json, formats.yaml, config.resolved.yaml and report.html."""
    from fpgagen.report.html import read_verify, render_report_data

    files = FileSet()
    s, hists = summary(b), histograms_json(b.calibration)
    files.add("summary.json", to_json(s))
    files.add("histograms.json", to_json(hists))
    files.add("formats.yaml", formats_yaml(b))
    files.add("config.resolved.yaml", dump_config(portable_config(b.cfg, out)))
    if report:
        files.add("report.html", render_report_data(s, hists, read_verify(out)))
    return files


def build(config, out=None, progress: bool | None = None) -> tuple[Build, Path]:
    """Run a whole build from a config path (or resolved dict) and write the build directory."""
    cfg = load_config(config) if not isinstance(config, dict) else config
    out = output_dir(cfg, out)
    b = run_quantization(cfg, progress)
    from fpgagen.targets import emit_targets

    emit_targets(b)
    b.files.update(quantization_files(b, out))
    b.files.write(out)
    return b, out




def calibration_only(config, out=None, progress: bool | None = None) -> tuple[Build, Path]:
    """Calibrate and choose formats (no validation, no targets); writes histograms and formats."""
    cfg = load_config(config) if not isinstance(config, dict) else dict(config)
    cfg = {**cfg, "data": {**cfg["data"], "validation": None}}
    out = output_dir(cfg, out)
    b = run_quantization(cfg, progress)
    b.files.update(quantization_files(b, out))
    b.files.write(out)
    return b, out


def verification_inputs(b: Build, samples: int):
    """The first ``samples`` validation samples (else calibration samples) as input integers,
    and the golden model's run on them (:func:`fpgagen.targets.reference_samples`)."""
    from fpgagen.targets import reference_samples

    xq, golden, _ = reference_samples(b, samples)
    return xq, golden


def target_digests(files: FileSet) -> dict[str, str]:
    """Per target, the SHA-256 of its generated files (paths and bytes): which build it was."""
    import hashlib

    from fpgagen.targets import BACKEND_MODULES

    digests = {}
    for target in BACKEND_MODULES:
        prefix = f"{target}/"
        h = hashlib.sha256()
        rels = sorted(rel for rel in files.files if rel.startswith(prefix))
        for rel in rels:
            data = files.files[rel]
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
        if rels:
            digests[target] = h.hexdigest()
    return digests


def mark_stale(results: dict, targets, now: str) -> dict:
    """``results`` (from an earlier ``verify.json``) with every target not verified ``now`` marked
    ``stale``: it stays on record with the time and config it came from, never as current."""
    marked = {}
    for t, r in results.items():
        if t in targets:
            continue
        r = dict(r)
        if not r.get("stale"):
            r["stale"] = f"from an earlier run; the run of {now} verified {', '.join(targets)} only"
        marked[t] = r
    return marked


#: the verify.json entry of the comparison with onnxruntime (a model that carries its own quantization)
ORACLE = "onnxruntime"


def onnxruntime_check(b: Build) -> tuple[str, dict] | None:
    """For a model that carries its own quantization: the golden model's dequantized output against
    the model's own executor on every validation sample (``==``): onnxruntime for QDQ, qonnx's for
    QONNX; else None. Without that executor installed, a record that says so (0 samples)."""
    if not b.graph.quant or b.x_valid is None:
        return None
    from fpgagen.frontend import oracle

    name = "qonnx" if oracle.is_qonnx(b.graph) else ORACLE
    try:
        __import__(name if name == "qonnx" else "onnxruntime")
    except ImportError:
        return name, {"samples": 0, "mismatches": 0, "result": f"not compared: {name} is not installed"}
    compare = oracle.compare_qonnx if name == "qonnx" else oracle.compare_onnxruntime
    r = compare(b.cfg["model"], b.graph, b.qgraph, b.x_valid)
    r["result"] = (f"bit-exact vs {name} on {r['samples']} samples" if not r["mismatches"] else
                   f"{r['mismatches']} of {r['samples']} samples differ from {name}")
    if r["first_mismatch_sample"] is None:
        del r["first_mismatch_sample"]
    return name, r


def verify(config, targets=None, samples=None, out=None, progress: bool | None = None):
    """Build, then run every target's generated code on real samples against the golden model.

    Writes ``OUT/verify.json`` (per target: ``samples``, ``mismatches``, target figures and the
    run's ``verified_at`` time, ``config`` and generated-files digest) and returns ``(results,
    out)`` for the targets of this run only; results of other targets left in ``verify.json`` by
    earlier runs stay there marked ``stale``. Raises :class:`VerificationMismatch` after writing
    when any integer differs.
    """
    from datetime import datetime, timezone

    from fpgagen.errors import ConfigError, VerificationMismatch
    from fpgagen.outdir import atomic_write
    from fpgagen.progress import Progress
    from fpgagen.report.html import read_verify, render_report
    from fpgagen.targets import backend, emit_targets

    cfg = load_config(config) if not isinstance(config, dict) else config
    targets = list(dict.fromkeys(targets or cfg["targets"]))
    if not targets:
        raise ConfigError("verify: no targets: name them with --targets or in the config's `targets`")
    for t in targets:
        if backend(t).verify is None:
            raise ConfigError(f"verify: target {t!r} has no verifier")
    samples = samples or cfg["verify"]["samples"]
    out = output_dir(cfg, out)
    b = run_quantization(cfg, progress)
    emit_targets(b, sorted(set(cfg["targets"]) | set(targets)))
    digests = target_digests(b.files)
    path = out / "verify.json"
    earlier = read_verify(out) or {}  # read (and checked) before anything is written
    b.files.update(quantization_files(b, out, report=False))
    b.files.write(out)
    xq, golden = verification_inputs(b, samples)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    origin = str(config) if not isinstance(config, dict) else f"{cfg['name']} (a config dict)"
    results = {}
    with Progress(f"verify {len(xq)} samples", len(targets), enabled=progress) as bar:
        for t in targets:
            results[t] = {**backend(t).verify(b, out / t, xq, golden),
                          "verified_at": now, "config": origin, "files_sha256": digests.get(t)}
            bar.update(1)
    oracle = onnxruntime_check(b)
    if oracle is not None:
        results[oracle[0]] = {**oracle[1], "verified_at": now, "config": origin}
    atomic_write(path, to_json({**results, **mark_stale(earlier, targets, now)}))
    atomic_write(out / "report.html", render_report(out))
    bad = {t: r for t, r in results.items() if r["mismatches"]}
    if bad:
        detail = "; ".join(
            f"{t}: {r['mismatches']} of {r['samples']} samples differ"
            + (" from the golden model's dequantized output" if t in (ORACLE, "qonnx") else "")
            + (f", first in layer {r['first_mismatch_layer']!r}" if r.get("first_mismatch_layer") else "")
            for t, r in bad.items()
        )
        raise VerificationMismatch(f"{detail} (see {path})")
    return results, out
