"""The YAML build configuration: one documented schema, strict checking, resolved defaults.

Every key has a type, a default and a line of documentation (:data:`SCHEMA`); the README's
table is generated from it (``fpgagen build --print-config`` shows a resolved config). Unknown
keys, wrong types and missing files are errors naming the file and the key path, e.g.
``configs/x.yaml: quantization.word_length: expected an integer between 2 and 16, got 'eight'``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from fpgagen.devices import DEVICES
from fpgagen.errors import ConfigError, show
from fpgagen.fixed import ROUNDING_MODES
from fpgagen.ir.format import Format
from fpgagen.names import shorten
from fpgagen.quant.choose import METHODS
from fpgagen.quant.lower import OVERRIDE_KEYS, PER_CHANNEL_DEFAULT
from fpgagen.targets import BACKEND_MODULES

#: the config keys naming input files (resolved against the config's folder; ``output`` is a folder)
INPUT_PATH_KEYS = ("model", "data.calibration", "data.validation")

#: the targets a config may name: the backends of :mod:`fpgagen.targets`, in their order
TARGETS = tuple(BACKEND_MODULES)
BUILTIN_DATASETS = ("sklearn-digits", "sklearn-digits:train", "sklearn-digits:test")


@dataclass
class Field:
    doc: str
    default: Any = None
    check: Callable[[Any], Any] | None = None  # returns the cleaned value or raises ValueError(expected)
    required: bool = False


class Invalid(ValueError):
    """Raised by a check: its message says what was expected."""


def _int_range(lo, hi):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise Invalid(f"an integer between {lo} and {hi}")
        return v
    return check


def _number(lo=None, hi=None, exclusive_hi=False, nonzero=False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Invalid("a number")
        if nonzero and v == 0:
            raise Invalid("a non-zero number")
        if lo is not None and v < lo or hi is not None and (v >= hi if exclusive_hi else v > hi):
            raise Invalid(f"a number in [{lo}, {hi}{')' if exclusive_hi else ']'}")
        return float(v)
    return check


def _choice(options):
    def check(v):
        if v not in options:
            raise Invalid(f"one of {', '.join(map(str, options))}")
        return v
    return check


def _string(v):
    if not isinstance(v, str) or not v:
        raise Invalid("a non-empty string")
    return v


def _boolean(v):
    if not isinstance(v, bool):
        raise Invalid("true or false")
    return v


def _build_name(v):
    v = _string(v)
    if "/" in v or "\\" in v or v in (".", "..") or any(ord(ch) < 32 or ord(ch) == 127 for ch in v) \
            or len(v) > 200:
        raise Invalid("a build name usable as one directory name (no '/', '\\' or control characters, "
                      "not '.' or '..', at most 200 characters)")
    return v


def _targets(v):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or any(t not in TARGETS for t in v):
        raise Invalid(f"a list of targets from {', '.join(TARGETS)}")
    return [t for t in TARGETS if t in v]


def _format_string(v):
    try:
        return str(Format.parse(v))
    except ValueError as exc:
        raise Invalid(f"a fixed-point format such as 's8.3' ({exc})") from None


def _per_channel(v):
    if v is True or v is False or v == "auto":
        return v
    raise Invalid("true, false or auto")


def _weight_formats(v):
    """One format, or (per-channel weight formats, as formats.yaml writes them) a list of them."""
    if isinstance(v, list) and v:
        return [_format_string(f) for f in v]
    return _format_string(v)


_OVERRIDE_CHECKS = {
    "output": _format_string,
    "weight": _weight_formats,
    "bias": _format_string,
    "method": _choice(METHODS),
    "weight_method": _choice(METHODS),
    "eps": _number(0.0, 1.0, exclusive_hi=True),
    "word_length": _int_range(2, 16),
    "per_channel": _boolean,
}


def _overrides(v, path):
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise Invalid("a mapping from layer names or op types to overrides")
    out = {}
    for key, spec in v.items():
        key = _key(key, path)
        where = f"{path}.{shorten(key, 60)}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping of {', '.join(OVERRIDE_KEYS)}, got {show(spec)}")
        clean = {}
        for k2, val in spec.items():
            if k2 not in _OVERRIDE_CHECKS:
                raise ConfigError(f"{where}.{shorten(str(k2), 40)}: unknown key; expected one of {', '.join(OVERRIDE_KEYS)}")
            try:
                clean[k2] = _OVERRIDE_CHECKS[k2](val)
            except Invalid as exc:
                raise ConfigError(f"{where}.{k2}: expected {exc}, got {show(val)}") from None
        out[key] = clean
    return out


def _key(key, path: str) -> str:
    """A mapping key naming a layer: a string (YAML may read ``1`` or ``null`` as another type)."""
    if isinstance(key, bool) or not isinstance(key, (str, int, float)):
        raise ConfigError(f"{path}: expected layer names as keys, got {show(key)}")
    return str(key)


def _parallelism_entry(v, path):
    if not isinstance(v, dict):
        raise ConfigError(f"{path}: expected a mapping with pe, simd and/or taps, got {show(v)}")
    for k, val in v.items():
        if k not in ("pe", "simd", "taps"):
            raise ConfigError(f"{path}.{shorten(str(k), 40)}: unknown key; expected pe, simd or taps")
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ConfigError(f"{path}.{k}: expected a positive integer, got {show(val)}")
    return dict(v)


def _layer_parallelism(v, path):
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise Invalid("a mapping from layer names to {pe, simd, taps}")
    out = {}
    for k, spec in v.items():
        k = _key(k, path)
        out[k] = _parallelism_entry(spec, f"{path}.{shorten(k, 60)}")
    return out


SCHEMA: dict = {
    "name": Field("Name of the build (default: the config file's name).", None, _build_name),
    "model": Field("Path of the ONNX model, relative to the config file.", None, _string, required=True),
    "output": Field("Output directory, relative to the config file (default: out/<name> in the "
                    "working directory; `-o` overrides).", None, _string),
    "data": {
        "calibration": Field("Calibration data: a .npz (arrays x [, y]) or .npy (x) path, or a built-in "
                             f"data set ({', '.join(BUILTIN_DATASETS)}); not needed for a model that carries "
                             "its own quantization (QDQ, QONNX) on every tensor.", None, _string),
        "validation": Field("Labelled validation data (.npz with x and y, or a built-in data set); "
                            "default: none (no accuracy).", None, _string),
        "preprocess": {
            "scale": Field("x * scale + offset is what the model sees.", 1.0, _number(nonzero=True)),
            "offset": Field("See scale.", 0.0, _number()),
        },
        "samples": Field("Use at most this many calibration samples (default: all).", None, _int_range(1, 10**9)),
        "batch_size": Field("Batch size of calibration and validation runs.", 256, _int_range(1, 1 << 20)),
    },
    "quantization": {
        "word_length": Field("Bits of weights and activations.", 8, _int_range(2, 16)),
        "method": Field(f"How activation formats are chosen: {', '.join(METHODS)}.", "mse", _choice(METHODS)),
        "weight_method": Field("How weight formats are chosen.", "mse", _choice(METHODS)),
        "bias_word_length": Field("Bits of biases before alignment to the accumulator.", 8, _int_range(2, 32)),
        "bias_method": Field("How bias formats are chosen.", "max", _choice(METHODS)),
        "rounding": Field(f"How weights and biases are rounded to their formats: {', '.join(ROUNDING_MODES)}. "
                          "The datapath's requantization rounds half away from zero (SPEC.md 3), except where an "
                          "imported model's quantizer rounds half to even.",
                          "nearest-away", _choice(ROUNDING_MODES)),
        "snap_scales": Field("Imported quantization (QDQ, QONNX): round a scale that is not a power of two to "
                             "the nearest one (reported) instead of stopping with an error.", False, _boolean),
        "per_channel": Field("Per-channel weight formats of conv and dense layers (SPEC.md 3): each output "
                             "channel its own power-of-two weight format and shift, chosen from its own "
                             "weights; true, false, or auto (per model: kept where it raises the output's SQNR on the "
                             "calibration data, see the README).",
                             PER_CHANNEL_DEFAULT, _per_channel),
        "eps": Field("Fraction of values the coverage method may saturate.", 1e-4,
                     _number(0.0, 1.0, exclusive_hi=True)),
        "layers": Field("Per-layer overrides, by layer name or op type (conv, Conv, dense, Gemm, ...): "
                        f"{', '.join(OVERRIDE_KEYS)}. Formats are strings such as 's8.3'.", {}, "overrides"),
    },
    "targets": Field(f"Outputs to generate: any of {', '.join(TARGETS)}.", [], _targets),
    "parallelism": {
        "pe": Field("Default output channels/neurons computed in parallel per layer.", 1, _int_range(1, 4096)),
        "simd": Field("Default inputs per output multiplied in parallel per layer.", 1, _int_range(1, 4096)),
        "taps": Field("Kernel taps of one row multiplied in parallel per conv layer, beside PE x SIMD: the "
                      "default of a hand-set parallelism (the largest divisor of the kernel width at most this; "
                      "default 1) and, with automatic folding, the most any layer may take (default: no limit).",
                      None, _int_range(1, 4096)),
        "layers": Field("Per-layer parallelism by layer name: {pe: N, simd: M, taps: K} (taps: conv only, "
                        "dividing the kernel width).", {}, "parallelism"),
        "auto": Field("Choose every layer's PE, SIMD and taps automatically (`parallelism: auto` says the same): the "
                      "fastest balanced folding within the multiplier budget, or the cheapest reaching a target. "
                      "Default: on when a target or parallelism.multipliers is given without pe/simd.",
                      None, _boolean),
        "multipliers": Field("Multiplier budget of the automatic folding (default: hardware.multipliers).", None,
                             _int_range(1, 1 << 20)),
        "target_cycles": Field("Automatic folding: the fewest multipliers reaching this many cycles per frame.",
                               None, _int_range(1, 1 << 40)),
        "target_fps": Field("Automatic folding: the fewest multipliers reaching this many frames/s at "
                            "hardware.clock_mhz.", None, _number(0.0, 1e12, nonzero=True)),
    },
    "hardware": {
        "device": Field("FPGA the Verilog is built for (`fpgagen synth` places and routes it): "
                        f"{', '.join(DEVICES)}; its capacities are the default budgets. Default: none.",
                        None, _choice(tuple(DEVICES))),
        "clock_mhz": Field("Target clock in MHz (default: the device's, see the device table).", None,
                           _number(0.0, 2000.0, nonzero=True)),
        "multipliers": Field("Multiplier budget of the Verilog design in int8 products (default: the device's "
                             "DSP blocks x its int8 products per block, see the device table).",
                             None, _int_range(1, 1 << 20)),
        "luts": Field("LUT budget (default: the device's LUTs).", None, _int_range(1, 1 << 30)),
        "memory_bits": Field("Memory bits the Verilog design's ROMs (weights, biases) and buffers (line buffers, "
                             "FIFOs) may fill (default: the device's block RAM, else 4 Mbit, the block RAM of a "
                             "small FPGA); a bigger design is an error naming its largest layer.", None,
                             _int_range(1, 1 << 40)),
    },
    "verify": {
        "samples": Field("Samples `fpgagen verify` streams through each target.", 20, _int_range(1, 100000)),
        "verilog_sim": Field("How the verilog target is simulated: harness (a C++ stream harness built with the "
                             "design by Verilator, no Python per clock) or cocotb (the cocotb testbench, one "
                             "Python call per clock); both give the same results.", "harness",
                             _choice(("harness", "cocotb"))),
    },
}


def _resolve(raw, schema: dict, path: str, file: str) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: {path or 'top level'}: expected a mapping, got {show(raw)}")
    unknown = sorted(set(map(str, raw)) - set(schema))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"{file}: {shorten(where, 80)}: unknown key; expected one of {', '.join(schema)}")
    out = {}
    for key, spec in schema.items():
        where = f"{path}.{key}" if path else key
        if isinstance(spec, dict):
            out[key] = _resolve(raw.get(key), spec, where, file)
            continue
        if key not in raw or raw[key] is None:
            if spec.required:
                raise ConfigError(f"{file}: {where}: missing; {spec.doc}")
            out[key] = copy.deepcopy(spec.default)
            continue
        value = raw[key]
        try:
            if spec.check == "overrides":
                out[key] = _overrides(value, where)
            elif spec.check == "parallelism":
                out[key] = _layer_parallelism(value, where)
            else:
                out[key] = spec.check(value)
        except Invalid as exc:
            raise ConfigError(f"{file}: {where}: expected {exc}, got {show(value)}") from None
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    return out


def _check_path(cfg: dict, file: str, where: str, base: Path) -> None:
    keys = where.split(".")
    parent = cfg
    for k in keys[:-1]:
        parent = parent[k]
    value = parent[keys[-1]]
    if value is None or value in BUILTIN_DATASETS:
        return
    path = (base / value).resolve()
    if not path.is_file():
        raise ConfigError(f"{file}: {where}: file {show(value)} not found (looked for {path})")
    parent[keys[-1]] = str(path)


#: a config file larger than this is refused before it is parsed (configs are a few hundred bytes)
MAX_CONFIG_BYTES = 1 << 20
#: values a config may hold, counted with YAML aliases expanded (a "billion laughs" stops here)
MAX_CONFIG_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {show(key)} twice (first at line {seen[key] + 1}); "
                    "YAML would silently keep the last", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _count_nodes(value, file: str, budget: list) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{file}: the config holds more than {MAX_CONFIG_NODES:,} values (YAML aliases "
                          "expanded); expected a small build config")
    if isinstance(value, dict):
        for k, v in value.items():
            _count_nodes(k, file, budget)
            _count_nodes(v, file, budget)
    elif isinstance(value, list):
        for v in value:
            _count_nodes(v, file, budget)


def parse_yaml(path: Path, file: str):
    """The YAML document of a config file, checked for size, encoding and repeated keys."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{file}: config is {size:,} bytes; expected at most {MAX_CONFIG_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: expected UTF-8 text, found byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start}") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {shorten(str(exc), 400)}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid YAML: nested too deeply") from None
    _count_nodes(raw, file, [MAX_CONFIG_NODES])
    return raw


def load_config(path, overrides: dict | None = None) -> dict:
    """Read, check and resolve a YAML build config. Paths become absolute.

    ``overrides``: ``{section: {key: value}}`` set over the file's keys (command-line options).
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise ConfigError(f"{file}: config file {what}")
    raw = parse_yaml(path, file)
    for section, values in (overrides or {}).items():  # command-line options over the file's keys
        if isinstance(raw, dict) and isinstance(values, dict):
            raw[section] = {**(raw.get(section) or {}), **values}
    return resolve_config(raw, file, path.parent, default_name=path.stem)


def resolve_config(raw: dict, file: str = "<config>", base: Path | str = ".", default_name: str = "model") -> dict:
    """Check and resolve a config given as a dict (paths relative to ``base``)."""
    base = Path(base)
    if isinstance(raw, dict) and raw.get("parallelism") == "auto":
        raw = {**raw, "parallelism": {"auto": True}}
    cfg = _resolve(raw, SCHEMA, "", file)
    if cfg["name"] is None:
        try:
            cfg["name"] = _build_name(default_name)
        except Invalid as exc:
            raise ConfigError(f"{file}: name: the config file's name {show(default_name)} cannot name the build; "
                              f"set `name:` to {exc}") from None
    for where in INPUT_PATH_KEYS:
        _check_path(cfg, file, where, base)
    if cfg["output"] is not None:
        cfg["output"] = str((base / cfg["output"]).resolve())
    resolve_hardware(cfg["hardware"])
    _resolve_parallelism(cfg["parallelism"], file, raw.get("parallelism") if isinstance(raw, dict) else None)
    return cfg


def _resolve_parallelism(par: dict, file: str, raw) -> None:
    given = set(raw) if isinstance(raw, dict) else set()
    wants_auto = par["target_cycles"] is not None or par["target_fps"] is not None or par["multipliers"] is not None
    if par["auto"] is None:
        par["auto"] = wants_auto and not given & {"pe", "simd"}
    if par["auto"]:
        for key in ("pe", "simd"):
            if key in given:
                raise ConfigError(f"{file}: parallelism.{key}: cannot be combined with automatic folding "
                                  "(parallelism.auto); set a layer's own under parallelism.layers instead")
    elif par["target_cycles"] is not None or par["target_fps"] is not None:
        raise ConfigError(f"{file}: parallelism.target_cycles/target_fps: a target needs automatic folding; "
                          "remove parallelism.auto: false or the pe/simd defaults")
    if par["target_cycles"] is not None and par["target_fps"] is not None:
        raise ConfigError(f"{file}: parallelism: give target_cycles or target_fps, not both")


#: ROM budget of a design built for no particular device (the block RAM of a small FPGA); the
#: Verilog backend's default too
DEFAULT_MEMORY_BITS = 4 * 1024 * 1024


def resolve_hardware(hw: dict) -> None:
    """Budgets not given come from the device (memory_bits also without one: 4 Mbit)."""
    dev = DEVICES[hw["device"]] if hw["device"] else None
    if dev is not None:
        hw["clock_mhz"] = hw["clock_mhz"] or dev.clock_mhz
        hw["multipliers"] = hw["multipliers"] or dev.dsps * dev.int8_per_dsp
        hw["luts"] = hw["luts"] or dev.luts
    hw["memory_bits"] = hw["memory_bits"] or (dev.memory_bits if dev else DEFAULT_MEMORY_BITS)


def schema_rows(schema: dict = SCHEMA, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, default, doc) for every key: the README's config table."""
    rows = []
    for key, spec in schema.items():
        where = f"{prefix}.{key}" if prefix else key
        if isinstance(spec, dict):
            rows += schema_rows(spec, where)
        else:
            default = "required" if spec.required else yaml.safe_dump(spec.default, default_flow_style=True).strip()
            default = default.removesuffix("\n...").removesuffix(" ...").strip()
            rows.append((where, default, spec.doc))
    return rows


def dump_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
