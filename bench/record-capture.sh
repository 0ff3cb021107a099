#!/usr/bin/env bash
# Records the benchmark capture: two network namespaces joined by a veth pair with
# offloads off (so packets are the size of a real link's MTU), nginx serving TLS 1.2 and
# 1.3 in one, `openssl s_time` in the other making new and resumed connections, some of
# them fetching 256 KiB or 4 MiB bodies. Writes bench/work/capture.pcap (at least 1.5 GB and
# 20,000 TLS connections; both can be raised with MIN_BYTES and MIN_CONNECTIONS).
# Needs root, nginx, openssl, tcpdump, ethtool, iproute2. Nothing is sent outside the namespaces.
set -euo pipefail
cd "$(dirname "$0")"
min_bytes=${MIN_BYTES:-1600000000}
min_connections=${MIN_CONNECTIONS:-21000}
work=$PWD/work
mkdir -p "$work/www" "$work/nginx/logs"
. ./lib.sh
namespaces tlsr-bench-srv tlsr-bench-cli 10.99.0

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 30 \
    -subj "/CN=bench.test" 2>/dev/null
head -c 1024 /dev/urandom >"$work/www/index.html"
head -c 262144 /dev/urandom >"$work/www/256k.bin"
head -c 4194304 /dev/urandom >"$work/www/4m.bin"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_timeout 0;
    server {
        listen 10.99.0.1:443 ssl;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:20m;
        ssl_session_tickets on;
        root $work/www;
    }
}
CONF
ip netns exec "$server" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
sleep 1

rm -f "$work/capture.pcap"
ip netns exec "$client" tcpdump -i veth-cli -s 0 -B 131072 -w "$work/capture.pcap" 'tcp port 443' 2>"$work/tcpdump.log" &
capture_pid=$!
sleep 2

# s_time NAME ARGS... : one timed run; its output goes to $work/s_time.NAME.
s_time() {
    local name=$1
    shift
    ip netns exec "$client" openssl s_time -connect 10.99.0.1:443 "$@" >"$work/s_time.$name" 2>&1 || true
}
# Connections all s_time runs so far reported.
connections() { cat "$work"/s_time.* 2>/dev/null | awk '/connections in [0-9.]+s/ {n += $1} END {print n + 0}'; }
size() { stat -c %s "$work/capture.pcap" 2>/dev/null || echo 0; }
rm -f "$work"/s_time.*

# Each round runs a handshake-heavy client (small pages, new and resumed, TLS 1.2 and 1.3)
# alongside a bulk one (256 KiB and 4 MiB bodies), so every stretch of the capture has the
# same mix: rotated pieces of it cost the same to analyse.
# together WHAT... : runs the given s_time calls (each "NAME ARGS..." as one word list) at
# the same time and waits for them only (a bare `wait` would wait for tcpdump and nginx).
together() {
    local pids=()
    for call in "$@"; do
        # shellcheck disable=SC2086
        s_time $call &
        pids+=($!)
    done
    wait "${pids[@]}"
}

round=0
while [ "$(connections)" -lt "$min_connections" ] || [ "$(size)" -lt "$min_bytes" ]; do
    round=$((round + 1))
    small=$([ "$(connections)" -lt "$min_connections" ] && echo yes || echo no)
    bulk=$([ "$(size)" -lt "$min_bytes" ] && echo yes || echo no)
    calls=()
    [ $small = yes ] && calls+=("new13.$round -new -time 3 -www /index.html -tls1_3")
    [ $bulk = yes ] && calls+=("bulk4m.$round -new -time 1 -www /4m.bin -tls1_3")
    together "${calls[@]}"
    calls=()
    [ $small = yes ] && calls+=("new12.$round -new -time 3 -www /index.html -tls1_2")
    [ $bulk = yes ] && calls+=("bulk256k.$round -new -time 1 -www /256k.bin -tls1_2")
    together "${calls[@]}"
    calls=()
    [ $small = yes ] && calls+=("reuse12.$round -reuse -time 2 -www /index.html -tls1_2")
    [ $bulk = yes ] && [ $((round % 2)) = 0 ] && calls+=("reuse4m.$round -reuse -time 1 -www /4m.bin -tls1_2")
    together "${calls[@]}"
    [ $small = yes ] && s_time "reuse13.$round" -reuse -time 2 -www /index.html -tls1_3
    echo "round $round: $(connections) connections, capture $(($(size) / 1000000)) MB" >&2
done
connections=$(connections)
sleep 1
kill -INT "$capture_pid"
wait "$capture_pid" 2>/dev/null || true
cat "$work/tcpdump.log" >&2
# MTU-sized packets or the offloads were on (ethtool failed): 64 KiB segments make another benchmark.
packets=$(awk '/packets captured/ {print $1}' "$work/tcpdump.log")
if [ "$(($(size) / ${packets:-1}))" -gt 1600 ]; then
    echo "capture: packets average more than 1600 bytes; segmentation offloads were not turned off" >&2
    exit 1
fi
echo "capture: $work/capture.pcap, $(($(size) / 1000000)) MB, about $connections TLS connections (s_time's count)"
