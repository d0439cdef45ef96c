"""A dependency-free line plot written as PNG (numpy + zlib), for the examples.

Good enough for a learning curve: axes, a light grid, one or more series.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def _line(img, x0, y0, x1, y1, color):
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.linspace(x0, x1, n).round().astype(int)
    ys = np.linspace(y0, y1, n).round().astype(int)
    h, w, _ = img.shape
    for dx in (0, 1):
        ok = (xs + dx >= 0) & (xs + dx < w) & (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok] + dx] = color


def line_plot(path: str, series: dict[str, np.ndarray], width: int = 640, height: int = 400,
              y_range: tuple[float, float] | None = None) -> None:
    """Write ``series`` (name -> values over x = 0..n-1) as a PNG line chart."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 50, 20, 20, 40
    pw, ph = width - left - right, height - top - bottom
    values = np.concatenate([np.asarray(v, float) for v in series.values()])
    lo, hi = y_range if y_range else (float(np.nanmin(values)), float(np.nanmax(values)))
    hi = hi if hi > lo else lo + 1.0
    n = max(len(v) for v in series.values())
    for k in range(6):  # grid
        y = top + ph * k / 5
        _line(img, left, y, left + pw, y, (225, 225, 225))
    _line(img, left, top, left, top + ph, (0, 0, 0))
    _line(img, left, top + ph, left + pw, top + ph, (0, 0, 0))
    for i, (name, v) in enumerate(series.items()):
        v = np.asarray(v, float)
        xs = left + pw * np.arange(len(v)) / max(1, n - 1)
        ys = top + ph * (1 - (v - lo) / (hi - lo))
        for j in range(len(v) - 1):
            _line(img, xs[j], ys[j], xs[j + 1], ys[j + 1], COLORS[i % len(COLORS)])
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(height))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
