// fpgagen stream harness: streams frames through a generated top level from C++, with no Python
// call per clock (`fpgagen verify --targets verilog`, verify.verilog_sim: harness).
//
// Built by Verilator (--cc --exe) with the design and its simulation wrapper (harness_top.v.j2:
// the top's ports plus the valid, ready and data of every internal stream as ports p<i>_*);
// harness_streams.h (generated) reads those. Does what the cocotb testbench
// (fpgagen/backends/verilog_cocotb.py) does, with the same cycle conventions:
//   1. reset (5 cycles), then every input frame, with random idle cycles on the source and random
//      back-pressure on the sink (30 % each, from a seeded xorshift64 generator, an LFSR) when
//      pauses=1, until every input beat went in and as many output frames (tlast) came out;
//   2. 20 idle cycles, then timing_frames frames (the inputs again, at least 2) back to back with
//      no pauses, until they are in and out.
// It writes one line per event to `out` (fpgagen/backends/verilog_sim.py reads them):
//   F <phase> <frame> <edge>        a frame was taken from the source's queue at this clock edge
//                                   (its first beat is driven after it: cocotbext-axi's sim_time_start)
//   O <phase> <edge> <data> <last>  an output beat (valid & ready at this rising edge)
//   P <stream> <data>               a beat of an internal stream (probe=1; after the reset)
//   T <edge>                        max_cycles reached (the design stopped moving), then
//   S <stream> <valid> <ready>      the handshake state of every internal stream
//   D <edge>                        finished
// Data are the raw unsigned words. Arguments: key=value (inputs, frames, elements, seed, pauses,
// timing_frames, max_cycles, probe, probes=i,j,..., out); inputs is a file of frames * elements
// little-endian uint32 words in stream order.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "Vharness.h"
#include "verilated.h"
#include "harness_streams.h"

namespace {

std::map<std::string, std::string> g_args;

const std::string& arg(const char* key) {
    auto it = g_args.find(key);
    if (it == g_args.end()) {
        std::fprintf(stderr, "harness: missing argument %s=...\n", key);
        std::exit(2);
    }
    return it->second;
}

uint64_t num(const char* key) { return std::strtoull(arg(key).c_str(), nullptr, 10); }

uint64_t g_rng = 1;

// true with probability p (xorshift64: a linear feedback shift register generator)
bool draw(double p) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return static_cast<double>(g_rng >> 11) * (1.0 / 9007199254740992.0) < p;
}

const double PAUSE = 0.3;

struct Sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vharness> top;
    FILE* out = nullptr;
    uint64_t edge = 0;  // rising edges so far
    uint64_t max_cycles = 0;
    bool probe = false;
    std::vector<int> probes;
    uint64_t frames_out = 0;  // output frames (tlast beats) so far

    // One clock cycle with the inputs as set: settle, sample the handshakes, rising edge.
    // Returns whether the source's beat was taken.
    bool cycle(int phase, bool record_probes) {
        top->clk = 0;
        top->eval();
        const bool in_fire = top->s_axis_tvalid && top->s_axis_tready;
        ++edge;
        if (top->m_axis_tvalid && top->m_axis_tready) {
            std::fprintf(out, "O %d %llu %llu %d\n", phase, static_cast<unsigned long long>(edge),
                         static_cast<unsigned long long>(top->m_axis_tdata), top->m_axis_tlast ? 1 : 0);
            if (top->m_axis_tlast) ++frames_out;
        }
        if (record_probes) {
            for (int i : probes) {
                uint64_t data;
                int valid, ready;
                stream_state(top.get(), i, &data, &valid, &ready);
                if (valid && ready) std::fprintf(out, "P %d %llu\n", i, static_cast<unsigned long long>(data));
            }
        }
        top->clk = 1;
        top->eval();
        return in_fire;
    }

    bool timed_out() {
        if (edge < max_cycles) return false;
        top->clk = 0;
        top->eval();
        std::fprintf(out, "T %llu\n", static_cast<unsigned long long>(edge));
        for (int i = 0; i < STREAMS; ++i) {
            uint64_t data;
            int valid, ready;
            stream_state(top.get(), i, &data, &valid, &ready);
            std::fprintf(out, "S %d %d %d\n", i, valid, ready);
        }
        return true;
    }

    // Streams the frames `order` (indices into `inputs`) and waits for `want_out` output frames
    // in all; false when max_cycles ran out.
    bool run(int phase, const std::vector<uint32_t>& inputs, uint64_t elements, const std::vector<uint64_t>& order,
             uint64_t want_out, bool pauses) {
        size_t frame = 0;
        uint64_t beat = 0;
        bool shown = false;  // the current beat is on the bus (tvalid high) and not yet taken
        bool queued = false;  // the current frame was taken from the queue (its start recorded)
        const uint32_t mask = static_cast<uint32_t>((1ull << IN_WIDTH) - 1);
        while (frame < order.size() || frames_out < want_out) {
            if (timed_out()) return false;
            if (frame < order.size() && !queued) {
                std::fprintf(out, "F %d %zu %llu\n", phase, frame, static_cast<unsigned long long>(edge));
                queued = true;
            }
            if (!shown && frame < order.size()) shown = !(pauses && draw(PAUSE));
            top->s_axis_tvalid = shown;
            top->s_axis_tdata = shown ? (inputs[order[frame] * elements + beat] & mask) : 0;
            top->s_axis_tlast = shown && beat + 1 == elements;
            top->m_axis_tready = !(pauses && draw(PAUSE));
            if (cycle(phase, probe)) {
                shown = false;
                if (++beat == elements) {
                    beat = 0;
                    ++frame;
                    queued = false;
                }
            }
        }
        top->s_axis_tvalid = 0;
        top->s_axis_tlast = 0;
        return true;
    }
};

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const char* eq = std::strchr(argv[i], '=');
        if (eq == nullptr) {
            std::fprintf(stderr, "harness: expected key=value, got %s\n", argv[i]);
            return 2;
        }
        g_args[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = eq + 1;
    }
    const uint64_t frames = num("frames"), elements = num("elements");
    std::vector<uint32_t> inputs(frames * elements);
    FILE* in = std::fopen(arg("inputs").c_str(), "rb");
    if (in == nullptr || std::fread(inputs.data(), 4, inputs.size(), in) != inputs.size()) {
        std::fprintf(stderr, "harness: cannot read %llu words from %s\n",
                     static_cast<unsigned long long>(inputs.size()), arg("inputs").c_str());
        return 2;
    }
    std::fclose(in);

    Sim sim;
    sim.ctx = std::make_unique<VerilatedContext>();
    sim.top = std::make_unique<Vharness>(sim.ctx.get());
    sim.out = std::fopen(arg("out").c_str(), "w");
    if (sim.out == nullptr) {
        std::fprintf(stderr, "harness: cannot write %s\n", arg("out").c_str());
        return 2;
    }
    g_rng = num("seed") * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    sim.max_cycles = num("max_cycles");
    sim.probe = num("probe") != 0;
    for (const char* p = arg("probes").c_str(); *p;) {
        char* end;
        long i = std::strtol(p, &end, 10);
        if (end == p) break;
        sim.probes.push_back(static_cast<int>(i));
        p = *end == ',' ? end + 1 : end;
    }

    auto* top = sim.top.get();
    top->clk = 0;
    top->rst = 1;
    top->s_axis_tvalid = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 0;
    for (int i = 0; i < 5; ++i) sim.cycle(0, false);
    top->rst = 0;
    sim.cycle(0, false);

    std::vector<uint64_t> order(frames);
    for (uint64_t i = 0; i < frames; ++i) order[i] = i;
    bool ok = sim.run(1, inputs, elements, order, frames, num("pauses") != 0);
    if (ok) {
        top->m_axis_tready = 1;
        for (int i = 0; i < 20; ++i) sim.cycle(2, sim.probe);
        const uint64_t timing = std::max<uint64_t>(2, num("timing_frames"));
        std::vector<uint64_t> again(timing);
        for (uint64_t i = 0; i < timing; ++i) again[i] = i % frames;
        ok = sim.run(2, inputs, elements, again, frames + timing, false);
    }
    if (ok) std::fprintf(sim.out, "D %llu\n", static_cast<unsigned long long>(sim.edge));
    std::fclose(sim.out);
    top->final();
    return 0;
}
