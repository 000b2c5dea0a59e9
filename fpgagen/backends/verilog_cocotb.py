"""The cocotb testbench `fpgagen verify --targets verilog` runs on a generated top level.

It reads a job file (path in ``FPGAGEN_SIM_JOB``) naming an ``.npy`` of input frames (stream
order), streams every frame through the design with cocotbext-axi (random idle cycles on the
source, random back-pressure on the sink), records every output integer, then streams a few
frames back to back without pauses (the samples again, at least two frames) to measure cycles per
frame and latency. The outputs are written to the results before the timing run, and a design
that stops moving still reports the frames it gave out (see ``_watchdog``). With ``probe`` set
it also records every internal stream, so a mismatch can be traced to the first layer.
Results go to the job's ``results`` JSON; the comparison with the golden model is done by the
caller (:mod:`fpgagen.backends.verilog_sim`).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer
from cocotb.simtime import get_sim_time
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from fpgagen.backends import from_beats, from_words


PERIOD_NS = 10


def _pauses(rng: random.Random, busy: float):
    while True:
        yield rng.random() < busy


class Recorder:
    """Records the data of every handshake (valid & ready at a rising edge) on named streams."""

    def __init__(self, dut, streams: dict[str, tuple]):
        """``streams``: name -> (signal prefix, element width, signed[, elements per beat])."""
        self.dut = dut
        self.streams = {name: (getattr(dut, f"{sig}_tdata"), getattr(dut, f"{sig}_tvalid"),
                               getattr(dut, f"{sig}_tready"), width, signed, *(ew or [1]))
                        for name, (sig, width, signed, *ew) in streams.items()}
        self.beats = {name: [] for name in streams}

    async def run(self):
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            for name, (data, valid, ready, width, signed, ew) in self.streams.items():
                if valid.value == 1 and ready.value == 1:
                    self.beats[name].extend(from_beats([int(data.value)], width, signed, ew))


async def _watchdog(dut, rec, job: dict, outputs: list) -> None:
    """A design that stops moving fails with where it stands, instead of hanging the run:
    after ``max_cycles`` the state (valid, ready) of every internal stream is written out, with
    the output frames received until then (so that a wrong output is still reported as one)."""
    limit = job.get("max_cycles")
    if not limit:
        return
    await Timer(limit * PERIOD_NS, unit="ns")
    state = {}
    for name in job.get("streams", []):
        try:
            state[name] = {"valid": int(getattr(dut, f"{name}_tvalid").value),
                           "ready": int(getattr(dut, f"{name}_tready").value)}
        except AttributeError:
            state[name] = "not visible"
    counts = {name: len(beats) for name, beats in rec.beats.items()} if rec else {}
    Path(job["results"]).write_text(json.dumps({"timeout": limit, "streams": state, "beats": counts,
                                                "outputs": outputs, "probes": dict(rec.beats) if rec else {}}))
    raise AssertionError(f"no progress after {limit} cycles; stream states: {state}")


@cocotb.test()
async def stream_frames(dut):
    job = json.loads(Path(os.environ["FPGAGEN_SIM_JOB"]).read_text())
    frames = np.load(job["inputs"])
    rng = random.Random(job["seed"])
    in_w, in_signed = job["in_width"], job["in_signed"]
    out_w, out_signed = job["out_width"], job["out_signed"]
    out_elems = job["out_elements"]

    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, byte_size=in_w)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, byte_size=out_w)
    dut.rst.value = 1
    for _ in range(5):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    rec = None
    if job.get("probe"):  # records every internal stream, cycle by cycle (slow: one sample only)
        rec = Recorder(dut, job["probes"])
        cocotb.start_soon(rec.run())
    outputs = []  # one list of integers per output frame (up to its tlast), filled as they come
    cocotb.start_soon(_watchdog(dut, rec, job, outputs))

    # 1. every frame, with random idle cycles and random back-pressure
    if job["pauses"]:
        source.set_pause_generator(_pauses(rng, 0.3))
        sink.set_pause_generator(_pauses(rng, 0.3))
    mask = (1 << in_w) - 1
    for frame in frames:
        await source.send(AxiStreamFrame([int(v) & mask for v in frame]))
    for _ in range(len(frames)):
        got = await sink.recv()
        outputs.append(from_words(got.tdata, out_w, out_signed))
    # a design may emit a frame's last output before it has taken the frame's last input (rows
    # a strided layer never reads): every input beat goes in before the timing starts
    await source.wait()
    result = {"outputs": outputs, "probes": {}}
    if job.get("probe"):
        result["probes"] = {t: rec.beats[t] for t in job["probes"]}
    # the outputs are on record before the timing run (whose failure cannot hide them)
    Path(job["results"]).write_text(json.dumps(result))

    # 2. timing: frames back to back, no pauses (times from the frames' first and last beats)
    source.clear_pause_generator()
    sink.clear_pause_generator()
    source.pause = sink.pause = False  # clearing the generator leaves the last pause value standing
    for _ in range(20):
        await RisingEdge(dut.clk)
    n_timing = max(2, job["timing_frames"])  # the samples again, from the first, as often as needed
    sent = []  # the source sends copies; they come back through tx_complete with their times
    for i in range(n_timing):
        frame = frames[i % len(frames)]
        await source.send(AxiStreamFrame([int(v) & mask for v in frame], tx_complete=sent.append))
    received = [await sink.recv() for _ in range(n_timing)]
    await source.wait()  # the last input beats may go in after the last output came out
    sizes = sorted({len(f.tdata) for f in received})
    if sizes != [out_elems]:  # frames split at a wrong tlast: the comparison shows it, no timing
        result["timing_error"] = f"output frames of {sizes} elements, expected {out_elems}"
    else:
        ends = [f.sim_time_end // (PERIOD_NS * 1000) for f in received]  # ps -> cycles
        result["latency_cycles"] = int(ends[0] - sent[0].sim_time_start // (PERIOD_NS * 1000) + 1)
        result["cycles_per_frame"] = (ends[-1] - ends[0]) / (len(ends) - 1)
    result["cycles"] = int(get_sim_time(unit="ns")) // PERIOD_NS  # clock cycles simulated in all
    Path(job["results"]).write_text(json.dumps(result))
