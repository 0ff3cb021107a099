#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from the real captures in captures/.

    fuzz/make-seeds.py OUTDIR

writes OUTDIR/FuzzCapture (capture files, cut to 64 KiB), OUTDIR/FuzzPackets (one frame
each, led by the fuzz target's link-type byte), OUTDIR/FuzzReassembly (one TCP connection
each as length-prefixed raw IP packets), OUTDIR/FuzzTLSWire (one direction of one TCP
connection each, led by an options byte), OUTDIR/FuzzCertificate (each certificate the
servers sent, DER), OUTDIR/FuzzRecords (each line of the golden records in
captures/golden), OUTDIR/FuzzOptions (option values from the README, led by the
parser's byte) and OUTDIR/FuzzKeyLog (the recorded key logs, and protected-record
plaintexts of the message types a TLS 1.3 server encrypts). Only classic pcap files feed the per-packet seeds.
"""
import hashlib
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
MAX_CAPTURE_SEED = 64 * 1024
MAX_FRAMES_PER_CAPTURE = 200
# Position of each link type in FuzzPackets' table (fuzz/Sources/FuzzPackets/Fuzz.swift).
FUZZ_LINK_INDEX = {1: 0, 113: 1, 276: 2, 0: 3, 108: 4, 101: 5, 228: 6, 229: 7, 9: 8, 50: 9}
# Bytes before the IP header for the link types the captures use.
LINK_HEADER = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0}


def pcap_packets(path):
    data = path.read_bytes()
    if len(data) < 24:
        return None, []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None, []
    link = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    packets, offset = [], 24
    while offset + 16 <= len(data):
        caplen = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        packets.append(data[offset + 16:offset + 16 + caplen])
        offset += 16 + caplen
    return link, packets


def tcp_segment(ip):
    """(flow key, seq, payload) of a TCP segment in a raw IP packet, else None."""
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[header:struct.unpack(">H", ip[2:4])[0]]
    elif version == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        src, dst, tcp = ip[8:24], ip[24:40], ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    payload = tcp[(tcp[12] >> 4) * 4:]
    return (src, sport, dst, dport), seq, payload


def write(directory, content):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(content).hexdigest()).write_bytes(content)


def certificates(stream):
    """The DER certificates of TLS 1.2 Certificate messages (RFC 5246 7.4.2) in a stream."""
    found, offset, messages = [], 0, bytearray()
    while offset + 5 <= len(stream) and stream[offset] in (20, 21, 22, 23):
        length = struct.unpack(">H", stream[offset + 3:offset + 5])[0]
        if stream[offset] == 22:
            messages += stream[offset + 5:offset + 5 + length]
        offset += 5 + length
    position = 0
    while position + 4 <= len(messages):
        kind, length = messages[position], int.from_bytes(messages[position + 1:position + 4], "big")
        body = messages[position + 4:position + 4 + length]
        if kind == 11 and len(body) >= 3:
            cursor = 3
            while cursor + 3 <= len(body):
                size = int.from_bytes(body[cursor:cursor + 3], "big")
                found.append(bytes(body[cursor + 3:cursor + 3 + size]))
                cursor += 3 + size
        position += 4 + length
    return found


OPTION_SEEDS = [(0, "1732857976.5"), (0, "2026-11-29 05:26:16"), (0, "2026-11-29T05:26:16.123456+01:00"), (0, "2026-11-29"),
                (1, "256M"), (1, "2G"), (1, "1048576"), (2, "5,10,30,300,3600"), (3, "127.0.0.1:443"), (3, "[::1]:8443"),
                (4, "86400"), (4, "0.5")]


# Plaintext a TLS 1.3 server protects (RFC 8446 4.3.1, 4.4.2, 4.6.1, 4.6.3, 4.4.4), shaped as
# those in the recorded key-log captures; FuzzKeyLog seals them itself.
def handshake(kind, body):
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


PROTECTED_SEEDS = [
    handshake(8, bytes.fromhex("0000")),  # EncryptedExtensions, none
    handshake(8, bytes.fromhex("0004002a0000")),  # EncryptedExtensions, early_data accepted
    handshake(11, bytes.fromhex("00000000")),  # Certificate, empty list
    handshake(4, bytes.fromhex("00000258" "94bc5e3a" "0100" "0010") + bytes(16) + bytes.fromhex("0008002a000400004000")),
    handshake(24, b"\x01"),  # KeyUpdate, update_requested
    handshake(20, bytes(32)),  # Finished
]


def main(out):
    for keys in sorted(CAPTURES.glob("*.keys")):
        write(out / "FuzzKeyLog", b"\x00" + keys.read_bytes()[:MAX_CAPTURE_SEED])
    for plaintext in PROTECTED_SEEDS:
        write(out / "FuzzKeyLog", b"\x01" + bytes([0, len(plaintext)]) + plaintext)
    write(out / "FuzzKeyLog", b"\x01" + b"".join(bytes([0, len(p)]) + p for p in PROTECTED_SEEDS))
    # TLS 1.2 after ChangeCipherSpec: Finished, then a renegotiation's HelloRequest.
    tls12 = [handshake(20, bytes(12)), handshake(0, b"")]
    write(out / "FuzzKeyLog", b"\x03" + b"".join(bytes([0, len(p)]) + p for p in tls12))
    for parser, text in OPTION_SEEDS:
        write(out / "FuzzOptions", bytes([parser]) + text.encode())
    for golden in sorted((CAPTURES / "golden").glob("*.jsonl")):
        for line in golden.read_bytes().splitlines()[:50]:
            write(out / "FuzzRecords", line)
    for capture in sorted(CAPTURES.glob("*.pcap*")):
        write(out / "FuzzCapture", capture.read_bytes()[:MAX_CAPTURE_SEED])
        link, frames = pcap_packets(capture)
        if link is None:
            continue
        if link in FUZZ_LINK_INDEX:
            for frame in frames[:MAX_FRAMES_PER_CAPTURE]:
                write(out / "FuzzPackets", bytes([FUZZ_LINK_INDEX[link]]) + frame)
        if link not in LINK_HEADER:
            continue
        connections, directions = {}, {}
        for frame in frames:
            ip = frame[LINK_HEADER[link]:]
            segment = tcp_segment(ip)
            if segment is None:
                continue
            (src, sport, dst, dport), seq, payload = segment
            connection = tuple(sorted([(src, sport), (dst, dport)]))
            connections.setdefault(connection, bytearray()).extend(struct.pack(">H", len(ip)) + ip)
            if payload:
                directions.setdefault((src, sport, dst, dport), {}).setdefault(seq, payload)
        for packets in connections.values():
            write(out / "FuzzReassembly", bytes(packets))
        for index, pieces in enumerate(directions.values()):
            stream = b"".join(pieces[seq] for seq in sorted(pieces))
            # Options byte: chunk size from the index, ciphertext after ChangeCipherSpec.
            write(out / "FuzzTLSWire", bytes([0x80 | (index % 64)]) + stream)
            for der in certificates(stream):
                write(out / "FuzzCertificate", der)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: make-seeds.py OUTDIR (a folder; it may not start with -)")
    main(Path(sys.argv[1]))
