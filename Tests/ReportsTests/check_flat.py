#!/usr/bin/env python3
"""Reads tlsreuse's csv or zeek output with a real consumer (Python's csv module, or a
Zeek ASCII log reader that works like zeek-cut) and checks every cell against the same
records in JSON Lines. Prints one line per mismatch; exits 1 if there is any.

    check_flat.py csv|zeek FLAT_FILE JSONL_FILE
"""
import csv
import json
import re
import sys
import unicodedata

kind, flat_path, jsonl_path = sys.argv[1:4]
# Numbers keep their text, so "1795932231.371638" compares exactly.
records = [json.loads(line, parse_float=str, parse_int=str) for line in open(jsonl_path, encoding="utf-8")]
problems = []


def expected(record, column):
    """The JSON value a flat column holds: "a.b" is member b of object a, or of each
    object in list a."""
    head, _, member = column.partition(".")
    value = record[head]
    if not member:
        return value
    if value is None:
        return None
    if isinstance(value, list):
        return [element.get(member) for element in value]
    return value.get(member)


def display_escaped(text):
    """tlsreuse's DisplayText: characters of categories Cc, Cf, Zl, Zp, Co, Cn shown as
    \\xHH (ASCII) or \\u{hex}; CSV cells hold strings so."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x80:
            out.append("\\x%02x" % code)
        elif code < 0xA0 or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"):
            out.append("\\u{%x}" % code)
        else:
            out.append(ch)
    return "".join(out)


def scalar_text(value, unset, true, false):
    if value is None:
        return unset
    if value is True:
        return true
    if value is False:
        return false
    return value


if kind == "csv":
    with open(flat_path, newline="", encoding="utf-8") as handle:
        raw = handle.read()
    if "\r\n" not in raw:
        problems.append("rows do not end in CRLF (RFC 4180 2.1)")
    rows = list(csv.reader(raw.splitlines(keepends=True)))
    header, body = rows[0], rows[1:]
    for index, (record, row) in enumerate(zip(records, body)):
        if len(row) != len(header):
            problems.append(f"row {index}: {len(row)} cells, header has {len(header)}")
            continue
        for column, cell in zip(header, row):
            want = expected(record, column)
            if isinstance(want, (list, dict)):
                got = json.loads(cell, parse_float=str, parse_int=str)
            else:
                got = cell
                want = scalar_text(want, "", "true", "false")
                if isinstance(want, str):
                    want = display_escaped(want)
                if got.startswith("'") and want[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    got = got[1:]
            if got != want:
                problems.append(f"row {index} {column}: csv {got!r}, json {want!r}")
else:
    lines = open(flat_path, encoding="utf-8").read().split("\n")
    meta = {}
    body = []
    for line in lines:
        if line.startswith("#"):
            key, _, value = line[1:].partition("\t")
            if key.startswith("separator "):
                meta["separator"] = key.split(" ", 1)[1]
            else:
                meta[key] = value
        elif line:
            body.append(line)
    for required in ("separator", "set_separator", "empty_field", "unset_field", "path", "open", "fields", "types", "close"):
        if required not in meta:
            problems.append(f"header line #{required} missing")
    fields = meta["fields"].split("\t")
    types = meta["types"].split("\t")
    if len(fields) != len(types):
        problems.append(f"{len(fields)} #fields but {len(types)} #types")

    def unescape(text):
        # \\xHH stands for a byte: UTF-8 written byte by byte reads back whole.
        raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
        return raw.decode("utf-8", errors="surrogateescape")

    for index, (record, line) in enumerate(zip(records, body)):
        cells = line.split("\t")
        if len(cells) != len(fields):
            problems.append(f"row {index}: {len(cells)} cells, #fields has {len(fields)}")
            continue
        for column, kind_name, cell in zip(fields, types, cells):
            want = expected(record, column)
            if kind_name.startswith("vector["):
                if want is None:
                    got_ok = cell == "-"
                elif want == []:
                    got_ok = cell == "(empty)"
                else:
                    # As in Zeek, an empty string member is written as the empty marker too.
                    members = [None if m == "-" else "" if m == "(empty)" else unescape(m) for m in cell.split(",")]
                    got_ok = members == [None if w is None else str(w) for w in want]
                if not got_ok:
                    problems.append(f"row {index} {column}: zeek {cell!r}, json {want!r}")
                continue
            if want is None:
                wanted = "-"
            elif want == "":
                wanted = "(empty)"
            else:
                wanted = scalar_text(want, "-", "T", "F")
            got = cell if cell in ("-", "(empty)") else unescape(cell)
            if got != wanted:
                problems.append(f"row {index} {column}: zeek {cell!r}, json {want!r}")
            if kind_name == "time" and want is not None and not re.fullmatch(r"-?\d+\.\d{6}", cell):
                problems.append(f"row {index} {column}: time {cell!r} is not seconds.microseconds")
            if kind_name == "bool" and cell not in ("T", "F", "-"):
                problems.append(f"row {index} {column}: bool {cell!r}")

if len(body) != len(records):
    problems.append(f"{len(body)} rows, {len(records)} JSON records")
for problem in problems[:20]:
    print(problem)
sys.exit(1 if problems else 0)
