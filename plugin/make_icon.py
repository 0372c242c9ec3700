"""Draw the plugin icon (plexcache-r.png, 256x256 RGBA) with nothing but the standard library.

A rounded tile, a play triangle, and three stacked bars for the fast pool under it. Re-run after editing:
`python3 plugin/make_icon.py` (the output is byte-for-byte reproducible).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIZE = 256
SAMPLES = 4  # supersampling per axis, for smooth edges
TILE = (31, 41, 55)
PLAY = (229, 160, 13)
BARS = (56, 189, 172)


def _inside_rounded(x: float, y: float, margin: float, radius: float) -> bool:
    lo, hi = margin, SIZE - margin
    cx = min(max(x, lo + radius), hi - radius)
    cy = min(max(y, lo + radius), hi - radius)
    return lo <= x <= hi and lo <= y <= hi and (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def _inside_triangle(x: float, y: float) -> bool:
    # Play triangle pointing right, in the upper part of the tile.
    ax, ay, bx, by, cx, cy = 92.0, 44.0, 92.0, 148.0, 182.0, 96.0

    def side(px: float, py: float, qx: float, qy: float) -> float:
        return (x - qx) * (py - qy) - (px - qx) * (y - qy)

    s1, s2, s3 = side(ax, ay, bx, by), side(bx, by, cx, cy), side(cx, cy, ax, ay)
    return (s1 <= 0 and s2 <= 0 and s3 <= 0) or (s1 >= 0 and s2 >= 0 and s3 >= 0)


def _inside_bars(x: float, y: float) -> bool:
    for top in (166.0, 188.0, 210.0):
        if 64 <= x <= 192 and top <= y <= top + 14 and _inside_rounded_bar(x, y, top):
            return True
    return False


def _inside_rounded_bar(x: float, y: float, top: float) -> bool:
    r = 7.0
    cx = min(max(x, 64 + r), 192 - r)
    return (x - cx) ** 2 + (y - (top + r)) ** 2 <= r**2


def pixel(px: int, py: int) -> tuple[int, int, int, int]:
    """Average the sub-samples of one pixel into straight RGBA."""
    acc = [0.0, 0.0, 0.0, 0.0]
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            x, y = px + (sx + 0.5) / SAMPLES, py + (sy + 0.5) / SAMPLES
            if not _inside_rounded(x, y, 8, 44):
                continue
            color = PLAY if _inside_triangle(x, y) else BARS if _inside_bars(x, y) else TILE
            for i in range(3):
                acc[i] += color[i]
            acc[3] += 1
    if not acc[3]:
        return (0, 0, 0, 0)
    n = acc[3]
    return (round(acc[0] / n), round(acc[1] / n), round(acc[2] / n), round(255 * n / SAMPLES**2))


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    rows = [b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE)]
    Path(__file__).with_name("plexcache-r.png").write_bytes(png(SIZE, SIZE, rows))


if __name__ == "__main__":
    main()
