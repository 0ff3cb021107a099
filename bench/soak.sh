#!/usr/bin/env bash
# Soak benchmark: more than a million TLS connections, every round with fresh addresses and
# ports, through `tlsreuse report -` as through a live pipe; resident memory (VmRSS) is
# sampled every second and printed as a table, with the peak.
#
#   bench/soak.sh              # ROUNDS=26000 by default: about 1,040,000 connections
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-26000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/install-deps
cc -O2 -o "$work/replay" bench/replay.c
tlsreuse=$(scripts/build-release)
# 40 TLS connections per round (the balanced capture's 12 back legs included).
inputs=(captures/tls12-session-id.pcap captures/tls12-ticket.pcap captures/tls13-psk.pcap captures/lb-shared-tickets.pcap)
"$work/replay" "$rounds" "${inputs[@]}" | "$tlsreuse" report --format json -q - >"$work/report.json" &
pid=$!
start=$(date +%s.%N)
peak=0
printf '%8s  %10s\n' "seconds" "RSS (MiB)"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$rss" ] || rss=0
    [ "$rss" -gt "$peak" ] && peak=$rss
    printf '%8.1f  %10.1f\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$(echo "$rss / 1024" | bc -l)"
    sleep 1
done
wait "$pid" || true
connections=$(python3 -c "import json,sys; print(json.load(open('$work/report.json'))['capture']['tls_connections'])")
packets=$(python3 -c "import json,sys; print(json.load(open('$work/report.json'))['capture']['packets'])")
printf 'rounds %s: %s TLS connections, %s packets; peak RSS %.1f MiB\n' "$rounds" "$connections" "$packets" "$(echo "$peak / 1024" | bc -l)"
