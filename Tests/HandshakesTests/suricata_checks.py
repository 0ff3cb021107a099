#!/usr/bin/env python3
"""Compares tlsreuse's records with the TLS and QUIC fields that suricata-verify's test.yaml
checks name (Suricata's expected eve.json). Suricata is a reference, not the truth: only the
fields both tools define alike are compared, each check must match some record of its
capture, and what cannot be compared is left out (see FIELDS).

    suricata_checks.py CORPUS/suricata-verify TLSREUSE

Prints one JSON object: the checks compared, and each check no record matched."""
import datetime
import json
import os
import re
import subprocess
import sys

import yaml

corpus, binary = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(corpus, "manifest.json")))
by_path = {entry["path"]: entry["name"] for entry in manifest["captures"]}
by_test = {}
for entry in manifest["captures"]:
    by_test.setdefault(entry["test_dir"], []).append(entry["name"])


def version(text):
    """'TLS 1.2', 'TLSv1.2', 'TLSv1' and tlsreuse's 'TLSv1.0' alike; Suricata's 'TLS 1.3
    draft-28' and tlsreuse's 0x7f1c (it names drafts by their number on the wire) alike."""
    if text is None:
        return None
    if text.startswith("0x7f"):
        return f"1.3 draft-{int(text[4:], 16)}"
    text = text.replace("TLS", "").replace("v", "").strip()
    return "1.0" if text == "1" else text


# Attribute types both name differently: Suricata writes Email=, swift-certificates the OID.
TYPE_NAMES = {"Email": "emailAddress", "1.2.840.113549.1.9.1": "emailAddress"}


def named(part):
    kind, _, value = part.partition("=")
    return TYPE_NAMES.get(kind.strip(), kind.strip()) + "=" + value.strip()


def suricata_names(dn):
    """Suricata writes a distinguished name most significant first, parts joined by ', '
    (a value may hold ', ' too: a part starts where a type and '=' follow)."""
    return sorted(named(part) for part in re.split(r", (?=[A-Za-z0-9.]+=)", dn or "") if part)


def names(dn):
    """tlsreuse writes RFC 4514: least significant first, ',' between parts, '\\,' inside."""
    parts, current, escaped = [], "", False
    for char in dn or "":
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return sorted(named(part) for part in parts if part.strip())


def epoch(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()


def certificate(record, key):
    return (record.get("certificate") or {}).get(key)


# Suricata's key -> (tlsreuse's value of a record, how to compare). Version is compared only
# where tlsreuse saw a ServerHello: without one Suricata names the ClientHello's version.
FIELDS = {
    "tls.sni": lambda r, v: r.get("sni") == v,
    "quic.sni": lambda r, v: r.get("sni") == v,
    "tls.version": lambda r, v: r.get("version") is None or version(r.get("version")) == version(v),
    "tls.ja3.hash": lambda r, v: r.get("ja3") == v,
    "tls.ja3s.hash": lambda r, v: r.get("ja3s") == v,
    "tls.ja4": lambda r, v: r.get("ja4") == v,
    "quic.ja4": lambda r, v: r.get("ja4") == v,
    "tls.session_resumed": lambda r, v: r.get("resumed") == v,
    "tls.subject": lambda r, v: names(certificate(r, "subject")) == suricata_names(v),
    "tls.issuerdn": lambda r, v: names(certificate(r, "issuer")) == suricata_names(v),
    "tls.notbefore": lambda r, v: certificate(r, "not_before") == epoch(v),
    "tls.notafter": lambda r, v: certificate(r, "not_after") == epoch(v),
}
for index in range(32):
    FIELDS[f"tls.subjectaltname[{index}]"] = (
        lambda i: lambda r, v: len(certificate(r, "sans") or []) > i and certificate(r, "sans")[i] == v
    )(index)


def capture_of(test_dir, spec):
    if "pcap" in spec:
        path = os.path.normpath(os.path.join(test_dir, spec["pcap"]))
        return by_path.get(path)
    captures = by_test.get(test_dir, [])
    return captures[0] if len(captures) == 1 else None


compared, mismatches, records_of = 0, [], {}
for name in sorted(os.listdir(os.path.join(corpus, "yaml"))):
    spec = yaml.safe_load(open(os.path.join(corpus, "yaml", name))) or {}
    test_dir = "tests/" + name[: -len(".test.yaml")].replace("__", "/")
    checks = [c["filter"] for c in spec.get("checks") or [] if isinstance(c, dict) and "filter" in c]
    for check in checks:
        match = check.get("match") or {}
        if match.get("event_type") not in ("tls", "quic") or check.get("count", 1) == 0:
            continue
        fields = {key: value for key, value in match.items() if key in FIELDS}
        if not fields:
            continue
        capture = capture_of(test_dir, spec)
        if capture is None:
            continue
        if capture not in records_of:
            output = subprocess.run(
                [binary, "handshakes", "--format", "jsonl", "-q", os.path.join(corpus, "pcaps", capture)],
                capture_output=True, text=True,
            ).stdout
            records_of[capture] = [json.loads(line) for line in output.splitlines() if line.strip()]
        compared += 1
        if not any(all(FIELDS[key](record, value) for key, value in fields.items()) for record in records_of[capture]):
            mismatches.append({"test": name, "capture": capture, "fields": fields})
print(json.dumps({"compared": compared, "mismatches": mismatches}, default=str))
