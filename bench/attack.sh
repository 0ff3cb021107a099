#!/usr/bin/env bash
# The adversarial benchmark (issue 14): each attack of bench/attack-captures.py at several
# sizes, timed next to a capture of the same packet count that is no attack (for the TCP
# collisions: random flows; for the rest, real nginx handshakes replayed), with peak RSS.
# Prints one table; each figure is the median of RUNS runs (default 3), interleaved.
#
#   bench/attack.sh                 # sizes 4x and 16x of each attack's base count
#   SCALES="1 4" bench/attack.sh
#   ONLY="dtls-hellos quic-initials" bench/attack.sh   # some attacks only
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
scales=${SCALES:-4 16}
only=${ONLY:-}
work=bench/work/attack
mkdir -p "$work"
tlsreuse=$(scripts/build-release)

# kind, base count, what it is compared with, the bound the issue sets per packet
attacks=(
    "tcp-collide 50000 tcp-random 2"
    "dtls-hellos 25000 normal 5"
    "frag-first 50000 normal 5"
    "quic-initials 10000 normal 5"
    "quic-fresh-dcids 10000 normal 5"
    "dtls-fragments 16384 normal 5"
    "dtls-big 2500 normal 5"
    "tcp-onebyte 25000 normal 5"
    "stalled-hello 10000 normal 5"
    "distinct-sni 5000 normal 5"
)

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# run FILE: appends "cpu_seconds maxrss_kib" of one report run to FILE.times: CPU time (user
# + system) to the microsecond (bench/cputime.c), steadier than wall time on a shared host
cputime=bench/work/cputime
[ "$cputime" -nt bench/cputime.c ] || cc -O2 -o "$cputime" bench/cputime.c
run() {
    "$cputime" "$work/time.out" "$tlsreuse" report --format json -q --jobs 1 "$1" >"$work/out.json" 2>/dev/null || true
    awk '{print $2, $3}' "$work/time.out" >>"$1.times"
}

packets() {
    python3 - "$1" <<'PY'
import struct, sys
data, count, offset = open(sys.argv[1], "rb").read(), 0, 24
while offset + 16 <= len(data):
    offset += 16 + struct.unpack("<I", data[offset + 8:offset + 12])[0]
    count += 1
print(count)
PY
}

# Start-up, paid by both sides of each comparison: a run on a capture without packets.
empty=$work/empty.pcap
python3 bench/attack-captures.py normal 0 "$empty" 2>/dev/null
rm -f "$empty.times"
for i in $(seq 5); do run "$empty"; done
startup=$(cut -d' ' -f1 "$empty.times" | median)

printf '%-16s %5s %9s %12s %12s %9s %7s %10s %10s\n' attack size packets "attack µs/p" "normal µs/p" ratio bound "RSS (MiB)" "normal RSS"
for spec in "${attacks[@]}"; do
    read -r kind base baseline bound <<<"$spec"
    if [ -n "$only" ] && [[ " $only " != *" $kind "* ]]; then continue; fi
    for scale in $scales; do
        count=$((base * scale))
        attack=$work/$kind-$count.pcap
        [ -f "$attack" ] || python3 bench/attack-captures.py "$kind" "$count" "$attack" 2>/dev/null
        n=$(packets "$attack")
        if [ "$baseline" = normal ]; then
            normal=$work/normal-$n.pcap
            [ -f "$normal" ] || python3 bench/attack-captures.py normal "$n" "$normal" 2>/dev/null
        else
            normal=$work/$baseline-$count.pcap
            [ -f "$normal" ] || python3 bench/attack-captures.py "$baseline" "$count" "$normal" 2>/dev/null
        fi
        rm -f "$attack.times" "$normal.times"
        for i in $(seq "$runs"); do
            cat "$attack" "$normal" >/dev/null
            if [ $((i % 2)) -eq 1 ]; then run "$attack"; run "$normal"; else run "$normal"; run "$attack"; fi
        done
        ar=$(cut -d' ' -f2 "$attack.times" | median); nr=$(cut -d' ' -f2 "$normal.times" | median)
        # CPU per packet, after the start-up both pay (floored at 1 ms).
        aw=$(echo "w = $(cut -d' ' -f1 "$attack.times" | median) - $startup; if (w < 0.001) w = 0.001; w" | bc -l)
        nw=$(echo "w = $(cut -d' ' -f1 "$normal.times" | median) - $startup; if (w < 0.001) w = 0.001; w" | bc -l)
        # The ratio of each run's pair (timed moments apart, so a busy host slows both), median.
        ratio=$(paste -d' ' "$attack.times" "$normal.times" | while read -r a _ n _; do
            echo "a = $a - $startup; b = $n - $startup; if (a < 0.001) a = 0.001; if (b < 0.001) b = 0.001; a / b" | bc -l
        done | median)
        printf '%-16s %4sx %9s %12.2f %12.2f %8.2fx %6sx %10.1f %10.1f\n' "$kind" "$scale" "$n" \
            "$(echo "$aw * 1000000 / $n" | bc -l)" "$(echo "$nw * 1000000 / $n" | bc -l)" \
            "$ratio" "$bound" "$(echo "$ar / 1024" | bc -l)" "$(echo "$nr / 1024" | bc -l)"
    done
done
echo "tlsreuse $($tlsreuse --version), $(nproc) cores, one worker, CPU time (user + system), median of $runs runs,"
echo "start-up ($(printf "%.3f" "$startup") s) taken off both;"
echo "ratio = attack time / the same packet count of the baseline, per interleaved pair, median of the pairs;"
echo "bound = what issue 14 allows"
