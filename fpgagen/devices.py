"""The FPGA devices fpgagen knows: capacities, synthesis flow and default clock.

Figures are from the vendors' family data sheets: Lattice iCE40 UltraPlus (FPGA-DS-02008),
Lattice ECP5/ECP5-5G (FPGA-DS-02012, table 1.1), AMD/Xilinx 7 Series FPGAs overview (DS180,
tables 4 and 10: Artix-7, Zynq-7000 DS190). ``int8_per_dsp`` is how many independent 8x8
products one DSP block computes per cycle in the datapath fpgagen generates: two on the iCE40,
whose SB_MAC16 fpgagen_mac_out uses in its 8x8 mode (two products per block: ``DSP_PAIR`` 1,
fpgagen_mul8x8x2), two on the 7-series, whose DSP48E1 multiplies one input by two packed weights
(two PE lanes sharing the input: ``DSP_PAIR`` 2), one on the ECP5 (the open flow has no
MULT9X9D; see the README, "Devices and `fpgagen synth`"). The multiplier budget of a device is ``dsps * int8_per_dsp``
int8 products.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fpgagen.errors import ConfigError


@dataclass(frozen=True)
class Device:
    name: str
    family: str  # ice40 | ecp5 | xc7
    part: str  # the vendor's part name
    luts: int  # LUT4 (Lattice) or LUT6 (Xilinx)
    ffs: int
    dsps: int  # DSP blocks (SB_MAC16, MULT18X18D, DSP48E1)
    dsp_kind: str
    int8_per_dsp: int
    brams: int  # block RAMs (EBR 4 kbit, DP16KD 18 kbit, RAMB36 36 kbit)
    bram_bits: int  # bits of one block RAM
    bram_kind: str
    spram_bits: int  # single-port RAM bits (UP5K SPRAM), 0 elsewhere
    ios: int  # user IOs of the package nextpnr places on
    clock_mhz: float  # default target clock
    nextpnr: tuple[str, ...]  # nextpnr arguments naming the part (empty: no open place and route)
    source: str

    @property
    def memory_bits(self) -> int:
        """Block RAM bits (SPRAM apart)."""
        return self.brams * self.bram_bits

    def as_dict(self) -> dict:
        d = asdict(self)
        d["nextpnr"] = list(self.nextpnr)
        d["memory_bits"] = self.memory_bits
        return d


DEVICES: dict[str, Device] = {d.name: d for d in [
    Device("ice40-up5k", "ice40", "iCE40UP5K-SG48", 5280, 5280, 8, "SB_MAC16", 2, 30, 4096, "EBR",
           4 * 256 * 1024, 39, 24.0, ("--up5k", "--package", "sg48"), "Lattice FPGA-DS-02008"),
    Device("ecp5-25f", "ecp5", "LFE5U-25F-6BG256C", 24288, 24288, 28, "MULT18X18D", 1, 56, 18432, "DP16KD",
           0, 197, 100.0, ("--25k", "--package", "CABGA256", "--speed", "6"), "Lattice FPGA-DS-02012"),
    Device("ecp5-45f", "ecp5", "LFE5U-45F-6BG256C", 43848, 43848, 72, "MULT18X18D", 1, 108, 18432, "DP16KD",
           0, 197, 100.0, ("--45k", "--package", "CABGA256", "--speed", "6"), "Lattice FPGA-DS-02012"),
    Device("ecp5-85f", "ecp5", "LFE5U-85F-6BG381C", 83640, 83640, 156, "MULT18X18D", 1, 208, 18432, "DP16KD",
           0, 205, 100.0, ("--85k", "--package", "CABGA381", "--speed", "6"), "Lattice FPGA-DS-02012"),
    Device("xc7a35t", "xc7", "xc7a35tcpg236-1", 20800, 41600, 90, "DSP48E1", 2, 50, 36864, "RAMB36E1",
           0, 106, 100.0, (), "AMD/Xilinx DS180"),
    Device("xc7z020", "xc7", "xc7z020clg400-1", 53200, 106400, 220, "DSP48E1", 2, 140, 36864, "RAMB36E1",
           0, 125, 100.0, (), "AMD/Xilinx DS190"),
]}


def device(name: str, key: str = "hardware.device") -> Device:
    if name not in DEVICES:
        raise ConfigError(f"{key}: expected one of {', '.join(DEVICES)}, got {name!r}")
    return DEVICES[name]


def device_table() -> list[dict]:
    """One row per device (the README's table)."""
    return [d.as_dict() for d in DEVICES.values()]
