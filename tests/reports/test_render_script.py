"""scripts/render_report.py: the blank-screenshot check and the network-log reader (no browser needed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render_report.py"


def _script():
    spec = importlib.util.spec_from_file_location("render_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_blank_check_tells_a_white_page_from_a_drawn_one(tmp_path):
    render = _script()
    white = np.ones((60, 80, 3))
    mpimg.imsave(tmp_path / "white.png", white)
    drawn = white.copy()
    drawn[10:30, 10:50] = [0.8, 0.1, 0.1]  # a red block on 1/6 of the page
    mpimg.imsave(tmp_path / "drawn.png", drawn)
    blank = render.blank_check(tmp_path / "white.png")
    assert blank["std"] == 0.0 and blank["ink"] == 0.0 and blank["colours"] == 1
    stats = render.blank_check(tmp_path / "drawn.png")
    assert (
        stats["ink"] == (20 * 40) / (60 * 80) and stats["std"] > 0.1 and (stats["width"], stats["height"]) == (80, 60)
    )


def test_network_log_splits_page_requests_from_the_browsers_own(tmp_path):
    render = _script()
    events = [
        {"params": {"initiator": "null", "url": "https://cdn.example.org/plotly.js"}, "type": 1},
        {"params": {"initiator": "not an origin", "url": "https://update.googleapis.com/x"}, "type": 1},
        {"params": {"url": "https://cdn.example.org/plotly.js"}, "type": 2},  # no initiator: not a request start
        {"params": {"initiator": "null", "url": "file:///tmp/report.html"}, "type": 1},
    ]
    lines = [
        '{"constants": {},',
        '"events": [',
        *(json.dumps(e) + "," for e in events),
        '{"params": {"url": "https://cut',
    ]
    (tmp_path / "netlog.json").write_text("\n".join(lines))
    page, browser = render.network_requests(tmp_path / "netlog.json")
    assert page == ["https://cdn.example.org/plotly.js"] and browser == ["https://update.googleapis.com/x"]
    assert render.network_requests(tmp_path / "missing.json") == ([], [])
