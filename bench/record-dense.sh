#!/usr/bin/env bash
# Records the handshake-dense benchmark captures (issue 20): nearly every packet belongs to a
# handshake, as at a load balancer's health checks, an API gateway or a probe loop. Two network
# namespaces joined by a veth pair with offloads off; nginx serving TLS 1.2 and 1.3 with a
# two-certificate chain (leaf and intermediate); `openssl s_time` making new and resumed
# connections with no request at all (handshake, then close).
#
#   bench/record-dense.sh           # both captures, if missing
#
# Writes bench/work/dense.pcap (one server, s_time; at least MIN_CONNECTIONS, default 30,000)
# and bench/work/dense-many.pcap (SERVERS servers, default 160, each on its own port with its
# own name and certificate chain; curl --parallel visits them in turn, so consecutive
# connections meet different servers and certificates and no cache of tlsreuse's can hide the
# cost: MIN_CONNECTIONS, TLS 1.2 and 1.3, nearly all full handshakes, since curl keeps 8
# sessions and the servers are more). Needs root, nginx, openssl, tcpdump, ethtool, iproute2. Nothing is
# sent outside the namespaces.
set -euo pipefail
cd "$(dirname "$0")"
min_connections=${MIN_CONNECTIONS:-30000}
servers=${SERVERS:-160}
work=$PWD/work/dense
../scripts/install-test-peers
mkdir -p "$work/nginx/logs" "$work/pki"
. ./lib.sh
namespaces tlsr-dense-srv tlsr-dense-cli 10.98.0

# One root, one intermediate, and a leaf per server signed by the intermediate: every
# full handshake carries a two-certificate chain.
pki=$work/pki
if [ ! -f "$pki/inter.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/root.key" -out "$pki/root.pem" -days 30 \
        -subj "/CN=dense root" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$pki/inter.key" -out "$pki/inter.csr" -subj "/CN=dense intermediate" 2>/dev/null
    printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$pki/ca.ext"
    openssl x509 -req -in "$pki/inter.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" -CAcreateserial \
        -days 30 -extfile "$pki/ca.ext" -out "$pki/inter.pem" 2>/dev/null
fi
# leaf N : a leaf certificate and key for server N, chained with the intermediate.
leaf() {
    local n=$1
    [ -f "$pki/chain$n.pem" ] && return
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/leaf$n.key" \
        -out "$pki/leaf$n.csr" -subj "/CN=server$n.dense.test" 2>/dev/null
    printf 'subjectAltName=DNS:server%s.dense.test\n' "$n" >"$pki/leaf$n.ext"
    openssl x509 -req -in "$pki/leaf$n.csr" -CA "$pki/inter.pem" -CAkey "$pki/inter.key" -CAcreateserial \
        -days 30 -extfile "$pki/leaf$n.ext" -out "$pki/leaf$n.pem" 2>/dev/null
    cat "$pki/leaf$n.pem" "$pki/inter.pem" >"$pki/chain$n.pem"
}
for n in $(seq 0 $((servers - 1))); do leaf "$n"; done

# nginx: server 0 on port 443, servers 1..N-1 on 10001.., each with its own chain.
{
    cat <<CONF
daemon off;
master_process off;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
worker_rlimit_nofile 8192;
http {
    access_log off;
    keepalive_timeout 0;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:20m;
    ssl_session_tickets on;
CONF
    for n in $(seq 0 $((servers - 1))); do
        port=$([ "$n" = 0 ] && echo 443 || echo $((10000 + n)))
        cat <<CONF
    server {
        listen 10.98.0.1:$port ssl;
        server_name server$n.dense.test;
        ssl_certificate $pki/chain$n.pem;
        ssl_certificate_key $pki/leaf$n.key;
        return 204;
    }
CONF
    done
    echo "}"
} >"$work/nginx/nginx.conf"
ip netns exec "$server" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
sleep 1

# s_time TARGET ARGS... : one timed run (no -www: handshake and close); appends its count.
s_time() {
    local target=$1
    shift
    ip netns exec "$client" openssl s_time -connect "$target" "$@" 2>&1 \
        | awk '/connections in [0-9.]+s/ {print $1}' >>"$work/counts" || true
}
connections() { awk '{n += $1} END {print n + 0}' "$work/counts" 2>/dev/null || echo 0; }

# start_capture FILE FILTER / stop_capture FILE : tcpdump on the client's side of the veth
# into FILE.part, renamed FILE when stopped.
start_capture() {
    rm -f "$1.part"
    ip netns exec "$client" tcpdump -i veth-cli -s 0 -B 131072 -w "$1.part" "$2" 2>"$work/tcpdump.log" &
    capture_pid=$!
    sleep 2
}
stop_capture() {
    sleep 1
    kill -INT "$capture_pid"
    wait "$capture_pid" 2>/dev/null || true
    capture_pid=
    mv "$1.part" "$1"
    echo "$(basename "$1"): $(grep -o '^[0-9]* packets captured' "$work/tcpdump.log")" >&2
}

# record FILE FILTER TARGETS... : captures s_time rounds (new and resumed, TLS 1.2 and 1.3)
# against each target until MIN_CONNECTIONS.
record() {
    local file=$1 filter=$2
    shift 2
    [ -f "$file" ] && return
    rm -f "$work/counts"
    start_capture "$file" "$filter"
    local round=0
    while [ "$(connections)" -lt "$min_connections" ]; do
        round=$((round + 1))
        for target in "$@"; do
            s_time "$target" -new -time 1 -tls1_2
            s_time "$target" -reuse -time 1 -tls1_2
            s_time "$target" -new -time 1 -tls1_3
            s_time "$target" -reuse -time 1 -tls1_3
            [ "$(connections)" -ge "$min_connections" ] && break
        done
        echo "$(basename "$file") round $round: $(connections) connections (s_time's count)" >&2
        if [ "$round" -ge 3 ] && [ "$(connections)" -eq 0 ]; then
            echo "record-dense: no connection in $round rounds; is nginx up? ($work/nginx/logs/error.log)" >&2
            exit 1
        fi
    done
    stop_capture "$file"
}

record "$PWD/work/dense.pcap" "tcp port 443" 10.98.0.1:443

# The many-server capture: curl --parallel over a list that visits the servers in turn, with
# and without its session cache, on TLS 1.2 and on 1.3. nginx closes each connection after its
# reply.
many=$PWD/work/dense-many.pcap
if [ ! -f "$many" ]; then
    per_run=$((min_connections / 4))
    : >"$work/urls"
    for i in $(seq 0 $((per_run - 1))); do
        printf 'url = "https://10.98.0.1:%d/"\noutput = "/dev/null"\n' $((10001 + i % (servers - 1))) >>"$work/urls"
    done
    start_capture "$many" "tcp portrange 10001-$((10000 + servers))"
    for version in "--tlsv1.2 --tls-max 1.2" "--tlsv1.3"; do
        for sessions in "" "--no-sessionid"; do
            # shellcheck disable=SC2086
            ip netns exec "$client" curl -sk --no-progress-meter --parallel --parallel-max 32 $version $sessions -K "$work/urls" || true
        done
    done
    stop_capture "$many"
fi
