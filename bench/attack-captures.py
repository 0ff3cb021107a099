#!/usr/bin/env python3
"""Writes HAND-MADE hostile captures for the adversarial benchmark (bench/attack.sh) and the
tests of issue 14, each the way an attacker would shape traffic, and a NORMAL capture of
the same packet count to compare with.

    attack-captures.py KIND COUNT OUT.pcap

KIND (COUNT is the size of the attack, as said):
  tcp-collide      COUNT IPv6 flows whose clients differ only in the top bits of each half
  tcp-random       COUNT IPv6 flows from random clients (what tcp-collide is compared with)
  tcp-onebyte      COUNT TCP flows that carry one byte each way and never close
  dtls-hellos      COUNT DTLS ClientHellos from fresh ports (the hello of captures/dtls.pcap)
  frag-first       COUNT first fragments of IPv4 datagrams that never complete
  quic-initials    COUNT copies of the first client Initial of captures/quic.pcap, fresh ports
  quic-fresh-dcids the same Initial COUNT times, each re-encrypted under its own Destination
                   Connection ID (as COUNT real clients would send): keys to derive per packet
  dtls-fragments   one DTLS message sent as COUNT one-byte fragments
  dtls-big         COUNT DTLS flows, each with eight one-byte fragments of 128 KiB messages
  stalled-hello    one ClientHello never answered but kept alive, then COUNT handshakes
  distinct-sni     COUNT handshakes, each with its own 16 KB server name
  many-sessions    COUNT full handshakes, each issuing its own session ID under its own
                   253-byte server name (what the session linker must remember)
  normal           COUNT packets of real handshakes: captures/nginx-timeout.pcap (nginx
                   and openssl s_client) replayed, each replay from a new client address

Packets are built here byte by byte (checksums zero: tlsreuse does not check them); the
DTLS, QUIC and normal captures reuse datagrams and packets recorded in captures/.
"""
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.join(HERE, "..", "captures")


class Writer:
    """Classic pcap, microseconds, Ethernet."""

    def __init__(self, path):
        self.out = open(path, "wb", buffering=1 << 20)
        self.out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.time = 1_700_000_000.0
        self.packets = 0

    def add(self, frame, step=0.00001):
        self.time += step
        seconds = int(self.time)
        micros = int((self.time - seconds) * 1e6)
        self.out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
        self.out.write(frame)
        self.packets += 1

    def close(self):
        self.out.close()


def ether(ethertype):
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack(">H", ethertype)


def ipv4(source, destination, proto, payload, ident=0, flags_offset=0):
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_offset, 64, proto, 0,
                         source.to_bytes(4, "big"), destination.to_bytes(4, "big"))
    return ether(0x0800) + header + payload


def ipv6(source, destination, proto, payload):
    header = struct.pack(">IHBB16s16s", 0x60000000, len(payload), proto, 64, source.to_bytes(16, "big"),
                         destination.to_bytes(16, "big"))
    return ether(0x86DD) + header + payload


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


SYN, ACK, PSH, FIN, SYNACK = 0x02, 0x10, 0x08, 0x01, 0x12


def be16(v):
    return struct.pack(">H", v)


def be24(v):
    return struct.pack(">I", v)[1:]


def records(messages):
    out = b""
    for start in range(0, len(messages), 16384):
        piece = messages[start:start + 16384]
        out += b"\x16\x03\x03" + be16(len(piece)) + piece
    return out


def client_hello(sni, random_byte=1):
    extensions = b""
    if sni is not None:
        entry = b"\x00" + be16(len(sni)) + sni
        listed = be16(len(entry)) + entry
        extensions += be16(0) + be16(len(listed)) + listed
    extensions += be16(35) + be16(0)
    body = b"\x03\x03" + bytes([random_byte]) * 32 + b"\x00" + be16(2) + b"\xc0\x2f" + b"\x01\x00" + be16(len(extensions)) + extensions
    return b"\x01" + be24(len(body)) + body


def server_flight(random_byte=2, session_id=b""):
    hello = b"\x03\x03" + bytes([random_byte]) * 32 + bytes([len(session_id)]) + session_id + b"\xc0\x2f" + b"\x00" + be16(0)
    return b"\x02" + be24(len(hello)) + hello + b"\x0b" + be24(3) + be24(0) + b"\x0e" + be24(0)


def conversation(w, client, cport, server, sport, client_bytes, server_bytes, close=True):
    """A TCP handshake, the client's bytes, the server's bytes, in 1400-byte segments."""
    cseq, sseq = 1000, 5000
    w.add(ipv4(client, server, 6, tcp(cport, sport, cseq, 0, SYN)))
    w.add(ipv4(server, client, 6, tcp(sport, cport, sseq, cseq + 1, SYNACK)))
    cseq += 1
    sseq += 1
    w.add(ipv4(client, server, 6, tcp(cport, sport, cseq, sseq, ACK)))
    for start in range(0, len(client_bytes), 1400):
        piece = client_bytes[start:start + 1400]
        w.add(ipv4(client, server, 6, tcp(cport, sport, cseq, sseq, ACK | PSH, piece)))
        cseq += len(piece)
    for start in range(0, len(server_bytes), 1400):
        piece = server_bytes[start:start + 1400]
        w.add(ipv4(server, client, 6, tcp(sport, cport, sseq, cseq, ACK | PSH, piece)))
        sseq += len(piece)
    if close:
        w.add(ipv4(client, server, 6, tcp(cport, sport, cseq, sseq, ACK | FIN)))
        w.add(ipv4(server, client, 6, tcp(sport, cport, sseq, cseq + 1, ACK | FIN)))


def read_pcap(path):
    """(link type, [frame]) of a classic pcap."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    link = struct.unpack(endian + "I", data[20:24])[0]
    frames, offset = [], 24
    while offset + 16 <= len(data):
        _, _, captured, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        frames.append(data[offset + 16:offset + 16 + captured])
        offset += 16 + captured
    return link, frames


def udp_payloads(path):
    """The UDP payloads of an Ethernet, cooked or loopback capture, with their ports."""
    link, frames = read_pcap(path)
    out = []
    for frame in frames:
        start = {1: 14, 113: 16, 276: 20, 0: 4}.get(link)
        if start is None:
            continue
        if link == 1:
            ethertype = struct.unpack(">H", frame[12:14])[0]
        elif link == 113:
            ethertype = struct.unpack(">H", frame[14:16])[0]
        elif link == 276:
            ethertype = struct.unpack(">H", frame[0:2])[0]
        else:
            ethertype = 0x0800 if frame[start] >> 4 == 4 else 0x86DD
        if ethertype == 0x0800 and frame[start + 9] == 17:
            header = (frame[start] & 0x0F) * 4
            u = start + header
        elif ethertype == 0x86DD and frame[start + 6] == 17:
            u = start + 40
        else:
            continue
        sport, dport = struct.unpack(">HH", frame[u:u + 4])
        out.append((sport, dport, frame[u + 8:]))
    return out


def first_payload(path, test):
    for sport, dport, payload in udp_payloads(path):
        if test(payload):
            return payload
    raise SystemExit(f"{path}: no datagram of the kind needed")


def dtls_record(epoch_seq, fragment):
    return b"\x16\xfe\xfd" + struct.pack(">HHI", 0, 0, epoch_seq) + be16(len(fragment)) + fragment


def dtls_fragment(msg_type, length, seq, offset, data):
    return bytes([msg_type]) + be24(length) + be16(seq) + be24(offset) + be24(len(data)) + data


def main():
    kind, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    w = Writer(path)
    server4 = 0x0A000002
    rng = random.Random(7)
    if kind in ("tcp-collide", "tcp-random"):
        server = 0x20010DB8 << 96 | 0x443
        # The colliding family has 2^18 members (nine top bits of each 64-bit half); the
        # random flows it is compared with are cut the same way.
        for n in range(min(count, 1 << 18)):
            if kind == "tcp-collide":
                client = (0x20010DB8 << 96 | 1) ^ ((n >> 9) << (64 + 55)) ^ ((n & 0x1FF) << 55)
            else:
                client = 0x20010DB8 << 96 | rng.getrandbits(96)
            w.add(ipv6(client, server, 6, tcp(40000, 443, 1, 0, SYN)))
            w.add(ipv6(client, server, 6, tcp(40000, 443, 2, 0, ACK, b"\x16")))
    elif kind == "tcp-onebyte":
        for n in range(count):
            client = 0x0A000000 | (n >> 14) + 10
            port = 10000 + (n & 0x3FFF)
            w.add(ipv4(client, server4, 6, tcp(port, 443, 1000, 0, SYN)))
            w.add(ipv4(server4, client, 6, tcp(443, port, 5000, 1001, SYNACK)))
            w.add(ipv4(client, server4, 6, tcp(port, 443, 1001, 5001, ACK | PSH, b"\x16")))
            w.add(ipv4(server4, client, 6, tcp(443, port, 5001, 1002, ACK | PSH, b"\x16")))
    elif kind == "dtls-hellos":
        hello = first_payload(os.path.join(CAPTURES, "dtls.pcap"), lambda p: len(p) > 25 and p[0] == 22 and p[1] == 0xFE and p[13] == 1)
        for n in range(count):
            client = 0x0A000000 | (n >> 14) + 10
            w.add(ipv4(client, server4, 17, udp(10000 + (n & 0x3FFF), 4433, hello)))
    elif kind == "quic-initials":
        initial = first_payload(os.path.join(CAPTURES, "quic.pcap"), lambda p: len(p) >= 1200 and p[0] & 0xC0 == 0xC0)
        for n in range(count):
            client = 0x0A000000 | (n >> 14) + 10
            w.add(ipv4(client, server4, 17, udp(10000 + (n & 0x3FFF), 4433, initial)))
    elif kind == "quic-fresh-dcids":
        initial = first_payload(os.path.join(CAPTURES, "quic.pcap"), lambda p: len(p) >= 1200 and p[0] & 0xC0 == 0xC0)
        rekey = QUICInitialRekeyer(initial)
        for n in range(count):
            client = 0x0A000000 | (n >> 14) + 10
            w.add(ipv4(client, server4, 17, udp(10000 + (n & 0x3FFF), 4433, rekey.under(n))))
    elif kind == "frag-first":
        payload = udp(5000, 5000, b"\x00" * 1472)[:1480]
        for n in range(count):
            w.add(ipv4(0x0A000000 | (n >> 16) + 10, server4, 17, payload, ident=n & 0xFFFF, flags_offset=0x2000))
    elif kind == "dtls-fragments":
        length = count
        for offset in range(count):
            fragment = dtls_fragment(1, length, 0, offset, b"\x00")
            w.add(ipv4(0x0A00000A, server4, 17, udp(10000, 4433, dtls_record(offset, fragment))))
    elif kind == "dtls-big":
        for n in range(count):
            client = 0x0A000000 | (n >> 14) + 10
            port = 10000 + (n & 0x3FFF)
            for seq in range(8):
                fragment = dtls_fragment(1, 131071, seq, 1000 * seq, b"\x00")
                w.add(ipv4(client, server4, 17, udp(port, 4433, dtls_record(seq, fragment))))
    elif kind == "stalled-hello":
        hello = records(client_hello(b"stalled.example"))
        stalled, sport = 0x0A0000FE, 40000
        w.add(ipv4(stalled, server4, 6, tcp(sport, 443, 1000, 0, SYN)))
        w.add(ipv4(server4, stalled, 6, tcp(443, sport, 5000, 1001, SYNACK)))
        w.add(ipv4(stalled, server4, 6, tcp(sport, 443, 1001, 5001, ACK | PSH, hello)))
        for n in range(count):
            conversation(w, 0x0A000000 | (n >> 14) + 10, 10000 + (n & 0x3FFF), server4, 443,
                         records(client_hello(b"fine.example")), records(server_flight()))
            if n % 1000 == 0:  # a keepalive every thousand handshakes (well inside the idle timeout)
                w.add(ipv4(stalled, server4, 6, tcp(sport, 443, 1000 + len(hello), 5001, ACK)))
    elif kind == "distinct-sni":
        for n in range(count):
            name = (b"%08d." % n) + b"x" * 16_000 + b".example"
            conversation(w, 0x0A000000 | (n >> 14) + 10, 10000 + (n & 0x3FFF), server4, 443,
                         records(client_hello(name)), records(server_flight()))
    elif kind == "many-sessions":
        for n in range(count):
            name = (b"%08d." % n) + b"s" * 236 + b".example"
            conversation(w, 0x0A000000 | (n >> 14) + 10, 10000 + (n & 0x3FFF), server4, 443,
                         records(client_hello(name)), records(server_flight(session_id=struct.pack(">Q", n) * 4)))
    elif kind == "normal":
        link, frames = read_pcap(os.path.join(CAPTURES, "nginx-timeout.pcap"))
        replay = 0
        while w.packets < count:
            for frame in frames:
                if w.packets >= count:
                    break
                w.add(shift_ports(link, frame, replay, 14413), step=0.0001)
            replay += 1
        w.close()
        print(f"{w.packets} packets", file=sys.stderr)
        return
    else:
        raise SystemExit(f"unknown kind {kind}")
    w.close()
    print(f"{w.packets} packets", file=sys.stderr)


class QUICInitialRekeyer:
    """A QUIC v1 client Initial (RFC 9000 17.2.2), opened with the keys of its Destination
    Connection ID and sealed again under another one of the same length (RFC 9001 5)."""

    SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")  # RFC 9001 5.2

    def __init__(self, packet):
        self.packet = packet
        dcid_length = packet[5]
        self.dcid_at = 6
        self.dcid = packet[6:6 + dcid_length]
        at = 6 + dcid_length
        at += 1 + packet[at]  # source connection ID
        token_length, at = self.varint(packet, at)
        at += token_length
        self.length, at = self.varint(packet, at)
        self.pn_at = at
        key, iv, hp = self.keys(self.dcid)
        first, pn_length, pn = self.unprotect(packet, hp)
        self.first, self.pn_length, self.pn = first, pn_length, pn
        header = bytes([first]) + packet[1:self.pn_at] + pn.to_bytes(pn_length, "big")
        sealed = packet[self.pn_at + pn_length:self.pn_at + self.length]
        self.header = header
        self.plaintext = self.aead(key).decrypt(self.nonce(iv, pn), sealed, header)
        self.trailer = packet[self.pn_at + self.length:]  # coalesced packets or padding after it

    @staticmethod
    def varint(data, at):
        length = 1 << (data[at] >> 6)
        value = data[at] & 0x3F
        for byte in data[at + 1:at + length]:
            value = value << 8 | byte
        return value, at + length

    @staticmethod
    def expand_label(secret, label, length):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
        full = b"tls13 " + label
        info = struct.pack(">HB", length, len(full)) + full + b"\x00"  # RFC 8446 7.1
        return HKDFExpand(hashes.SHA256(), length, info).derive(secret)

    def keys(self, dcid):
        import hmac, hashlib
        initial = hmac.new(self.SALT, dcid, hashlib.sha256).digest()  # HKDF-Extract
        client = self.expand_label(initial, b"client in", 32)
        return (self.expand_label(client, b"quic key", 16), self.expand_label(client, b"quic iv", 12),
                self.expand_label(client, b"quic hp", 16))

    @staticmethod
    def aead(key):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        return AESGCM(key)

    @staticmethod
    def nonce(iv, pn):
        return bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))

    @staticmethod
    def mask(hp, sample):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
        return encryptor.update(sample) + encryptor.finalize()

    def unprotect(self, packet, hp):
        mask = self.mask(hp, packet[self.pn_at + 4:self.pn_at + 20])  # RFC 9001 5.4.2
        first = packet[0] ^ (mask[0] & 0x0F)
        pn_length = (first & 0x03) + 1
        pn = int.from_bytes(bytes(a ^ b for a, b in zip(packet[self.pn_at:self.pn_at + pn_length], mask[1:])), "big")
        return first, pn_length, pn

    def under(self, number):
        """The Initial sealed under a Destination Connection ID made from `number`."""
        dcid = (number.to_bytes(8, "big") + b"\x5a" * 20)[:len(self.dcid)]
        key, iv, hp = self.keys(dcid)
        header = bytearray(self.header)
        header[self.dcid_at:self.dcid_at + len(dcid)] = dcid
        sealed = self.aead(key).encrypt(self.nonce(iv, self.pn), self.plaintext, bytes(header))
        packet = bytearray(bytes(header) + sealed)
        mask = self.mask(hp, bytes(packet[self.pn_at + 4:self.pn_at + 20]))
        packet[0] ^= mask[0] & 0x0F
        for index in range(self.pn_length):
            packet[self.pn_at + index] ^= mask[1 + index]
        return bytes(packet) + self.trailer


def shift_ports(link, frame, replay, server_port):
    """The frame (Ethernet, IPv4) with its client address made distinct per replay, in both
    directions, so every replay is new flows with the same bytes."""
    assert link == 1, "the normal capture is Ethernet"
    t = bytearray(frame)
    if struct.unpack(">H", t[12:14])[0] != 0x0800:
        return bytes(t)
    header = (t[14] & 0x0F) * 4
    sport, dport = struct.unpack(">HH", t[14 + header:18 + header])
    client = (0x0A000000 | (replay + 10) & 0xFFFFFF).to_bytes(4, "big")
    if dport == server_port:
        t[26:30] = client
    elif sport == server_port:
        t[30:34] = client
    return bytes(t)


if __name__ == "__main__":
    main()
