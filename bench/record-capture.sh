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
server=tlsr-bench-srv client=tlsr-bench-cli
cleanup() {
    kill "${capture_pid:-}" "${nginx_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    ip netns del "$server" 2>/dev/null || true
    ip netns del "$client" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$server"
ip netns add "$client"
ip link add veth-srv netns "$server" type veth peer name veth-cli netns "$client"
ip -n "$server" addr add 10.99.0.1/24 dev veth-srv
ip -n "$client" addr add 10.99.0.2/24 dev veth-cli
for ns in "$server" "$client"; do
    ip -n "$ns" link set lo up
    dev=$([ "$ns" = "$server" ] && echo veth-srv || echo veth-cli)
    ip -n "$ns" link set "$dev" up mtu 1500
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
done

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

connections=0
# s_time ARGS... : one timed run; adds the connections it reports.
s_time() {
    local out
    out=$(ip netns exec "$client" openssl s_time -connect 10.99.0.1:443 "$@" 2>&1 || true)
    local made
    made=$(echo "$out" | awk '/connections in [0-9.]+s/ {print $1; exit}')
    connections=$((connections + ${made:-0}))
}
size() { stat -c %s "$work/capture.pcap" 2>/dev/null || echo 0; }

# Many handshakes on small pages, new and resumed, TLS 1.2 and 1.3; then bodies.
while [ "$connections" -lt "$min_connections" ]; do
    s_time -new -time 3 -www /index.html -tls1_3
    s_time -new -time 3 -www /index.html -tls1_2
    s_time -reuse -time 2 -www /index.html -tls1_2
    s_time -reuse -time 2 -www /index.html -tls1_3
    s_time -new -time 1 -www /256k.bin -tls1_2
    echo "connections so far: $connections, capture $(($(size) / 1000000)) MB" >&2
done
while [ "$(size)" -lt "$min_bytes" ]; do
    s_time -new -time 2 -www /4m.bin -tls1_3
    s_time -new -time 1 -www /256k.bin -tls1_3
    s_time -reuse -time 1 -www /4m.bin -tls1_2
    echo "connections so far: $connections, capture $(($(size) / 1000000)) MB" >&2
done
sleep 1
kill -INT "$capture_pid"
wait "$capture_pid" 2>/dev/null || true
cat "$work/tcpdump.log" >&2
echo "capture: $work/capture.pcap, $(($(size) / 1000000)) MB, about $connections TLS connections (s_time's count)"
