#!/usr/bin/env bash
# The benchmark: times tlsreuse against the floor (a bare libpcap read loop) and the peers
# on the recorded capture, interleaved, and prints the median of RUNS runs (default 5) with
# wall time, CPU time, peak RSS and the ratios measured in this same run.
#
#   bench/run.sh                  # records bench/work/capture.pcap first if it is missing
#   SCALING=1 bench/run.sh        # also the 0.1x / 1x / 4x scaling table
#   PARALLEL=1 bench/run.sh       # also two files on one and two workers
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
work=bench/work
capture=$work/capture.pcap
scripts/install-test-peers
dpkg -s time >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
[ -f "$capture" ] || bench/record-capture.sh
cc -O2 -o "$work/pcap-floor" bench/pcap-floor.c -lpcap
swift build -c release --product tlsreuse >&2
tlsreuse=.build/release/tlsreuse

# measure NAME COMMAND... : appends "wall user+sys maxrss_kib" to $work/NAME.times
measure() {
    local name=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/$name.stderr" || true
    awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/time.out" >>"$work/$name.times"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# table NAMES... : the median of each column per command, with ratios to the floor.
table() {
    local floor_wall
    floor_wall=$(cut -d' ' -f1 "$work/floor.times" | median)
    printf '%-34s %9s %9s %11s %12s\n' "command" "wall (s)" "CPU (s)" "RSS (MiB)" "vs floor"
    for name in "$@"; do
        local wall cpu rss
        wall=$(cut -d' ' -f1 "$work/$name.times" | median)
        cpu=$(cut -d' ' -f2 "$work/$name.times" | median)
        rss=$(cut -d' ' -f3 "$work/$name.times" | median)
        printf '%-34s %9.3f %9.2f %11.1f %11.2fx\n' "$(label "$name")" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$(echo "$wall / $floor_wall" | bc -l)"
    done
}

label() {
    case $1 in
        floor) echo "libpcap read loop (floor)" ;;
        report) echo "tlsreuse report" ;;
        jsonl) echo "tlsreuse handshakes --format jsonl" ;;
        ssldump) echo "ssldump -n -r" ;;
        tshark) echo "tshark (handshake fields)" ;;
        *) echo "$1" ;;
    esac
}

tshark_fields=(-Y "tls.handshake.type == 1 || tls.handshake.type == 2" -T fields -e tcp.stream -e ip.src -e tcp.srcport
               -e tls.handshake.extensions_server_name -e tls.handshake.session_id -e tls.handshake.version
               -e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite)

rm -f "$work"/*.times
cat "$capture" >/dev/null # into the page cache: every command reads from memory
echo "capture: $capture, $(stat -c %s "$capture") bytes; $("$work/pcap-floor" "$capture")"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')"
for run in $(seq "$runs"); do
    measure floor "$work/pcap-floor" "$capture"
    measure report "$tlsreuse" report -q "$capture"
    measure jsonl "$tlsreuse" handshakes --format jsonl -q "$capture"
    measure ssldump ssldump -n -r "$capture"
    measure tshark tshark -r "$capture" "${tshark_fields[@]}"
    echo "run $run of $runs done" >&2
done
echo
echo "median of $runs interleaved runs:"
table floor report jsonl ssldump tshark
report_wall=$(cut -d' ' -f1 "$work/report.times" | median)
printf '\ntlsreuse report: %.2fx the floor, %.1fx faster than ssldump, %.1fx faster than tshark\n' \
    "$(echo "$report_wall / $(cut -d' ' -f1 "$work/floor.times" | median)" | bc -l)" \
    "$(echo "$(cut -d' ' -f1 "$work/ssldump.times" | median) / $report_wall" | bc -l)" \
    "$(echo "$(cut -d' ' -f1 "$work/tshark.times" | median) / $report_wall" | bc -l)"
