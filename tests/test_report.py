"""``OUT/report.html``: self-contained, carries every section, and renders in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from fpgagen.config import resolve_config
from fpgagen.flow import build
from fpgagen.report.html import render_report, worst_layer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def cnn_out(tmp_path_factory):
    raw = yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text())
    raw["targets"] = []
    out = tmp_path_factory.mktemp("cnn")
    build(resolve_config(raw, "digits_cnn.yaml", CONFIGS, "digits_cnn"), out, progress=False)
    return out


def test_report_is_self_contained_and_complete(cnn_out):
    html = (cnn_out / "report.html").read_text()
    summary = json.loads((cnn_out / "summary.json").read_text())
    # no network: every image inline, no external script, style or font
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html
    assert html.count('src="data:image/png;base64,') == 1
    for section in ("Accuracy", "Layers", "MSB histograms", "Verification"):
        assert f"<h2>{section}</h2>" in html
    for layer in summary["layers"]:
        assert f"<td class=\"l\">{layer['name']}</td>" in html
        assert layer["output"] in html
    assert f"{100 * summary['accuracy']['float']:.2f} %" in html
    assert "Not verified yet" in html


def test_report_shows_verification_and_cycles(cnn_out, tmp_path):
    for name in ("summary.json", "histograms.json"):
        shutil.copy(cnn_out / name, tmp_path / name)
    summary = json.loads((tmp_path / "summary.json").read_text())
    first = summary["layers"][0]["name"]
    summary["hardware"] = {"layers": {first: {"parallelism": "4x1", "cycles": 1234}}, "pipeline_cycles": 1234}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "verify.json").write_text(json.dumps(
        {"verilog": {"samples": 20, "mismatches": 0, "cycles_per_frame": 1240},
         "c": {"samples": 20, "mismatches": 3, "first_mismatch_layer": "/fc/Gemm"}}))
    html = render_report(tmp_path)
    assert "Analytic cycles per frame of the pipeline: 1234" in html
    assert "<td>4x1</td><td>1234</td>" in html
    assert '<td class="ok">0</td>' in html and '<td class="bad">3</td>' in html
    assert "first_mismatch_layer: /fc/Gemm" in html


def test_worst_layer_is_the_largest_sqnr_drop():
    layers = [{"name": "a", "sqnr_db": 40.0}, {"name": "b", "sqnr_db": 38.0},
              {"name": "c", "sqnr_db": None}, {"name": "d", "sqnr_db": 20.0}, {"name": "e", "sqnr_db": 19.0}]
    assert worst_layer({"layers": layers}) == "d"


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian package `chromium`)")
def test_report_renders_in_headless_chromium(cnn_out, tmp_path):
    png = tmp_path / "report.png"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
           f"--screenshot={png}", (cnn_out / "report.html").resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr[-2000:]}"
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    grey = img[..., :3].mean(axis=2)
    assert grey.std() > 0.05, "the page rendered blank"
    # the heat map (a coloured image) is drawn, not just text: some strongly coloured pixels
    rgb = img[..., :3]
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert np.count_nonzero(saturation > 0.3) > 5000
