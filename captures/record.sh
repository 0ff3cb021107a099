#!/usr/bin/env bash
# Records the captures in this folder from real software on loopback (127.0.0.0/8 and ::1).
# Needs root (tcpdump, dumpcap) and: openssl, tcpdump, tshark (dumpcap), nginx, haproxy, curl; for
# proxy-tunnels also squid, dante-server and microsocks; for tcp-fastopen iproute2 (network namespaces).
#
#   captures/record.sh            # record every scenario
#   captures/record.sh tls12-ticket hrr   # only these
#
# For each scenario NAME it writes NAME.pcap (or .pcapng) and NAME.client.log: what the
# client printed while the capture ran (openssl s_client's "New," / "Reused," lines,
# curl's verbose lines). "### connection TIME COMMAND" starts each client run (TIME is when
# it started, epoch seconds); in `s_client -reconnect` runs "drop connection and then
# reconnect" separates the reconnects. The tests compare tlsreuse's verdicts with the first
# New/Reused line of each connection, and its session ages with the start times.
# captures/README.md says what each capture must show.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 3650 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key2.pem -out cert2.pem -days 3650 \
    -subj "/CN=backend-two" 2>/dev/null

capture_pid=
# start_capture FILE FILTER [tcpdump|sll2|dumpcap|dumpcap-two-interfaces]
start_capture() {
    local file=$1 filter=$2 tool=${3:-tcpdump}
    rm -f "$file"
    case $tool in
        tcpdump) tcpdump -i lo -s 0 -U -w "$file" "$filter" 2>/dev/null & ;;
        sll2) tcpdump -i any -y LINUX_SLL2 -s 0 -U -w "$file" "$filter" 2>/dev/null & ;;
        dumpcap) dumpcap -q -i lo -f "$filter" -w "$file" 2>/dev/null & ;;
        dumpcap-two-interfaces) dumpcap -q -i lo -f "$filter" -i any -f "$filter" -w "$file" 2>/dev/null & ;;
    esac
    capture_pid=$!
    sleep 1.5
}

stop_capture() {
    sleep 1
    kill -INT "$capture_pid" 2>/dev/null || true
    wait "$capture_pid" 2>/dev/null || true
}

server_pid=
# start_server PORT ARGS... : openssl s_server on 127.0.0.1:PORT
start_server() {
    local accept=$1
    shift
    openssl s_server -accept "$accept" -cert cert.pem -key key.pem "$@" >server.log 2>&1 &
    server_pid=$!
    sleep 0.7
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# client LOG ARGS... : one s_client connection that sends a request and reads the response,
# so TLS 1.3 tickets (sent after the handshake) arrive.
client() {
    local log=$1
    shift
    echo "### connection $(date +%s.%N) openssl s_client $*" >>"$log"
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client "$@" -ign_eof >>"$log" 2>&1 || true
    sleep 0.2
}

# reconnect LOG ARGS... : s_client -reconnect (one full handshake, five reconnects).
reconnect() {
    local log=$1
    shift
    echo "### connection $(date +%s.%N) openssl s_client $* -reconnect" >"$log"
    echo | timeout 15 openssl s_client "$@" -reconnect >>"$log" 2>&1 || true
}

# wait_until START SECONDS : sleep until SECONDS after START (epoch seconds).
wait_until() {
    sleep "$(awk -v start="$1" -v gap="$2" -v now="$(date +%s.%N)" 'BEGIN { d = start + gap - now; print (d > 0 ? d : 0) }')"
}

finish() {
    local name=$1
    cp "$work/$name".pcap* "$here/"
    cp "$work/$name.client.log" "$here/"
    echo "recorded $name: $(grep -cE '^(New|Reused),|re-using session|SSL connection using' "$here/$name.client.log") client verdicts"
}

# TLS 1.2, session cache only (no tickets): one full handshake, five session-ID resumptions.
record_tls12_session_id() {
    start_capture tls12-session-id.pcap "tcp port 14401"
    start_server 127.0.0.1:14401 -tls1_2 -no_ticket -www
    reconnect tls12-session-id.client.log -connect 127.0.0.1:14401 -tls1_2
    stop_server
    stop_capture
    finish tls12-session-id
}

# TLS 1.2 with OpenSSL's default RFC 5077 tickets: the server's session ID is empty when it
# issues a ticket; the client offers the ticket and a session ID of its own.
record_tls12_ticket() {
    start_capture tls12-ticket.pcap "tcp port 14402"
    start_server 127.0.0.1:14402 -tls1_2 -www
    reconnect tls12-ticket.client.log -connect 127.0.0.1:14402 -tls1_2
    stop_server
    stop_capture
    finish tls12-ticket
}

# TLS 1.3 PSK resumption: save the session after reading a response, resume it twice.
# Also an offer refused: the server restarts (new ticket keys) and the third offer is refused.
record_tls13_psk() {
    start_capture tls13-psk.pcap "tcp port 14403"
    : >tls13-psk.client.log
    start_server 127.0.0.1:14403 -tls1_3 -www
    client tls13-psk.client.log -connect 127.0.0.1:14403 -tls1_3 -sess_out sess13.pem
    client tls13-psk.client.log -connect 127.0.0.1:14403 -tls1_3 -sess_in sess13.pem
    client tls13-psk.client.log -connect 127.0.0.1:14403 -tls1_3 -sess_in sess13.pem
    stop_server
    start_server 127.0.0.1:14403 -tls1_3 -www
    client tls13-psk.client.log -connect 127.0.0.1:14403 -tls1_3 -sess_in sess13.pem
    stop_server
    stop_capture
    finish tls13-psk
}

# Offers refused: a TLS 1.2 ticket and a TLS 1.2 session ID presented to a restarted server
# (new ticket keys, empty session cache).
record_refused() {
    start_capture refused.pcap "tcp port 14404"
    : >refused.client.log
    start_server 127.0.0.1:14404 -tls1_2 -www
    client refused.client.log -connect 127.0.0.1:14404 -tls1_2 -sess_out ticket12.pem
    stop_server
    start_server 127.0.0.1:14404 -tls1_2 -www
    client refused.client.log -connect 127.0.0.1:14404 -tls1_2 -sess_in ticket12.pem
    stop_server
    start_server 127.0.0.1:14404 -tls1_2 -no_ticket -www
    client refused.client.log -connect 127.0.0.1:14404 -tls1_2 -no_ticket -sess_out sid12.pem
    stop_server
    start_server 127.0.0.1:14404 -tls1_2 -no_ticket -www
    client refused.client.log -connect 127.0.0.1:14404 -tls1_2 -no_ticket -sess_in sid12.pem
    stop_server
    stop_capture
    finish refused
}

# HelloRetryRequest: the client's only key share (X25519) is not one the server accepts.
record_hrr() {
    start_capture hrr.pcap "tcp port 14405"
    : >hrr.client.log
    start_server 127.0.0.1:14405 -tls1_3 -groups P-256 -www
    client hrr.client.log -connect 127.0.0.1:14405 -tls1_3 -groups X25519:P-256 -sess_out hrr.pem
    client hrr.client.log -connect 127.0.0.1:14405 -tls1_3 -groups X25519:P-256 -sess_in hrr.pem
    stop_server
    stop_capture
    finish hrr
}

# `tcpdump -i any` writes Linux cooked capture v2; TLS 1.2 session-ID resumption in it.
record_cooked_any() {
    start_capture cooked-any.pcap "tcp port 14406" sll2
    start_server 127.0.0.1:14406 -tls1_2 -no_ticket -www
    reconnect cooked-any.client.log -connect 127.0.0.1:14406 -tls1_2
    stop_server
    stop_capture
    finish cooked-any
}

# IPv6 loopback, TLS 1.3 then TLS 1.2 ticket resumption.
record_ipv6() {
    start_capture ipv6.pcap "tcp port 14407"
    : >ipv6.client.log
    openssl s_server -accept '[::1]:14407' -cert cert.pem -key key.pem -www >server.log 2>&1 &
    server_pid=$!
    sleep 0.7
    client ipv6.client.log -connect '[::1]:14407' -tls1_3 -sess_out v6.pem
    client ipv6.client.log -connect '[::1]:14407' -tls1_3 -sess_in v6.pem
    client ipv6.client.log -connect '[::1]:14407' -tls1_2 -sess_out v6-12.pem
    client ipv6.client.log -connect '[::1]:14407' -tls1_2 -sess_in v6-12.pem
    stop_server
    stop_capture
    finish ipv6
}

# pcapng from dumpcap on loopback, TLS 1.3 resumption.
record_pcapng() {
    start_capture dumpcap.pcapng "tcp port 14408" dumpcap
    : >dumpcap.client.log
    start_server 127.0.0.1:14408 -tls1_3 -www
    client dumpcap.client.log -connect 127.0.0.1:14408 -sess_out ng.pem
    client dumpcap.client.log -connect 127.0.0.1:14408 -sess_in ng.pem
    stop_server
    stop_capture
    finish dumpcap
}

# pcapng from dumpcap on two interfaces at once (lo: Ethernet; any: Linux cooked), so one
# file holds two link types and every packet twice. libpcap 1.10 refuses this file.
record_two_interfaces() {
    start_capture two-interfaces.pcapng "tcp port 14409" dumpcap-two-interfaces
    start_server 127.0.0.1:14409 -tls1_2 -no_ticket -www
    reconnect two-interfaces.client.log -connect 127.0.0.1:14409 -tls1_2
    stop_server
    stop_capture
    finish two-interfaces
}

# An external TLS 1.3 PSK (identity "Client_identity", no certificate): not a resumption.
record_external_psk() {
    start_capture external-psk.pcap "tcp port 14410"
    : >external-psk.client.log
    local key=1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d
    openssl s_server -accept 127.0.0.1:14410 -tls1_3 -nocert -psk "$key" -psk_identity Client_identity -www >server.log 2>&1 &
    server_pid=$!
    sleep 0.7
    client external-psk.client.log -connect 127.0.0.1:14410 -tls1_3 -psk "$key" -psk_identity Client_identity
    client external-psk.client.log -connect 127.0.0.1:14410 -tls1_3 -psk "$key" -psk_identity Client_identity
    stop_server
    stop_capture
    finish external-psk
}

# Older versions: TLS 1.0 and 1.1 need OpenSSL security level 0.
record_legacy_versions() {
    start_capture legacy-versions.pcap "tcp port 14411"
    : >legacy-versions.client.log
    start_server 127.0.0.1:14411 -cipher 'DEFAULT:@SECLEVEL=0' -no_ticket -www
    for v in -tls1 -tls1_1; do
        client legacy-versions.client.log -connect 127.0.0.1:14411 $v -cipher 'DEFAULT:@SECLEVEL=0' -sess_out legacy.pem
        client legacy-versions.client.log -connect 127.0.0.1:14411 $v -cipher 'DEFAULT:@SECLEVEL=0' -sess_in legacy.pem
    done
    stop_server
    stop_capture
    finish legacy-versions
}

# nginx_config NAME < SERVERS : writes NAME/nginx.conf, one nginx run in the foreground
# (no master process, logs in NAME/logs) with the test certificate, around the server
# blocks read from standard input.
nginx_config() {
    local name=$1
    mkdir -p "$name/logs"
    {
        cat <<CONF
daemon off;
master_process off;
error_log $work/$name/logs/error.log;
pid $work/$name/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
CONF
        cat
        echo "}"
    } >"$name/nginx.conf"
}

# start_nginx NAME : runs nginx on NAME/nginx.conf in the background; its pid is nginx_pid.
start_nginx() {
    nginx -p "$work/$1" -c "$work/$1/nginx.conf" &
    nginx_pid=$!
}

# nginx with a shared session cache and curl: curl reuses its session on the second URL
# of each run (Connection: close forces a new connection). TLS 1.2 and TLS 1.3.
record_nginx_curl() {
    nginx_config nginx <<'CONF'
    server {
        listen 127.0.0.1:14412 ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets on;
        location / { return 200 "hello\n"; }
    }
CONF
    start_capture nginx-curl.pcap "tcp port 14412"
    start_nginx nginx
    server_pid=$nginx_pid
    sleep 1
    : >nginx-curl.client.log
    for v in "--tlsv1.2 --tls-max 1.2" "--tlsv1.3"; do
        # shellcheck disable=SC2086
        curl -sk -v $v -H 'Connection: close' https://127.0.0.1:14412/ https://127.0.0.1:14412/ 2>&1 \
            | grep -E 'SSL connection using|re-using session|SSL re-using|Connected to' >>nginx-curl.client.log || true
        sleep 0.3
    done
    stop_server
    stop_capture
    finish nginx-curl
}

# nginx with a 4 s session timeout and tickets off: one session saved, then offered at
# growing ages. Sessions younger than 4 s are resumed, older ones refused.
record_nginx_timeout() {
    nginx_config nginx-timeout <<'CONF'
    server {
        listen 127.0.0.1:14413 ssl;
        ssl_protocols TLSv1.2;
        ssl_session_cache shared:SSL:1m;
        ssl_session_timeout 4s;
        ssl_session_tickets off;
        location / { return 200 "hello\n"; }
    }
CONF
    start_capture nginx-timeout.pcap "tcp port 14413"
    start_nginx nginx-timeout
    server_pid=$nginx_pid
    sleep 1
    : >nginx-timeout.client.log
    local start
    start=$(date +%s.%N)
    client nginx-timeout.client.log -connect 127.0.0.1:14413 -tls1_2 -sess_out timeout.pem
    for gap in 1 2 3 5 8; do
        wait_until "$start" "$gap"
        client nginx-timeout.client.log -connect 127.0.0.1:14413 -tls1_2 -sess_in timeout.pem
    done
    stop_server
    stop_capture
    finish nginx-timeout
}

# A session saved from one client address and resumed from others (s_client -bind), by
# ticket (port 14414) and by session ID (port 14415); the last resumption also changes SNI.
record_moved_session() {
    start_capture moved-session.pcap "tcp port 14414 or tcp port 14415"
    : >moved-session.client.log
    start_server 127.0.0.1:14414 -tls1_2 -www
    local ticket_server=$server_pid
    start_server 127.0.0.1:14415 -tls1_2 -no_ticket -www
    client moved-session.client.log -connect 127.0.0.1:14414 -bind 127.0.0.2:0 -tls1_2 -servername alpha.test -sess_out moved-ticket.pem
    client moved-session.client.log -connect 127.0.0.1:14414 -bind 127.0.0.3:0 -tls1_2 -servername alpha.test -sess_in moved-ticket.pem
    client moved-session.client.log -connect 127.0.0.1:14415 -bind 127.0.0.2:0 -tls1_2 -servername alpha.test -sess_out moved-id.pem
    client moved-session.client.log -connect 127.0.0.1:14415 -bind 127.0.0.4:0 -tls1_2 -servername alpha.test -sess_in moved-id.pem
    client moved-session.client.log -connect 127.0.0.1:14415 -bind 127.0.0.4:0 -tls1_2 -servername beta.test -sess_in moved-id.pem
    stop_server
    server_pid=$ticket_server
    stop_server
    stop_capture
    finish moved-session
}

# A server that resumes nothing: OpenSSL with its session cache and tickets off sends an
# empty session ID and no ticket, so its client has nothing to offer; a ticket from another
# server is offered and refused.
record_no_resumption() {
    start_capture no-resumption.pcap "tcp port 14416 or tcp port 14417"
    : >no-resumption.client.log
    start_server 127.0.0.1:14417 -tls1_2 -www
    client no-resumption.client.log -connect 127.0.0.1:14417 -tls1_2 -sess_out foreign.pem
    stop_server
    start_server 127.0.0.1:14416 -tls1_2 -no_ticket -no_cache -www
    reconnect no-resumption.reconnect.log -connect 127.0.0.1:14416 -tls1_2
    cat no-resumption.reconnect.log >>no-resumption.client.log
    client no-resumption.client.log -connect 127.0.0.1:14416 -tls1_2 -sess_in foreign.pem
    stop_server
    stop_capture
    finish no-resumption
}

# ---- Load balancers: haproxy in TCP mode on 127.0.0.1:14500 in front of two backends on
# 14501 and 14502. Each capture holds both legs; NAME-client-side.pcap is the same capture
# cut to the client side (tcpdump -r ... 'tcp port 14500'), what a capture in front of the
# balancer sees. NAME.haproxy.log is haproxy's tcplog: which server took each client port.

# start_haproxy EXTRA_BACKEND_LINES
start_haproxy() {
    cat >haproxy.cfg <<CONF
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:14500
    default_backend be
backend be
    balance roundrobin
$1
    server s1 127.0.0.1:14501
    server s2 127.0.0.1:14502
CONF
    haproxy -f haproxy.cfg -db >haproxy.log 2>&1 &
    haproxy_pid=$!
    sleep 1
}

stop_haproxy() {
    kill "$haproxy_pid" 2>/dev/null || true
    wait "$haproxy_pid" 2>/dev/null || true
}

# start_backends CERT ARGS... : the two balancer backends, s_server on 127.0.0.1:14501
# (cert.pem) and on 14502 (CERT.pem: "cert" for one look-alike pair, "cert2" for two
# certificates), each with ARGS; stop_backends ends them.
start_backends() {
    local second=$1
    shift
    openssl s_server -accept 127.0.0.1:14501 -cert cert.pem -key key.pem "$@" -www >s1.log 2>&1 &
    backend_pids=($!)
    openssl s_server -accept 127.0.0.1:14502 -cert "$second.pem" -key "${second/cert/key}.pem" "$@" -www >s2.log 2>&1 &
    backend_pids+=($!)
}

stop_backends() { kill "${backend_pids[@]}" 2>/dev/null || true; }

# lb_clients LOG OFFERS ARGS... : three client addresses each save a session through the
# balancer, then offer it OFFERS times.
lb_clients() {
    local log=$1 offers=$2
    shift 2
    for address in 127.0.0.2 127.0.0.3 127.0.0.4; do
        client "$log" -connect 127.0.0.1:14500 -bind "$address:0" -servername svc.test "$@" -sess_out "lb-$address.pem"
        for _ in $(seq "$offers"); do
            client "$log" -connect 127.0.0.1:14500 -bind "$address:0" -servername svc.test "$@" -sess_in "lb-$address.pem"
        done
    done
}

# finish_lb NAME : saves both captures, the client log (for both) and haproxy's log.
finish_lb() {
    local name=$1
    stop_haproxy
    stop_capture
    tcpdump -r "$name.pcap" -w "$name-client-side.pcap" 'tcp port 14500' 2>/dev/null
    cp "$name.client.log" "$name-client-side.client.log"
    cp haproxy.log "$name.haproxy.log"
    cp "$name.pcap" "$name-client-side.pcap" "$name.client.log" "$name-client-side.client.log" "$name.haproxy.log" "$here/"
    echo "recorded $name: $(grep -c ' fe be/' haproxy.log) balanced connections"
}

# Round robin over two OpenSSL servers with their own certificates and session caches
# (TLS 1.2 session IDs): an offer that lands on the other server is refused.
record_lb_roundrobin() {
    start_capture lb-roundrobin.pcap "tcp portrange 14500-14502"
    start_backends cert2 -tls1_2 -no_ticket
    start_haproxy ""
    : >lb-roundrobin.client.log
    lb_clients lb-roundrobin.client.log 3 -tls1_2
    stop_backends
    finish_lb lb-roundrobin
}

# The same servers, with haproxy sticking on the SSL session ID: it learns the server's
# session ID from the ServerHello (tcp-response inspect-delay is needed for that) and sends
# a ClientHello offering it back to that server.
record_lb_sticky() {
    start_capture lb-sticky.pcap "tcp portrange 14500-14502"
    start_backends cert2 -tls1_2 -no_ticket
    start_haproxy "    stick-table type binary len 32 size 30k expire 30m
    acl clienthello req.ssl_hello_type 1
    acl serverhello res.ssl_hello_type 2
    tcp-request inspect-delay 5s
    tcp-request content accept if clienthello
    tcp-response inspect-delay 5s
    tcp-response content accept if serverhello
    stick on req.payload_lv(43,1) if clienthello
    stick store-response res.payload_lv(43,1) if serverhello"
    : >lb-sticky.client.log
    lb_clients lb-sticky.client.log 3 -tls1_2
    stop_backends
    finish_lb lb-sticky
}

# Two nginx instances with the same certificate and the same ticket key file (nginx ties a
# session to its certificate): a ticket from one is accepted by the other.
record_lb_shared_tickets() {
    openssl rand 80 >ticket.key
    for n in 1 2; do
        nginx_config "nginx-lb$n" <<CONF
    server {
        listen 127.0.0.1:1450$n ssl;
        ssl_protocols TLSv1.2;
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_ticket_key $work/ticket.key;
        location / { return 200 "backend $n\n"; }
    }
CONF
    done
    start_capture lb-shared-tickets.pcap "tcp portrange 14500-14502"
    start_nginx nginx-lb1
    local n1=$nginx_pid
    start_nginx nginx-lb2
    local n2=$nginx_pid
    start_haproxy ""
    : >lb-shared-tickets.client.log
    lb_clients lb-shared-tickets.client.log 3 -tls1_2
    kill $n1 $n2 2>/dev/null || true
    wait $n1 $n2 2>/dev/null || true
    finish_lb lb-shared-tickets
}

# Round robin over two TLS 1.3 OpenSSL servers, each with its own ticket keys.
record_lb_tls13() {
    start_capture lb-tls13.pcap "tcp portrange 14500-14502"
    start_backends cert2 -tls1_3
    start_haproxy ""
    : >lb-tls13.client.log
    lb_clients lb-tls13.client.log 5 -tls1_3
    stop_backends
    finish_lb lb-tls13
}

# `s_client -reconnect` through round robin over two OpenSSL servers that look the same
# from the client side (one certificate, one software, one host): each reconnect offers the
# previous connection's session and lands on the other server, so every offer is refused.
# The client side alone cannot tell this from a server without a cache (issue 16).
record_lb_reconnect() {
    start_capture lb-reconnect.pcap "tcp portrange 14500-14502"
    start_backends cert -tls1_2 -no_ticket
    start_haproxy ""
    reconnect lb-reconnect.client.log -connect 127.0.0.1:14500 -servername svc.test -tls1_2
    stop_backends
    finish_lb lb-reconnect
}

# Two clients taking turns through the same round robin: each lands on the same server
# every time (the balancer alternates, and so do they), so every offer is accepted; nothing
# on the client side shows there are two servers.
record_lb_alternating() {
    start_capture lb-alternating.pcap "tcp portrange 14500-14502"
    start_backends cert -tls1_2 -no_ticket
    start_haproxy ""
    : >lb-alternating.client.log
    for address in 127.0.0.2 127.0.0.3; do
        client lb-alternating.client.log -connect 127.0.0.1:14500 -bind "$address:0" -servername svc.test -tls1_2 -sess_out "alt-$address.pem"
    done
    for _ in 1 2 3; do
        for address in 127.0.0.2 127.0.0.3; do
            client lb-alternating.client.log -connect 127.0.0.1:14500 -bind "$address:0" -servername svc.test -tls1_2 -sess_in "alt-$address.pem"
        done
    done
    stop_backends
    finish_lb lb-alternating
}

# The classic probe: one saved session offered at 5, 10, 15 and 30 s to nginx with
# `ssl_session_timeout 20s`, for TLS 1.2 session IDs (14460), TLS 1.2 tickets (14461) and
# TLS 1.3 tickets (14462), the three probed at once, 0.3 s apart so their connections keep
# one order; the client log lists the connections in the order they started.
record_probe_intervals() {
    nginx_config nginx-probe <<'CONF'
    ssl_session_timeout 20s;
    server {
        listen 127.0.0.1:14460 ssl;
        ssl_protocols TLSv1.2;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets off;
        location / { return 200 "session id\n"; }
    }
    server {
        listen 127.0.0.1:14461 ssl;
        ssl_protocols TLSv1.2;
        ssl_session_cache off;
        ssl_session_tickets on;
        location / { return 200 "ticket\n"; }
    }
    server {
        listen 127.0.0.1:14462 ssl;
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets on;
        location / { return 200 "tls 1.3\n"; }
    }
CONF
    start_capture probe-intervals.pcap "tcp portrange 14460-14462"
    start_nginx nginx-probe
    server_pid=$nginx_pid
    sleep 1
    : >probe-intervals.client.log
    local port version start pids=() offset=0
    for port in 14460 14461 14462; do
        version=-tls1_2
        [ "$port" = 14462 ] && version=-tls1_3
        (
            log=probe-$port.client.log
            : >"$log"
            sleep "$offset"
            start=$(date +%s.%N)
            client "$log" -connect 127.0.0.1:$port $version -sess_out "probe-$port.pem"
            for gap in 5 10 15 30; do
                wait_until "$start" "$gap"
                client "$log" -connect 127.0.0.1:$port $version -sess_in "probe-$port.pem"
            done
        ) &
        pids+=($!)
        offset=$(awk -v o="$offset" 'BEGIN { print o + 0.3 }')
    done
    wait "${pids[@]}"
    # One log, connections in the order they started (each block begins "### connection TIME").
    cat probe-1446[012].client.log | awk '/^### connection / { n++; t = $3 } { print t "\t" n "\t" $0 }' |
        sort -t "$(printf '\t')" -k1,1n -k2,2n -s | cut -f3- >probe-intervals.client.log
    stop_server
    stop_capture
    finish probe-intervals
}

# VXLAN (RFC 7348): two network namespaces joined by a veth pair, a VXLAN device on each
# (VNI 42, UDP port 4789) with overlay addresses 192.168.42.1 and .2. The server and client
# talk over the overlay; tcpdump records the underlay, so every packet is TLS inside
# Ethernet inside VXLAN inside UDP. TLS 1.2 session-ID resumption, five reconnects.
# Nothing leaves the namespaces.
record_vxlan() {
    local a=tlsreuse-vx-a b=tlsreuse-vx-b
    ip netns del $a 2>/dev/null || true
    ip netns del $b 2>/dev/null || true
    ip netns add $a
    ip netns add $b
    ip link add vx-under-a netns $a type veth peer name vx-under-b netns $b
    ip -n $a addr add 10.42.0.1/24 dev vx-under-a
    ip -n $b addr add 10.42.0.2/24 dev vx-under-b
    for side in "$a vx-under-a 10.42.0.2 192.168.42.1" "$b vx-under-b 10.42.0.1 192.168.42.2"; do
        set -- $side
        ip -n "$1" link set lo up
        ip -n "$1" link set "$2" up
        ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
        ip -n "$1" link add vx42 type vxlan id 42 remote "$3" dstport 4789 dev "$2"
        ip -n "$1" addr add "$4/24" dev vx42
        ip -n "$1" link set vx42 up
    done
    rm -f vxlan.pcap
    ip netns exec $a tcpdump -i vx-under-a -s 0 -U -w vxlan.pcap udp port 4789 2>/dev/null &
    capture_pid=$!
    sleep 1.5
    ip netns exec $b openssl s_server -accept 192.168.42.2:14420 -cert cert.pem -key key.pem -tls1_2 -no_ticket -www >server.log 2>&1 &
    server_pid=$!
    sleep 0.7
    echo "### connection $(date +%s.%N) openssl s_client -connect 192.168.42.2:14420 -tls1_2 -reconnect" >vxlan.client.log
    echo | timeout 15 ip netns exec $a openssl s_client -connect 192.168.42.2:14420 -tls1_2 -reconnect >>vxlan.client.log 2>&1 || true
    stop_server
    stop_capture
    ip netns del $a
    ip netns del $b
    finish vxlan
}

# DTLS 1.2 over UDP on loopback: s_server -dtls1_2 with its session cache only (14430),
# then with tickets (14431); s_client -dtls1_2 -reconnect against each. s_server reads its
# standard input in DTLS mode and stops at its end, so it is kept open; it serves no -www.
record_dtls() {
    start_capture dtls.pcap "udp portrange 14430-14431"
    : >dtls.client.log
    for setup in "14430 -no_ticket" "14431"; do
        set -- $setup
        (sleep 12 | openssl s_server -dtls1_2 -accept 127.0.0.1:$1 -cert cert.pem -key key.pem ${2:-} >server.log 2>&1) &
        local dtls_server=$!
        sleep 1
        echo "### connection $(date +%s.%N) openssl s_client -dtls1_2 -connect 127.0.0.1:$1 -reconnect" >>dtls.client.log
        (sleep 3; echo) | timeout 15 openssl s_client -dtls1_2 -connect 127.0.0.1:$1 -reconnect >>dtls.client.log 2>&1 || true
        pkill -f "s_server -dtls1_2 -accept 127.0.0.1:$1" || true
        kill "$dtls_server" 2>/dev/null || true
        wait "$dtls_server" 2>/dev/null || true
    done
    stop_capture
    finish dtls
}

# STARTTLS against real servers from Debian's packages, each with record.sh's certificate:
# postfix (SMTP on 127.0.0.1:25; its main.cf is changed for the run and restored), dovecot
# (IMAP on 14441, POP3 on 14442), PostgreSQL 15 (14443), slapd (LDAP, GnuTLS, on 14444)
# and vsftpd (FTP AUTH TLS on 14445). openssl s_client -starttls PROTO -reconnect against
# each. Needs: apt-get install postfix dovecot-imapd dovecot-pop3d postgresql slapd vsftpd.
record_starttls() {
    start_capture starttls.pcap "tcp port 25 or tcp portrange 14441-14445"
    : >starttls.client.log
    starttls_client() { # PROTO PORT [s_client options...]
        local proto=$1 port=$2
        shift 2
        echo "### connection $(date +%s.%N) openssl s_client -starttls $proto -connect 127.0.0.1:$port $* -reconnect" >>starttls.client.log
        echo | timeout 20 openssl s_client -starttls "$proto" -connect "127.0.0.1:$port" "$@" -reconnect >>starttls.client.log 2>&1 || true
    }
    # postfix: the system instance, loopback only.
    cp /etc/postfix/main.cf main.cf.saved
    postconf -e "inet_interfaces = loopback-only" "inet_protocols = ipv4" "smtpd_tls_cert_file = $work/cert.pem" \
        "smtpd_tls_key_file = $work/key.pem" "smtpd_tls_security_level = may"
    postfix start >/dev/null 2>&1
    sleep 2
    starttls_client smtp 25 -tls1_2
    postfix stop >/dev/null 2>&1 || true
    cp main.cf.saved /etc/postfix/main.cf
    # dovecot: IMAP and POP3 with STARTTLS only.
    mkdir -p dovecot-run dovecot-state
    cat >dovecot.conf <<CONF
protocols = imap pop3
listen = 127.0.0.1
base_dir = $work/dovecot-run
state_dir = $work/dovecot-state
log_path = $work/dovecot.log
ssl = yes
ssl_cert = <$work/cert.pem
ssl_key = <$work/key.pem
service imap-login {
  inet_listener imap {
    port = 14441
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 14442
  }
  inet_listener pop3s {
    port = 0
  }
}
passdb {
  driver = static
  args = password=unused
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$work
}
CONF
    dovecot -c "$work/dovecot.conf"
    sleep 1
    starttls_client imap 14441 -tls1_2
    starttls_client pop3 14442
    kill "$(cat dovecot-run/master.pid)" 2>/dev/null || true
    # PostgreSQL: a throwaway cluster owned by the postgres user.
    mkdir -p pg pgsock
    cp cert.pem pgcert.pem
    cp key.pem pgkey.pem
    chmod 600 pgkey.pem
    chown postgres pg pgsock pgcert.pem pgkey.pem
    chmod 755 "$work"
    su postgres -c "/usr/lib/postgresql/15/bin/initdb -D $work/pg --auth=trust -U postgres" >/dev/null 2>&1
    su postgres -c "/usr/lib/postgresql/15/bin/postgres -D $work/pg -p 14443 -k $work/pgsock -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$work/pgcert.pem -c ssl_key_file=$work/pgkey.pem" >pg.log 2>&1 &
    sleep 3
    starttls_client postgres 14443
    pkill -f "postgres -D $work/pg" || true
    # slapd (OpenLDAP with GnuTLS).
    mkdir -p ldapdb
    cat >slapd.conf <<CONF
include /etc/ldap/schema/core.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $work/slapd.pid
TLSCertificateFile $work/cert.pem
TLSCertificateKeyFile $work/key.pem
database mdb
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
directory $work/ldapdb
CONF
    slapd -f "$work/slapd.conf" -h ldap://127.0.0.1:14444/
    sleep 1
    starttls_client ldap 14444 -tls1_2
    kill "$(cat slapd.pid)" 2>/dev/null || true
    # vsftpd: anonymous FTP with AUTH TLS.
    mkdir -p /var/run/vsftpd/empty
    cat >vsftpd.conf <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=14445
background=NO
anonymous_enable=YES
local_enable=NO
ssl_enable=YES
allow_anon_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=$work/cert.pem
rsa_private_key_file=$work/key.pem
secure_chroot_dir=/var/run/vsftpd/empty
CONF
    vsftpd "$work/vsftpd.conf" &
    local ftp=$!
    sleep 1
    starttls_client ftp 14445
    kill "$ftp" 2>/dev/null || true
    stop_capture
    finish starttls
}

# QUIC v1 between aioquic's example HTTP/3 server and client (from the aioquic sdist on
# PyPI; pip install aioquic wsproto starlette jinja2) on 127.0.0.1:14450. The client saves
# its session ticket after the first request and offers it on the next two; then the
# server restarts (new ticket keys) and the fourth offer is refused. The client prints no
# verdict, so quic.aioquic.log records each run and whether a ticket file was offered;
# the tests take the outcome from tshark's own decryption of the Initial packets.
record_quic() {
    local version=1.7.2
    (cd "$work" && pip download -q --no-binary :all: --no-deps "aioquic==$version" && tar xzf "aioquic-$version.tar.gz")
    local examples="$work/aioquic-$version/examples"
    start_capture quic.pcap "udp port 14450"
    : >quic.aioquic.log
    for run in 1 2 3 restart 4; do
        if [ "$run" = 1 ] || [ "$run" = restart ]; then
            pkill -f "http3_server.py .* --port 14450" 2>/dev/null || true
            sleep 0.5
            (cd "$examples" && exec python3 http3_server.py --certificate "$work/cert.pem" --private-key "$work/key.pem" \
                --host 127.0.0.1 --port 14450 demo:app >"$work/quic-server.log" 2>&1) &
            sleep 3
            [ "$run" = restart ] && continue
        fi
        local offered=no
        [ -s "$work/ticket.bin" ] && offered=yes
        echo "### connection $(date +%s.%N) python3 http3_client.py --session-ticket ticket.bin (ticket offered: $offered)" >>quic.aioquic.log
        (cd "$examples" && timeout 20 python3 http3_client.py --ca-certs "$work/cert.pem" --session-ticket "$work/ticket.bin" \
            -v https://127.0.0.1:14450/ >>"$work/quic.aioquic.log" 2>&1) || true
        sleep 0.3
    done
    pkill -f "http3_server.py .* --port 14450" 2>/dev/null || true
    stop_capture
    cp quic.pcap quic.aioquic.log "$here/"
    echo "recorded quic: $(grep -c '^### connection' "$here/quic.aioquic.log") client runs"
}

# JA4's ALPN part for first ALPN names that are not alphanumeric at both ends: s_client
# sends each as its first ALPN name (then h2); the server ignores ALPN.
record_alpn_bytes() {
    start_capture alpn-bytes.pcap "tcp port 14470"
    : >alpn-bytes.client.log
    start_server 127.0.0.1:14470 -tls1_3 -www
    local name
    for name in $'\xba\xad' $'0\xab' $'x\xba' 'h2-' 'a' $'\x01h2'; do
        client alpn-bytes.client.log -connect 127.0.0.1:14470 -alpn "$name,h2"
    done
    stop_server
    stop_capture
    finish alpn-bytes
}

# TLS through proxies, client side only (what a sensor in front of the proxy sees): squid
# (HTTP CONNECT, and a port that asks for credentials with 407 first), dante (SOCKS 4, 4a, 5)
# and microsocks (SOCKS 5 with username and password), all before one s_server with a
# session cache. s_client -proxy -reconnect gives New/Reused through CONNECT.
record_proxy_tunnels() {
    local squid_conf="$work/squid.conf" dante_conf="$work/danted.conf"
    echo "probe:$(openssl passwd -apr1 secret)" >"$work/proxy.passwd"
    chmod 644 "$work/proxy.passwd"
    cat >"$squid_conf" <<CONF
http_port 127.0.0.1:14481 name=open
http_port 127.0.0.1:14482 name=auth
pid_filename none
cache_log /dev/null
access_log none
cache deny all
shutdown_lifetime 0 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth $work/proxy.passwd
auth_param basic realm tlsreuse
acl open myportname open
acl authed proxy_auth REQUIRED
acl CONNECT method CONNECT
http_access allow CONNECT open
http_access allow CONNECT authed
http_access deny all
CONF
    cat >"$dante_conf" <<CONF
logoutput: $work/danted.log
internal: 127.0.0.1 port = 14483
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }
CONF
    start_server 127.0.0.1:14480 -tls1_2 -no_ticket -www
    chmod 755 "$work"  # squid's helper runs as the proxy user and reads the password file
    squid -N -f "$squid_conf" >"$work/squid.out" 2>&1 &
    local squid_pid=$!
    danted -f "$dante_conf" >"$work/danted.out" 2>&1 &
    local dante_pid=$!
    microsocks -i 127.0.0.1 -p 14484 -u probe -P secret >"$work/microsocks.out" 2>&1 &
    local microsocks_pid=$!
    sleep 3
    start_capture proxy-tunnels.pcap "tcp portrange 14481-14484"
    local log=proxy-tunnels.client.log
    echo "### connection $(date +%s.%N) openssl s_client -proxy 127.0.0.1:14481 -connect localhost:14480 -reconnect" >$log
    echo | timeout 15 openssl s_client -proxy 127.0.0.1:14481 -connect localhost:14480 -tls1_2 -reconnect >>$log 2>&1 || true
    local curl_tls=(--cacert cert.pem -s -o /dev/null -v)
    echo "### connection $(date +%s.%N) curl --proxy-anyauth -x 127.0.0.1:14482 https://localhost:14480/" >>$log
    timeout 10 curl "${curl_tls[@]}" --proxy-anyauth --proxy-user probe:secret -x http://127.0.0.1:14482 https://localhost:14480/ >>$log 2>&1 || true
    echo "### connection $(date +%s.%N) curl --socks4 127.0.0.1:14483 https://127.0.0.1:14480/" >>$log
    timeout 10 curl "${curl_tls[@]}" --socks4 127.0.0.1:14483 https://127.0.0.1:14480/ -k >>$log 2>&1 || true
    echo "### connection $(date +%s.%N) curl --socks4a 127.0.0.1:14483 https://localhost:14480/" >>$log
    timeout 10 curl "${curl_tls[@]}" --socks4a 127.0.0.1:14483 https://localhost:14480/ >>$log 2>&1 || true
    echo "### connection $(date +%s.%N) curl --socks5 127.0.0.1:14483 https://127.0.0.1:14480/" >>$log
    timeout 10 curl "${curl_tls[@]}" --socks5 127.0.0.1:14483 https://127.0.0.1:14480/ -k >>$log 2>&1 || true
    echo "### connection $(date +%s.%N) curl --socks5-hostname 127.0.0.1:14484 --proxy-user probe:secret https://localhost:14480/" >>$log
    timeout 10 curl "${curl_tls[@]}" --socks5-hostname 127.0.0.1:14484 --proxy-user probe:secret https://localhost:14480/ >>$log 2>&1 || true
    stop_capture
    kill "$microsocks_pid" "$dante_pid" 2>/dev/null || true
    kill "$squid_pid" 2>/dev/null || true
    sleep 1
    stop_server
    finish proxy-tunnels
}

# TCP Fast Open (RFC 7413) with the kernel's own client and server, in a network namespace
# of its own (net.ipv4.tcp_fastopen is per namespace): nginx listening with `fastopen=16` on
# 14490 and without it on 14491; curl --tcp-fastopen fetching two URLs per run, so its second
# connection resumes the session of the first. The first SYN to 14490 asks for a cookie; every
# later SYN carries the ClientHello. 14491 does not take data on a SYN: the SYN-ACK
# acknowledges only the SYN and curl's kernel sends the ClientHello again.
record_tcp_fastopen() {
    local ns=tlsreuse-tfo
    ip netns del $ns 2>/dev/null || true
    ip netns add $ns
    ip -n $ns link set lo up
    ip netns exec $ns sysctl -q -w net.ipv4.tcp_fastopen=3
    nginx_config tfo <<'CONF'
    ssl_session_cache shared:SSL:1m;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:14490 ssl fastopen=16;
        listen 127.0.0.1:14491 ssl;
        ssl_protocols TLSv1.2;
        location / { return 200 "hello\n"; }
    }
CONF
    rm -f tcp-fastopen.pcap
    ip netns exec $ns tcpdump -i lo -s 0 -U -w tcp-fastopen.pcap "tcp portrange 14490-14491" 2>/dev/null &
    capture_pid=$!
    sleep 1.5
    ip netns exec $ns nginx -p "$work/tfo" -c "$work/tfo/nginx.conf" &
    server_pid=$!
    sleep 1
    : >tcp-fastopen.client.log
    local port
    for port in 14490 14490 14491; do
        echo "### connection $(date +%s.%N) curl --tcp-fastopen https://127.0.0.1:$port/ (twice)" >>tcp-fastopen.client.log
        ip netns exec $ns curl -sk -v --tcp-fastopen -H 'Connection: close' \
            "https://127.0.0.1:$port/" "https://127.0.0.1:$port/" 2>&1 \
            | grep -E 'SSL connection using|re-using session|SSL re-using|Connected to' >>tcp-fastopen.client.log || true
        sleep 0.3
    done
    stop_server
    stop_capture
    ip netns del $ns
    finish tcp-fastopen
}

# TLS 1.3 with the client's key log (issue 18): for each cipher suite swift-crypto opens, a
# full handshake that is issued two tickets (-num_tickets 2), then a resumption with one of
# them; last, a connection that sends a KeyUpdate asking for the server's ("K" on
# s_client's input), so the server's later records come under updated keys. The client's
# key log is tls13-keylog.keys; tls13-keylog-dsb.pcapng is the same capture with the key log
# inside, in a Decryption Secrets Block (editcap --inject-secrets).
record_tls13_keylog() {
    start_capture tls13-keylog.pcap "tcp port 14420"
    : >tls13-keylog.client.log
    rm -f keys.log
    start_server 127.0.0.1:14420 -tls1_3 -www -num_tickets 2
    local suite
    for suite in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
        client tls13-keylog.client.log -connect 127.0.0.1:14420 -tls1_3 -ciphersuites "$suite" \
            -keylogfile keys.log -sess_out "$suite.pem"
        client tls13-keylog.client.log -connect 127.0.0.1:14420 -tls1_3 -ciphersuites "$suite" \
            -keylogfile keys.log -sess_in "$suite.pem"
    done
    echo "### connection $(date +%s.%N) openssl s_client -connect 127.0.0.1:14420 -tls1_3 (K: KeyUpdate)" \
        >>tls13-keylog.client.log
    { printf 'K\n'; sleep 0.5; printf 'GET / HTTP/1.0\r\n\r\n'; sleep 1; } \
        | timeout 10 openssl s_client -connect 127.0.0.1:14420 -tls1_3 -keylogfile keys.log \
            >>tls13-keylog.client.log 2>&1 || true
    stop_server
    stop_capture
    cp keys.log tls13-keylog.keys
    editcap --inject-secrets tls,keys.log tls13-keylog.pcap tls13-keylog-dsb.pcapng
    cp tls13-keylog.keys tls13-keylog-dsb.pcapng "$here/"
    finish tls13-keylog
}

# TLS 1.3 through a balancer, with the clients' key log (issue 18): haproxy in TCP mode, round
# robin over two nginx backends with different certificates (localhost on 14501, backend-two
# on 14502), each with its own ticket keys and `ssl_session_timeout 300s` (nginx announces
# it as the ticket lifetime). Three client addresses save a session and offer it three
# times (s_client -keylogfile -sess_out/-sess_in); round robin sends every other offer to
# the backend that did not issue it. The clients' key log is lb-tls13-keylog.keys.
record_lb_tls13_keylog() {
    local n cert
    for n in 1 2; do
        cert=cert
        [ "$n" = 2 ] && cert=cert2
        nginx_config "nginx-lb-keylog$n" <<CONF
    server {
        listen 127.0.0.1:1450$n ssl;
        ssl_certificate $work/$cert.pem;
        ssl_certificate_key $work/${cert/cert/key}.pem;
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_timeout 300s;
        location / { return 200 "backend $n\n"; }
    }
CONF
    done
    start_capture lb-tls13-keylog.pcap "tcp portrange 14500-14502"
    start_nginx nginx-lb-keylog1
    local n1=$nginx_pid
    start_nginx nginx-lb-keylog2
    local n2=$nginx_pid
    start_haproxy ""
    rm -f keys.log
    : >lb-tls13-keylog.client.log
    lb_clients lb-tls13-keylog.client.log 3 -tls1_3 -keylogfile keys.log
    kill $n1 $n2 2>/dev/null || true
    wait $n1 $n2 2>/dev/null || true
    cp keys.log lb-tls13-keylog.keys
    cp lb-tls13-keylog.keys "$here/"
    finish_lb lb-tls13-keylog
}

# nginx with TLS 1.3 tickets, `ssl_session_timeout 600s` (announced as the ticket lifetime)
# and `ssl_early_data on`, probed with key logs (issue 18): s_client -keylogfile saves a
# session and offers it twice, then curl (SSLKEYLOGFILE) fetches two URLs and resumes on the
# second; last, s_client resumes the saved session and sends its request as early data
# (0-RTT), which nginx accepts. The key log all of them wrote is nginx-keylog.keys.
record_nginx_keylog() {
    nginx_config nginx-keylog <<'CONF'
    server {
        listen 127.0.0.1:14421 ssl;
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets on;
        ssl_session_timeout 600s;
        ssl_early_data on;
        location / { return 200 "hello\n"; }
    }
CONF
    start_capture nginx-keylog.pcap "tcp port 14421"
    start_nginx nginx-keylog
    server_pid=$nginx_pid
    sleep 1
    rm -f keys.log
    : >nginx-keylog.client.log
    client nginx-keylog.client.log -connect 127.0.0.1:14421 -tls1_3 -keylogfile keys.log -sess_out keylog.pem
    client nginx-keylog.client.log -connect 127.0.0.1:14421 -tls1_3 -keylogfile keys.log -sess_in keylog.pem
    client nginx-keylog.client.log -connect 127.0.0.1:14421 -tls1_3 -keylogfile keys.log -sess_in keylog.pem
    echo "### connection $(date +%s.%N) curl --tlsv1.3 (SSLKEYLOGFILE) two URLs" >>nginx-keylog.client.log
    SSLKEYLOGFILE=$work/keys.log curl -sk -v --tlsv1.3 -H 'Connection: close' \
        https://127.0.0.1:14421/ https://127.0.0.1:14421/ 2>&1 \
        | grep -E 'SSL connection using|re-using session|SSL re-using|Connected to' >>nginx-keylog.client.log || true
    # HTTP/1.1: nginx keeps the connection open after its response, so the client's
    # EndOfEarlyData and Finished reach it before anyone closes (HTTP/1.0 has nginx close at
    # once, and reset the connection when they arrive).
    printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' >early.txt
    echo "### connection $(date +%s.%N) openssl s_client -connect 127.0.0.1:14421 -tls1_3 -keylogfile keys.log -sess_in keylog.pem -early_data early.txt" >>nginx-keylog.client.log
    { sleep 2; } | timeout 10 openssl s_client -connect 127.0.0.1:14421 -tls1_3 -keylogfile keys.log \
        -sess_in keylog.pem -early_data early.txt >>nginx-keylog.client.log 2>&1 || true
    stop_server
    stop_capture
    cp keys.log nginx-keylog.keys
    cp nginx-keylog.keys "$here/"
    finish nginx-keylog
}

# QUIC v1 with the client's key log (issue 18): aioquic's example HTTP/3 server and client
# (as for quic) on 127.0.0.1:14451, the client writing its TLS secrets (--secrets-log, the
# NSS key log format). The first run saves the session ticket the server sends in a 1-RTT
# packet; the next two offer it. quic-keylog.keys is the key log.
record_quic_keylog() {
    local version=1.7.2
    (cd "$work" && pip download -q --no-binary :all: --no-deps "aioquic==$version" && tar xzf "aioquic-$version.tar.gz")
    local examples="$work/aioquic-$version/examples"
    start_capture quic-keylog.pcap "udp port 14451"
    : >quic-keylog.aioquic.log
    rm -f "$work/keylog-ticket.bin" "$work/quic-keys.log"
    (cd "$examples" && exec python3 http3_server.py --certificate "$work/cert.pem" --private-key "$work/key.pem" \
        --host 127.0.0.1 --port 14451 demo:app >"$work/quic-keylog-server.log" 2>&1) &
    sleep 3
    for run in 1 2 3; do
        local offered=no
        [ -s "$work/keylog-ticket.bin" ] && offered=yes
        echo "### connection $(date +%s.%N) python3 http3_client.py --secrets-log --session-ticket (ticket offered: $offered)" \
            >>quic-keylog.aioquic.log
        (cd "$examples" && timeout 20 python3 http3_client.py --ca-certs "$work/cert.pem" \
            --session-ticket "$work/keylog-ticket.bin" --secrets-log "$work/quic-keys.log" \
            -v https://127.0.0.1:14451/ >>"$work/quic-keylog.aioquic.log" 2>&1) || true
        sleep 0.3
    done
    pkill -f "http3_server.py .* --port 14451" 2>/dev/null || true
    stop_capture
    cp "$work/quic-keys.log" "$here/quic-keylog.keys"
    cp quic-keylog.pcap quic-keylog.aioquic.log "$here/"
    echo "recorded quic-keylog: $(grep -c '^### connection' "$here/quic-keylog.aioquic.log") client runs"
}

# TLS 1.2 renegotiation with the client's key log (issue 18: what CLIENT_RANDOM adds): per
# AEAD suite (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), an s_client that renegotiates
# ("R" on its input) with s_server -client_renegotiation on 14422 and saves its session (the
# renegotiated one); the renegotiation's handshake travels encrypted, and the key log has a
# CLIENT_RANDOM line for each handshake. Last, a new connection resumes the session the
# first renegotiation established (its ticket).
record_tls12_renegotiation() {
    start_capture tls12-renegotiation.pcap "tcp port 14422"
    : >tls12-renegotiation.client.log
    rm -f keys.log
    (sleep 12 | openssl s_server -accept 127.0.0.1:14422 -cert cert.pem -key key.pem -tls1_2 -client_renegotiation \
        >server.log 2>&1) &
    sleep 0.7
    local suite
    for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305; do
        echo "### connection $(date +%s.%N) openssl s_client -tls1_2 -cipher $suite -keylogfile -sess_out (R: renegotiate)" \
            >>tls12-renegotiation.client.log
        { sleep 0.5; printf 'R\n'; sleep 1; printf 'hello\n'; sleep 0.5; } \
            | timeout 5 openssl s_client -connect 127.0.0.1:14422 -tls1_2 -cipher "$suite" -keylogfile keys.log \
                -sess_out "reneg-$suite.pem" >>tls12-renegotiation.client.log 2>&1 || true
        sleep 0.3
    done
    # The session the first connection's renegotiation established, resumed by a new connection.
    client tls12-renegotiation.client.log -connect 127.0.0.1:14422 -tls1_2 -keylogfile keys.log \
        -sess_in reneg-ECDHE-RSA-AES128-GCM-SHA256.pem
    pkill -f "s_server -accept 127.0.0.1:14422" 2>/dev/null || true
    stop_capture
    cp keys.log tls12-renegotiation.keys
    cp tls12-renegotiation.keys "$here/"
    finish tls12-renegotiation
}

all="tls12_session_id tls12_ticket tls13_psk refused hrr cooked_any ipv6 pcapng two_interfaces external_psk legacy_versions nginx_curl nginx_timeout moved_session no_resumption lb_roundrobin lb_sticky lb_shared_tickets lb_tls13 lb_reconnect lb_alternating probe_intervals vxlan dtls starttls quic alpn_bytes proxy_tunnels tcp_fastopen tls13_keylog lb_tls13_keylog nginx_keylog quic_keylog tls12_renegotiation"
wanted=${*:-$all}
for scenario in $wanted; do
    "record_${scenario//-/_}"
done
