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
[ -f "$capture" ] || bench/record-capture.sh
cc -O2 -o "$work/pcap-floor" bench/pcap-floor.c -lpcap
tlsreuse=$(scripts/build-release)

. bench/lib.sh

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
# One command of the five; each run starts with a different one, so none always follows
# tshark (whose 2.4 GB leave the caches cold), and the capture is read into the page cache
# again before each.
timed() {
    cat "$capture" >/dev/null
    case $1 in
        0) measure floor "$work/pcap-floor" "$capture" ;;
        1) measure report "$tlsreuse" report -q "$capture" ;;
        2) measure jsonl "$tlsreuse" handshakes --format jsonl -q "$capture" ;;
        3) measure ssldump ssldump -n -r "$capture" ;;
        4) measure tshark tshark -r "$capture" "${tshark_fields[@]}" ;;
    esac
}
for run in $(seq "$runs"); do
    for step in 0 1 2 3 4; do timed $(((run + step) % 5)); done
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

if [ "${PARALLEL:-0}" = 1 ]; then
    # Two rotated files of equal size, as `tcpdump -C` writes them: the capture cut in two by
    # packet count (its packets are mostly full-sized); on one worker and on two.
    total=$("$work/pcap-floor" "$capture" | awk '{print $1}')
    ls "$work"/size_0000*.pcap >/dev/null 2>&1 || editcap -F pcap -c $(((total + 1) / 2)) "$capture" "$work/size.pcap" >/dev/null
    halves=("$work"/size_0000*.pcap)
    cat "${halves[@]}" >/dev/null
    rm -f "$work"/one-worker.times "$work"/two-workers.times "$work"/floor-serial.times "$work"/floor-parallel.times
    # The floor the same way: the two files read one after the other, and by two processes
    # at once. Its ratio is what this machine's two cores allow for reading alone.
    timed_halves() {
        cat "${halves[@]}" >/dev/null
        case $1 in
            0) measure one-worker "$tlsreuse" report -q --jobs 1 "${halves[@]}" ;;
            1) measure two-workers "$tlsreuse" report -q --jobs 2 "${halves[@]}" ;;
            2) measure floor-serial bash -c 'for f in "$@"; do "$0" "$f"; done' "$work/pcap-floor" "${halves[@]}" ;;
            3) measure floor-parallel bash -c 'for f in "$@"; do "$0" "$f" & done; wait' "$work/pcap-floor" "${halves[@]}" ;;
        esac
    }
    for run in $(seq "$runs"); do
        for step in 0 1 2 3; do timed_halves $(((run + step) % 4)); done
    done
    wall() { cut -d' ' -f1 "$work/$1.times" | median; }
    rss() { echo "$(cut -d' ' -f3 "$work/$1.times" | median) / 1024" | bc -l; }
    echo
    echo "two rotated files (the capture in ${#halves[@]} files of equal size), median of $runs:"
    printf '  tlsreuse report: one worker %.3f s (%.1f MiB), two workers %.3f s (%.1f MiB): %.2fx\n' \
        "$(wall one-worker)" "$(rss one-worker)" "$(wall two-workers)" "$(rss two-workers)" "$(echo "$(wall one-worker) / $(wall two-workers)" | bc -l)"
    printf '  floor: one after the other %.3f s, two at once %.3f s: %.2fx\n' \
        "$(wall floor-serial)" "$(wall floor-parallel)" "$(echo "$(wall floor-serial) / $(wall floor-parallel)" | bc -l)"
fi

if [ "${SCALING:-0}" = 1 ]; then
    # 0.1x: the first tenth of the packets. 4x: four copies, each shifted past the previous one.
    total=$("$work/pcap-floor" "$capture" | awk '{print $1}')
    [ -f "$work/tenth.pcap" ] || editcap -r "$capture" "$work/tenth.pcap" "1-$((total / 10))" >/dev/null
    if [ ! -f "$work/four.pcap" ]; then
        span=$(capinfos -u -M "$capture" | awk -F: '/Capture duration/ {print int($2) + 10}')
        for copy in 1 2 3; do editcap -t $((copy * span)) "$capture" "$work/shift$copy.pcap" >/dev/null; done
        mergecap -a -F pcap -w "$work/four.pcap" "$capture" "$work/shift1.pcap" "$work/shift2.pcap" "$work/shift3.pcap"
        rm -f "$work"/shift?.pcap
    fi
    echo
    echo "scaling (tlsreuse report, median of $runs):"
    printf '  %-6s %14s %10s %10s\n' "size" "bytes" "wall (s)" "RSS (MiB)"
    for pair in "0.1x:$work/tenth.pcap" "1x:$capture" "4x:$work/four.pcap"; do
        name=${pair%%:*} file=${pair#*:}
        rm -f "$work/scale.times"
        cat "$file" >/dev/null
        for run in $(seq "$runs"); do measure scale "$tlsreuse" report -q "$file"; done
        printf '  %-6s %14s %10.3f %10.1f\n' "$name" "$(stat -c %s "$file")" "$(cut -d' ' -f1 "$work/scale.times" | median)" \
            "$(echo "$(cut -d' ' -f3 "$work/scale.times" | median) / 1024" | bc -l)"
    done
fi
