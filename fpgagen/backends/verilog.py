"""Verilog backend: the integer IR as a streaming AXI-Stream dataflow of library modules.

One instance per layer of the hand-written library in ``templates/verilog`` (each with its
parameter builder in :mod:`fpgagen.backends.rtl`), wired stream to stream:

- feature maps stream in HWC order (all channels of a pixel, pixel by pixel, row by row),
  vectors in index order, one element per beat, ``tlast`` on the last element of a frame;
- a Flatten read only by dense layers is free: each takes its weight columns in stream (HWC)
  order; any other Flatten (the model's output, an add's input) is an ``fpgagen_hwc_to_chw``
  that re-emits the map in the CHW order of the IR and the golden model;
- a tensor read by two layers goes through a fork; every input of a residual add goes through
  a FIFO deep enough for a whole frame, so the graph cannot deadlock (e.g. when one input is a
  fork of the other's source), every input of a concat through one of two frames
  (:func:`fpgagen.backends.dataflow.join_depth`; aliases, readers, forks and join buffers are
  the plan :mod:`fpgagen.backends.dataflow` shares with the HLS backend);
- a concat of n inputs is a chain of n - 1 two-input ``fpgagen_concat`` stages;
- weights and biases are ROMs initialised from ``.mem`` files (``$readmemh``).

Files: ``<top>.v`` (the generated top level), the library modules it uses, ``*.mem``, a
FuseSoC ``<top>.core`` and a ``filelist.f``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from dataclasses import dataclass, field

from fpgagen.version import __version__
from fpgagen.backends.dataflow import JOINS, OUTPUT, ancestors, join_depth, plan_dataflow
from fpgagen.backends.parallelism import check_parallelism_keys
from fpgagen.backends import rtl as _rtl_pkg
from fpgagen.backends.rtl import EMITTERS, RtlInstance, VerilogBits
from fpgagen.backends.rtl import resources as rtl_res
from fpgagen.backends.rtl import stream as rtl_stream
from fpgagen.backends.rtl.stream import flatten_reorders
from fpgagen.backends.rtl import widths as rtl_widths
from fpgagen.config import DEFAULT_MEMORY_BITS
from fpgagen.errors import BackendError
from fpgagen.ir.qgraph import QGraph, QLayer
from fpgagen.names import Namespace, quoted, verilog_string
from fpgagen.outdir import FileSet
from fpgagen.render import read_library_file, render

#: the largest ROM (weights + biases, in bits) a design may hold by default: 4 Mbit, a small FPGA


#: the top level's own ports: no stream may be named like them
TOP_PORTS = ("clk", "rst", "s_axis", "m_axis")


def library_modules() -> list[str]:
    """Every module of the hand-written library (``templates/verilog/fpgagen_*.v``)."""
    from fpgagen.render import templates_dir

    return sorted(p.stem for p in (Path(templates_dir()) / "verilog").glob("fpgagen_*.v"))


def top_name(q: QGraph) -> str:
    """The top module (and its file stems): ``fpgagen_<model>``, never a library module's name
    (compared case-insensitively, as file names on a case-insensitive file system)."""
    return Namespace(library_modules()).unique(f"fpgagen_{q.name}".lower())


def node_text(layer: QLayer) -> str:
    """``'name' (ONNX 'node', ...: Op)``: a layer and its ONNX nodes for comments, quoted."""
    nodes = ", ".join(quoted(n) for n in layer.onnx_nodes) or "-"
    return f"{quoted(layer.name)} (ONNX {nodes}: {quoted(layer.onnx_op or layer.op)[1:-1]})"


def order_text(shape) -> str:
    if len(shape) == 3:
        return "HWC order (channel-interleaved pixels, row-major)"
    return "index order"




@dataclass
class Stream:
    name: str
    #: tdata bits: ``ew`` elements of the tensor's word
    width: int
    comment: str
    #: elements per beat (element e at bits [e*word +: word])
    ew: int = 1


@dataclass
class Instance:
    name: str
    module: str
    params: list
    ports: list  # (port prefix, stream name)
    describe: str
    header: str
    cycles: int = 0
    mems: dict = field(default_factory=dict)
    #: the IR layer this instance computes (None for forks and FIFOs)
    layer: str | None = None
    #: the IR layer a fork or FIFO belongs to, for the resource estimates (its reader or producer)
    serves: str | None = None


@dataclass
class Design:
    top: str
    instances: list[Instance]
    streams: list[Stream]
    in_stream: str
    out_stream: str
    layer_cycles: dict  # layer name -> {pe, simd, cycles, parallelism}
    probes: dict  # tensor name -> stream name carrying it (HWC order)
    modules: list[str]
    #: layers without hardware (a flatten: absorbed into the next dense's weight order)
    notes: list[str] = field(default_factory=list)
    #: layer name -> its instance identifier (u_<ident>; the stem of its .mem files)
    layer_idents: dict = field(default_factory=dict)
    #: elements of the input or the output frame, whichever is more (one element per beat)
    frame_elements: int = 1

    @property
    def converter_cycles(self) -> int:
        """Cycles per frame of the slowest width converter (0 without one)."""
        return max([i.cycles for i in self.instances if i.module == rtl_stream.DWC] + [0])

    def stream_ew(self, name: str) -> int:
        """Elements per beat of the stream ``name``."""
        return next(s.ew for s in self.streams if s.name == name)

    @property
    def pipeline_cycles(self) -> int:
        """Cycles per frame, frames back to back: the slowest layer or width converter, or the
        model's input or output stream at one element per cycle when that is slower (a model of
        no layers)."""
        return max([c["cycles"] for c in self.layer_cycles.values()] + [self.frame_elements, self.converter_cycles, 1])


def _param_value(v) -> str:
    if isinstance(v, str):
        return f'"{verilog_string(v)}"'
    if isinstance(v, VerilogBits):  # a packed constant table
        return v.literal
    return str(int(v))


def flatten_relabels(q: QGraph, layer: QLayer) -> bool:
    """A flatten without hardware (the dataflow plan's alias): see :func:`flatten_reorders`."""
    return not flatten_reorders(q, layer)


# every builder module of fpgagen.backends.rtl registers its op's emitter (rtl.EMITTERS) and
# stream width rule (rtl.widths.EW_RULES)
_rtl_pkg.load_builders()


def _rtl(prefix: str, q: QGraph, layer: QLayer, cfg: dict, source, ew=(1, 1)) -> tuple[list[RtlInstance], int, int]:
    """The library instances of ``layer`` (one, or a chain of stages for a concat of more than
    two inputs: stage k joins stage k-1's output with input k+1) and its PE, SIMD; ``ew``: the
    elements per beat of its input and output streams."""
    emitter = EMITTERS.get(layer.op)
    if emitter is None:
        raise BackendError(f"layer {layer.name!r}: the Verilog library has no module for op {layer.op!r}")
    return emitter(prefix, q, layer, cfg, source, ew=ew)


def stream_widths(q: QGraph, cfg: dict, flow) -> dict:
    """Elements per beat of every stream: {layer: (EW in, EW out)}.

    They serve the pipeline's interval at the folding (every layer's cycles with its streams at
    their widest, :func:`fpgagen.backends.rtl.widths.layer_bound`; the model's ports carry one
    element per beat); each layer then takes the narrowest widths that keep up with it
    (:func:`fpgagen.backends.rtl.widths.choose`), its input's width where that serves, so a
    design whose streams all keep up at one element per beat stays as it was."""
    from fpgagen.backends.parallelism import layer_folding

    folds = {ly.name: layer_folding(cfg, q, ly, whole_groups=True) for ly in flow.layers}
    interval = rtl_widths.pipeline_cycles(q, folds)
    ew_of, chosen = {q.input: 1}, {}
    for ly in flow.layers:
        pe, simd, _ = folds[ly.name]
        given = ew_of.get(flow.source(ly.inputs[0])) if len(ly.inputs) == 1 else None
        chosen[ly.name] = rtl_widths.choose(q, ly, pe, simd, interval, given)
        ew_of[ly.output] = chosen[ly.name][1]
    return chosen


def plan_design(q: QGraph, cfg: dict, memory_bits: int | None = None) -> Design:
    """Every instance, stream and memory file of the design; errors before anything is written.

    ``memory_bits``: the memory the ROMs and buffers may fill (default: the config's
    ``hardware.memory_bits``, else :data:`DEFAULT_MEMORY_BITS`).
    """
    if memory_bits is None:
        memory_bits = ((cfg or {}).get("hardware") or {}).get("memory_bits") or DEFAULT_MEMORY_BITS

    check_parallelism_keys(cfg, q)
    # a flatten whose readers are all dense layers is only a relabelling: its output travels on
    # its input's stream (HWC order) and the dense takes its weight columns in that order; any
    # other flatten (read by an add, another flatten or the model output) reorders HWC to CHW
    flow = plan_dataflow(q, flatten_relabels)
    alias, source = flow.alias, flow.source

    streams: list[Stream] = []
    instances: list[Instance] = []
    modules: set[str] = set()
    width = {t: q.fmts[t].word for t in q.fmts}
    # identifiers of the top module: streams (wires <stream>_tdata ...) all begin with "s",
    # instances (u_<instance>, also the stems of their .mem files) with "u_", so neither can
    # meet the other; each kind is unique case-insensitively in its own namespace
    stream_ns = Namespace(TOP_PORTS)
    inst_ns = Namespace()
    layer_ident = {layer.name: inst_ns.unique(layer.name) for layer in flow.layers}

    def new_stream(name, tensor, comment, ew=1):
        s = Stream(stream_ns.unique(f"s_{name}"), width[tensor] * ew,
                   comment + (f", {ew} elements per beat" if ew > 1 else ""), ew)
        streams.append(s)
        return s.name

    ews = stream_widths(q, cfg, flow)
    ew_of = {q.input: 1, **{ly.output: ews[ly.name][1] for ly in flow.layers}}
    # the stream each tensor is produced on
    produced = {q.input: new_stream(q.input, q.input, f"input {quoted(q.input)} ({q.fmts[q.input]})")}
    for layer in flow.layers:
        produced[layer.output] = new_stream(layer.output, layer.output,
                                            f"{quoted(layer.name)} -> {quoted(layer.output)} ({layer.out_fmt})",
                                            ew_of[layer.output])

    def converter(s_in, tensor, ew_a, ew_b, who, serves):
        """``s_in`` (``ew_a`` elements per beat) re-cut to ``ew_b`` by an fpgagen_dwc; its stream."""
        dwc = rtl_stream.dwc_instance(width[tensor], ew_a, ew_b, math.prod(q.shapes[tensor]), who)
        dname = inst_ns.unique(f"dwc_{who}")
        out = new_stream(f"{dname}_out", tensor, f"{quoted(tensor)} for {quoted(who)}", ew_b)
        instances.append(Instance(dname, dwc.module, [(k2, _param_value(v)) for k2, v in dwc.params.items()],
                                  [("s_axis", s_in), ("m_axis", out)], dwc.describe,
                                  f"width converter of {quoted(tensor)}, {ew_a} -> {ew_b} elements per beat, "
                                  f"for {quoted(who)}", dwc.cycles, serves=serves))
        modules.add(dwc.module)
        return out

    # forks: a tensor read by n > 1 consumers is split by a chain of n-1 forks
    taps: dict[tuple[str, int], str] = {}  # (reader, input index) -> stream
    forks: dict[str, list[Instance]] = {}  # tensor -> its forks, placed after its producer
    for tensor, rs in flow.readers.items():
        current = produced[tensor]
        for k, read in enumerate(flow.fork_chain(tensor)):
            fork = rtl_stream.fork_instance(width[tensor] * ew_of[tensor])
            fname = inst_ns.unique(f"fork_{tensor}_{k}")
            a = new_stream(f"{fname}_a", tensor, f"copy of {quoted(tensor)} for {read.who}", ew_of[tensor])
            b = new_stream(f"{fname}_b", tensor, f"copy of {quoted(tensor)} for the other readers", ew_of[tensor])
            forks.setdefault(tensor, []).append(
                Instance(fname, fork.module, [(k2, _param_value(v)) for k2, v in fork.params.items()],
                         [("s_axis", current), ("m0_axis", a), ("m1_axis", b)], fork.describe,
                         f"fork of {quoted(tensor)}", serves=flow.producer(tensor)))
            modules.add(fork.module)
            taps[(read.reader, read.index)] = a
            current = b
        taps[(rs[-1].reader, rs[-1].index)] = current

    anc = ancestors(q)

    def held(ly: QLayer) -> int:
        """Input elements the instances of ``ly`` (and its forks and FIFOs) may take ahead of their outputs."""
        return sum(rtl_res.holds(inst.module, instance_params(inst)) for inst in instances
                   if ly.name in (inst.layer, inst.serves))

    layer_cycles = {}
    instances += forks.get(q.input, [])
    for layer in flow.layers:
        name = layer_ident[layer.name]
        ew_in, ew_out = ews[layer.name]
        stages, pe, simd = _rtl(name, q, layer, cfg, source, (ew_in, ew_out))
        ku = int(stages[0].params.get("KU", 1)) if layer.op == "conv" else 1  # fpgagen_conv2d's taps
        ins = []
        for i, t in enumerate(layer.inputs):
            s_in = taps[(layer.name, i)]
            if ew_of[source(t)] != ew_in:  # the producer's beats re-cut to this layer's
                s_in = converter(s_in, source(t), ew_of[source(t)], ew_in, layer.name, layer.name)
            if layer.op in JOINS:  # buffer each input of a join: the graph cannot deadlock
                depth = join_depth(q, layer, i, held, anc)
                fifo = rtl_stream.fifo_instance(width[t] * ew_in, -(-depth // ew_in))
                fname = inst_ns.unique(f"fifo_{layer.name}_{i}")
                s_buf = new_stream(f"{fname}_out", t, f"{quoted(t)} buffered for {quoted(layer.name)}", ew_in)
                instances.append(Instance(fname, fifo.module,
                                          [(k2, _param_value(v)) for k2, v in fifo.params.items()],
                                          [("s_axis", s_in), ("m_axis", s_buf)], fifo.describe,
                                          f"skip buffer of {depth} elements for {quoted(layer.name)} input {i}",
                                          serves=layer.name))
                modules.add(fifo.module)
                s_in = s_buf
            ins.append(s_in)
        header = f"{node_text(layer)}: {layer.describe()}, PE {pe} x SIMD {simd}" + (f" x taps {ku}" if ku > 1 else "")
        if len(layer.inputs) == 1:
            port_lists = [[("s_axis", ins[0])]]
        elif layer.op == "concat":  # stage k: (stage k-1's output or input 0, input k+1)
            port_lists = [[("s0_axis", None), ("s1_axis", ins[k + 1])] for k in range(len(stages))]
        else:
            port_lists = [[(f"s{i}_axis", s) for i, s in enumerate(ins)]]
        prev = ins[0]
        for k, (rtl, ports) in enumerate(zip(stages, port_lists)):
            last = k == len(stages) - 1
            if ports[0][1] is None:
                ports[0] = ("s0_axis", prev)
            if last:
                iname, out, owner = name, produced[layer.output], layer.name
            else:
                iname = inst_ns.unique(f"{layer.name}_stage{k}")
                out = new_stream(f"{iname}_out", layer.output,
                                 f"{quoted(layer.name)} stage {k}: its first {rtl.params['C0'] + rtl.params['C1']} "
                                 f"channels ({layer.out_fmt})", ew_in)
                owner = None
            instances.append(Instance(iname, rtl.module, [(k2, _param_value(v)) for k2, v in rtl.params.items()],
                                      ports + [("m_axis", out)], rtl.describe,
                                      header if last else f"{node_text(layer)}: stage {k} of {len(stages)}",
                                      rtl.cycles, dict(rtl.mems), owner, serves=None if last else layer.name))
            modules.add(rtl.module)
            prev = out
        instances += forks.get(layer.output, [])
        layer_cycles[layer.name] = {"pe": pe, "simd": simd, "taps": ku,
                                    "parallelism": f"{pe} x {simd}" + (f" x {ku} taps" if ku > 1 else ""),
                                    "multipliers": pe * simd * ku if layer.op in ("conv", "dense") else 0,
                                    "cycles": max(int(rtl.cycles) for rtl in stages)}
        if (ew_in, ew_out) != (1, 1):
            layer_cycles[layer.name].update(ew_in=ew_in, ew_out=ew_out)
    out_stream = taps[(OUTPUT, 0)]
    if ew_of[source(q.output)] > 1:  # the model's output port: one element per beat
        out_stream = converter(out_stream, source(q.output), ew_of[source(q.output)], 1, "output",
                               flow.producer(source(q.output)))
    check_memory(instances, memory_bits)
    # only streams in their tensor's own order (a relabelled flatten's output is not)
    probes = {t: produced[t] for t in q.fmts if t in produced}
    notes = []
    for layer in q.layers:
        if layer.output in alias:
            users = [r.reader for r in flow.readers.get(source(layer.output), []) if r.reader != OUTPUT]
            notes.append(f"{node_text(layer)}: no hardware, the {list(q.shapes[layer.inputs[0]])} map stays in "
                         f"HWC stream order"
                         + (f"; {', '.join(map(quoted, users))} takes its weight columns in that order" if users else ""))
    return Design(top_name(q), instances, streams, produced[q.input], out_stream,
                  layer_cycles, probes, sorted(modules), notes, layer_ident,
                  rtl_widths.port_bound(q))


def check_memory(instances: list[Instance], memory_bits: int) -> None:
    """The ROMs (the bits their .mem files hold) and every buffer the modules' models count (line
    buffers, window buffers, join FIFOs, output FIFOs) within ``memory_bits``, else an error naming
    the layer with the most memory."""
    per: dict[str, list[int]] = {}  # layer -> [rom bits, buffer bits]
    for inst in instances:
        owner = inst.layer or inst.serves or inst.name
        row = per.setdefault(owner, [0, 0])
        row[0] += sum(4 * len(ln.strip()) for text in inst.mems.values()
                      for ln in text.splitlines() if ln and not ln.startswith("//"))
        row[1] += sum(m.bits for m in rtl_res.memories(inst.module, instance_params(inst)) if m.kind == "buffer")
    rom_bits, buffers = sum(r for r, _ in per.values()), sum(b for _, b in per.values())
    if rom_bits + buffers <= memory_bits:
        return
    big = max(per, key=lambda n: sum(per[n]))
    raise BackendError(
        f"the design needs {rom_bits + buffers} bits of memory ({rom_bits} of weight and bias ROM, {buffers} of "
        f"line buffers and FIFOs), more than the configured {memory_bits} (hardware.memory_bits) (largest: layer "
        f"{big!r}, {per[big][0]} ROM + {per[big][1]} buffer bits); use a bigger device or a smaller model")


def render_top(q: QGraph, d: Design) -> str:
    in_shape = q.shapes[q.input]
    out_shape = q.shapes[q.output]
    slowest = quoted(max(d.layer_cycles, key=lambda n: d.layer_cycles[n]["cycles"])) if d.layer_cycles else ""
    return render(
        "verilog/top.v.j2", top=d.top, model=quoted(q.name), version=__version__,
        source=quoted(Path(q.source).name if q.source else q.name),
        input={"tensor": quoted(q.input), "shape": list(in_shape), "fmt": str(q.input_fmt),
               "elements": math.prod(in_shape), "order": order_text(in_shape)},
        output={"tensor": quoted(q.output), "shape": list(out_shape), "fmt": str(q.output_fmt),
                "elements": math.prod(out_shape), "order": order_text(out_shape)},
        in_width=q.input_fmt.word, out_width=q.output_fmt.word,
        pipeline_cycles=d.pipeline_cycles, slowest=slowest,
        instances=d.instances, streams=d.streams, in_stream=d.in_stream, out_stream=d.out_stream,
        notes=d.notes,
    )


def library_files(modules) -> dict[str, str]:
    """The hand-written modules a design instantiates (and what they instantiate)."""
    files = {}
    pending = list(modules) + ["fpgagen_requant"]
    while pending:
        mod = pending.pop()
        if f"{mod}.v" in files:
            continue
        text = read_library_file(f"verilog/{mod}.v")
        files[f"{mod}.v"] = text
        for used in re.findall(r"^\s*(fpgagen_[a-z0-9_]+)\s*(?:#|\w+\s*\()", text, re.M):
            if used != mod:
                pending.append(used)
    return files


def provenance(q: QGraph, d: Design, what: str) -> list[str]:
    """Header lines (without comment markers) naming the model, its layers' ONNX nodes, formats
    and parallelism; the same in every generated file, no timestamps."""
    source = Path(q.source).name if q.source else q.name
    lines = [f"{what} of {d.top}, the streaming dataflow datapath of model {quoted(q.name)} ({quoted(source)}), "
             f"generated by fpgagen {__version__}.",
             f"Input {quoted(q.input)} {list(q.shapes[q.input])} as {q.input_fmt}, output {quoted(q.output)} "
             f"{list(q.shapes[q.output])} as {q.output_fmt}; analytic cycles per frame: {d.pipeline_cycles}.",
             "Layers (ONNX nodes, formats, parallelism):"]
    lines += [f"  {inst.header}" for inst in d.instances if inst.layer is not None]
    lines += [f"  {note}" for note in d.notes]
    return lines


def core_file(top: str, sources: list[str], mems: list[str], header: list[str] = ()) -> str:
    lines = ["CAPI=2:"] + [f"# {ln}" for ln in header or [f"FuseSoC core of {top}, generated by fpgagen {__version__}"]]
    lines += [f"name: fpgagen:generated:{top}:0", "", "filesets:", "  rtl:", "    files:"]
    lines += [f"      - {s}" for s in sources]
    lines += ["    file_type: verilogSource"]
    if mems:
        lines += ["  mem:", "    files:"]
        lines += [f"      - {m}: {{copyto: {m}}}" for m in mems]
        lines += ["    file_type: user"]
    lines += ["", "targets:", "  default:", "    filesets: [rtl" + (", mem" if mems else "") + "]",
              f"    toplevel: {top}", "  lint:", "    default_tool: verilator", "    filesets: [rtl" +
              (", mem" if mems else "") + "]", "    tools:", "      verilator:", "        mode: lint-only",
              "        verilator_options: [-Wall]", f"    toplevel: {top}", ""]
    return "\n".join(lines)


def filelist_sources(text: str) -> list[str]:
    """The source files a ``filelist.f`` names (its ``//`` and ``#`` comment lines skipped)."""
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("//", "#"))]


def generate(build) -> FileSet:
    q = build.qgraph
    d = plan_design(q, build.cfg)
    files = FileSet()
    lib = library_files(d.modules)
    mems = {}
    model = provenance(q, d, "ROM image")[0]
    for inst in d.instances:
        for name, text in inst.mems.items():  # // comments are skipped by $readmemh
            mems[name] = f"// {model}\n// {inst.header}\n{text}"
    top_text = render_top(q, d)
    sources = sorted(lib) + [f"{d.top}.v"]
    for name, text in sorted(lib.items()):
        files.add(name, text)
    for name, text in sorted(mems.items()):
        files.add(name, text)
    files.add(f"{d.top}.v", top_text)
    # // comments: read by Verilator (-f) and Icarus Verilog (-c) alike
    head = [f"// {ln}" for ln in provenance(q, d, "Source list")]
    files.add("filelist.f", "\n".join(head + sources) + "\n")
    files.add(f"{d.top}.core", core_file(d.top, sources, sorted(mems), provenance(q, d, "FuseSoC core")))
    hw = (build.cfg or {}).get("hardware") or {}
    est = estimate_resources(d, hw)
    check_lut_budget(est, hw)
    build.hardware = {"target": "verilog", "top": d.top, "layers": d.layer_cycles,
                      "pipeline_cycles": d.pipeline_cycles, "resources": est}
    return files


def instance_params(inst: Instance) -> dict:
    """An instance's integer parameters (strings, i.e. file names, and packed tables left out)."""
    return {k: int(v) for k, v in inst.params if not v.startswith('"') and "'" not in v}


def estimate_resources(d: Design, hw: dict) -> dict:
    """Multipliers, DSP blocks, ROM and buffer bits, LUTs and flip-flops per layer and in total, and (with
    ``hardware.device``) block RAMs against the device's capacity: estimates before synthesis (see
    :mod:`fpgagen.backends.rtl.resources`; the multiplier budget is checked by the folding, the
    LUT budget by :func:`check_lut_budget`). LUTs and flip-flops are the device family's (LUT4
    of the iCE40 without a device)."""
    from fpgagen.backends.rtl import resources as res
    from fpgagen.devices import DEVICES

    dev = DEVICES.get(hw.get("device") or "")
    family = dev.family if dev is not None else "ice40"
    layers: dict[str, dict] = {}
    total = {"multipliers": 0, "dsps": 0, "rom_bits": 0, "buffer_bits": 0, "memories": 0, "luts": 0.0, "ffs": 0.0}
    if dev is not None:
        total["brams"] = 0
    for inst in d.instances:
        p = instance_params(inst)
        mems = res.memories(inst.module, p)
        luts, ffs = res.logic(inst.module, p, family)
        row = {"multipliers": res.multipliers(inst.module, p), "dsps": res.dsp_blocks(inst.module, p),
               "rom_bits": sum(m.bits for m in mems if m.kind == "rom"),
               "buffer_bits": sum(m.bits for m in mems if m.kind == "buffer"),
               "memories": sum(m.count for m in mems), "luts": luts, "ffs": ffs}
        if dev is not None:
            row["brams"] = sum(res.blocks(m, dev.family) for m in mems)
        owner = inst.layer or inst.serves
        if owner is not None:
            acc = layers.setdefault(owner, dict.fromkeys(row, 0))
            for k, v in row.items():
                acc[k] += v
        for k, v in row.items():
            total[k] += v
    for row in [total, *layers.values()]:
        row["luts"], row["ffs"] = round(row["luts"]), round(row["ffs"])
    out = {"estimate": "before synthesis (multipliers and memory bits from the modules' parameters; "
                       "block RAMs from the memories' shapes; LUTs and flip-flops from a model fitted to "
                       f"Yosys/nextpnr per module, {family} {'LUT6' if family == 'xc7' else 'LUT4'}); "
                       "`fpgagen synth` gives the tools' counts",
           "total": total, "layers": layers}
    if dev is not None:
        out["device"] = dev.name
        out["available"] = {"multipliers": dev.dsps * dev.int8_per_dsp, "dsps": dev.dsps, "brams": dev.brams,
                            "memory_bits": dev.memory_bits, "luts": dev.luts, "ffs": dev.ffs}
        out["fits"] = (total["multipliers"] <= out["available"]["multipliers"] and total["dsps"] <= dev.dsps
                       and total["brams"] <= dev.brams and total["luts"] <= dev.luts and total["ffs"] <= dev.ffs)
    if hw.get("luts"):
        out.setdefault("available", {})["luts"] = int(hw["luts"])
    return out


def check_lut_budget(est: dict, hw: dict) -> None:
    """An estimate over the LUT budget (``hardware.luts``: the device's LUTs by default) is an
    error naming the layer with the most LUTs."""
    budget = hw.get("luts")
    total = est["total"]["luts"]
    if not budget or total <= budget:
        return
    big = max(est["layers"], key=lambda n: est["layers"][n]["luts"]) if est["layers"] else None
    dev = f" of the {hw['device']}" if hw.get("device") else ""
    raise BackendError(
        f"the design needs an estimated {total} LUTs, more than the budget of {budget} (hardware.luts{dev}); the "
        f"largest is layer {big!r} with {est['layers'][big]['luts'] if big else 0} LUTs (estimated); use smaller "
        f"pe/simd or a bigger device")
