#!/usr/bin/env bash
# The handshake-dense benchmark (issue 20): CPU time per TLS connection on captures where
# nearly every packet is a handshake (bench/record-dense.sh records them on demand), for
# tlsreuse `report` and `handshakes --format jsonl` on one worker and on every core, next to
# ssldump, tshark and the floor (a bare libpcap read loop), interleaved, median of RUNS
# (default 5); CSV and Zeek output on one worker beside them. CPU time is user + system;
# ratios are of CPU time unless marked wall.
#
#   bench/dense.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
work=bench/work
scripts/install-test-peers
[ -f "$work/dense.pcap" ] && [ -f "$work/dense-many.pcap" ] || bench/record-dense.sh
cc -O2 -o "$work/pcap-floor" bench/pcap-floor.c -lpcap
tlsreuse=$(scripts/build-release)
cores=$(nproc)

. bench/lib.sh
column() { cut -d' ' -f"$2" "$work/$1.times" | median; }

tshark_fields=(-Y "tls.handshake.type == 1 || tls.handshake.type == 2" -T fields -e tcp.stream -e ip.src -e tcp.srcport
               -e tls.handshake.extensions_server_name -e tls.handshake.session_id -e tls.handshake.version
               -e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite)
names=(floor report1 reportN jsonl1 jsonlN csv1 zeek1 ssldump tshark)
label() {
    case $1 in
        floor) echo "libpcap read loop (floor)" ;;
        report1) echo "tlsreuse report --jobs 1" ;;
        reportN) echo "tlsreuse report --jobs $cores" ;;
        jsonl1) echo "tlsreuse handshakes jsonl --jobs 1" ;;
        jsonlN) echo "tlsreuse handshakes jsonl --jobs $cores" ;;
        csv1) echo "tlsreuse handshakes csv --jobs 1" ;;
        zeek1) echo "tlsreuse handshakes zeek --jobs 1" ;;
        ssldump) echo "ssldump -n -r" ;;
        tshark) echo "tshark (handshake fields)" ;;
    esac
}

for capture in "$work/dense.pcap" "$work/dense-many.pcap"; do
    rm -f "$work"/*.times
    cat "$capture" >/dev/null
    connections=$("$tlsreuse" handshakes --format jsonl -q "$capture" | wc -l)
    packets=$("$work/pcap-floor" "$capture" | awk '{print $1}')
    timed() {
        cat "$capture" >/dev/null
        case ${names[$1]} in
            floor) measure floor "$work/pcap-floor" "$capture" ;;
            report1) measure report1 "$tlsreuse" report -q --jobs 1 "$capture" ;;
            reportN) measure reportN "$tlsreuse" report -q --jobs "$cores" "$capture" ;;
            jsonl1) measure jsonl1 "$tlsreuse" handshakes --format jsonl -q --jobs 1 "$capture" ;;
            jsonlN) measure jsonlN "$tlsreuse" handshakes --format jsonl -q --jobs "$cores" "$capture" ;;
            csv1) measure csv1 "$tlsreuse" handshakes --format csv -q --jobs 1 "$capture" ;;
            zeek1) measure zeek1 "$tlsreuse" handshakes --format zeek -q --jobs 1 "$capture" ;;
            ssldump) measure ssldump ssldump -n -r "$capture" ;;
            tshark) measure tshark tshark -r "$capture" "${tshark_fields[@]}" ;;
        esac
    }
    for run in $(seq "$runs"); do
        for step in $(seq 0 $((${#names[@]} - 1))); do timed $(((run + step) % ${#names[@]})); done
        echo "$(basename "$capture"): run $run of $runs done" >&2
    done
    echo
    echo "$(basename "$capture"): $packets packets, $connections TLS connections; median of $runs interleaved runs on $cores cores"
    printf '  %-36s %9s %9s %12s %10s %10s\n' "command" "wall (s)" "CPU (s)" "CPU µs/conn" "RSS (MiB)" "CPU vs 1"
    base=$(column report1 2)
    for name in "${names[@]}"; do
        cpu=$(column "$name" 2)
        printf '  %-36s %9.3f %9.3f %12.2f %10.1f %9.2fx\n' "$(label "$name")" "$(column "$name" 1)" "$cpu" \
            "$(echo "$cpu * 1000000 / $connections" | bc -l)" "$(echo "$(column "$name" 3) / 1024" | bc -l)" \
            "$(echo "$cpu / $base" | bc -l)"
    done
    printf '  report --jobs 1 uses %.2f of ssldump'"'"'s CPU (goal at most 0.20); jsonl/report %.2fx (goal at most 1.3x);\n' \
        "$(echo "$base / $(column ssldump 2)" | bc -l)" "$(echo "$(column jsonl1 2) / $base" | bc -l)"
    printf '  %s workers: %.2fx faster in wall time than one (goal 1.7x), %.2fx its CPU (goal at most 1.15x)\n' "$cores" \
        "$(echo "$(column report1 1) / $(column reportN 1)" | bc -l)" "$(echo "$(column reportN 2) / $base" | bc -l)"
done
