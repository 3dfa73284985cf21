"""Render a ``report.html`` in headless Chromium and check that the screenshot is not blank.

Usage::

    .venv/bin/python scripts/render_report.py RESULTS/report.html [--out shot.png]

Chromium (the Debian package, ``apt-get install -y chromium``) opens the page from disk
(``file://``) with every network name unresolvable (``--host-resolver-rules``), so a page
that needed the network would show it; the browser's network log (``--log-net-log``) is
read back and every http(s) request it records is listed. The screenshot is "not blank"
when its pixel values vary (standard deviation over all pixels and channels ≥
``--min-std``, on the 0–1 scale) and at least ``--min-ink`` of the pixels are not the
page's background colour.

Exit status: 0 when the page rendered, is not blank and requested nothing from the
network; 1 otherwise; 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(
    chromium: str, page: Path, out: Path, width: int, height: int, budget_ms: int
) -> tuple[list[str], list[str]]:
    """Take the screenshot; return the http(s) URLs of the network log (`network_requests`)."""
    with tempfile.TemporaryDirectory(prefix="render-report-") as tmp:
        netlog = Path(tmp) / "netlog.json"
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--log-net-log={netlog}",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
        return network_requests(netlog)


def network_requests(netlog: Path) -> tuple[list[str], list[str]]:
    """http(s) requests in a Chromium NetLog: (made by the page, made by the browser itself).

    A request the page made carries the page's origin as initiator (``"null"`` for a
    ``file://`` page); the browser's own service calls (updates, accounts) have none
    (``"not an origin"``) and are listed apart: they are not the report's doing.
    """
    if not netlog.exists():
        return [], []
    page, browser = set(), set()
    for line in netlog.read_text(errors="replace").splitlines()[2:]:  # one event a line
        try:
            event = json.loads(line.rstrip().rstrip(","))
        except json.JSONDecodeError:
            continue  # the closing line, or a last event cut by the exit
        params = event.get("params") or {}
        url = params.get("url", "")
        if "initiator" in params and url.startswith(("http://", "https://")):
            (browser if params["initiator"] == "not an origin" else page).add(url)
    return sorted(page), sorted(browser)


def blank_check(png: Path) -> dict[str, float]:
    """Pixel statistics of a screenshot: std over all values, share of non-background pixels."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)[..., :3].astype(float)  # 0..1
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    ink = float(np.mean(np.any(np.abs(flat - background) > 1e-6, axis=1)))
    return {
        "width": pixels.shape[1],
        "height": pixels.shape[0],
        "std": float(pixels.std()),
        "ink": ink,
        "colours": int(len(colours)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="report.html to render")
    parser.add_argument("--out", type=Path, default=None, help="screenshot PNG (default: next to the page)")
    parser.add_argument("--chromium", default=None, help="browser executable (default: chromium on PATH)")
    parser.add_argument("--window-size", default="1400,3000", help="WIDTH,HEIGHT in px")
    parser.add_argument("--budget-ms", type=int, default=8000, help="virtual time for scripts before the shot")
    parser.add_argument("--min-std", type=float, default=0.02, help="least pixel standard deviation (0-1 scale)")
    parser.add_argument("--min-ink", type=float, default=0.01, help="least share of non-background pixels")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"{args.html}: no such file", file=sys.stderr)
        return 1
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("chromium not found; install the Debian package: apt-get install -y chromium", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.window_size.split(","))
    out = args.out or args.html.with_name("report_screenshot.png")
    requests, browser_own = screenshot(chromium, args.html, out, width, height, args.budget_ms)
    stats = blank_check(out)
    blank = stats["std"] < args.min_std or stats["ink"] < args.min_ink
    print(
        f"{out}: {stats['width']}x{stats['height']} px, pixel std {stats['std']:.3f}, "
        f"{stats['ink']:.1%} non-background pixels, {stats['colours']} colours → {'BLANK' if blank else 'not blank'}"
    )
    print(f"network requests by the page: {len(requests)}" + "".join(f"\n  {u}" for u in requests))
    print(f"(requests of the browser's own services, not the page: {len(browser_own)})")
    return 1 if blank or requests else 0


if __name__ == "__main__":
    sys.exit(main())
