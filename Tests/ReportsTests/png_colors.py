#!/usr/bin/env python3
"""Counts the pixels of given colours in a PNG screenshot (8-bit RGB or RGBA, not
interlaced: what headless Chromium writes), with the PNG spec's five row filters.

    png_colors.py FILE '#2e9e5b' '#3b6fd8' ...   ->  {"#2e9e5b": 1234, ...}
"""
import json
import struct
import sys
import zlib

path, colors = sys.argv[1], sys.argv[2:]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
offset, idat, header = 8, b"", None
while offset < len(data):
    length, kind = struct.unpack(">I4s", data[offset:offset + 8])
    body = data[offset + 8:offset + 8 + length]
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    offset += 12 + length
width, height, depth, color_type, _, _, interlace = header
assert depth == 8 and color_type in (2, 6) and interlace == 0, f"unsupported PNG {header}"
channels = 3 if color_type == 2 else 4
raw = zlib.decompress(idat)
stride = width * channels
previous = bytearray(stride)
wanted = {bytes.fromhex(c.lstrip("#")): c for c in colors}
counts = {c: 0 for c in colors}
position = 0
for _ in range(height):
    kind = raw[position]
    row = bytearray(raw[position + 1:position + 1 + stride])
    position += 1 + stride
    for i in range(stride):
        left = row[i - channels] if i >= channels else 0
        up = previous[i]
        corner = previous[i - channels] if i >= channels else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
    for x in range(0, stride, channels):
        key = bytes(row[x:x + 3])
        if key in wanted:
            counts[wanted[key]] += 1
    previous = row
print(json.dumps(counts))
