# Shared by the benchmark scripts (source it): the two network namespaces the recorders send
# traffic in, and the timing helpers of the runners.

# namespaces SERVER CLIENT SUBNET : two namespaces joined by a veth pair (veth-srv SUBNET.1,
# veth-cli SUBNET.2), MTU 1500, offloads off so packets are the size of a real link's.
# Removes them on exit, with the background jobs whose pids are in capture_pid and nginx_pid.
namespaces() {
    server=$1 client=$2
    local subnet=$3
    cleanup() {
        kill "${capture_pid:-}" "${nginx_pid:-}" 2>/dev/null || true
        wait 2>/dev/null || true
        ip netns del "$server" 2>/dev/null || true
        ip netns del "$client" 2>/dev/null || true
    }
    trap cleanup EXIT
    cleanup
    # Without ethtool the offloads stay on and the capture holds 64 KiB segments, not MTU-sized
    # packets: a different benchmark.
    command -v ethtool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ethtool >/dev/null
    ip netns add "$server"
    ip netns add "$client"
    ip link add veth-srv netns "$server" type veth peer name veth-cli netns "$client"
    ip -n "$server" addr add "$subnet.1/24" dev veth-srv
    ip -n "$client" addr add "$subnet.2/24" dev veth-cli
    local ns dev
    for ns in "$server" "$client"; do
        ip -n "$ns" link set lo up
        dev=$([ "$ns" = "$server" ] && echo veth-srv || echo veth-cli)
        ip -n "$ns" link set "$dev" up mtu 1500
        ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null
    done
}

# measure NAME COMMAND... : appends "wall cpu maxrss_kib" (CPU = user + system, to the
# microsecond: bench/cputime.c, built here on first use) to $work/NAME.times
measure() {
    local name=$1
    shift
    [ "$work/cputime" -nt bench/cputime.c ] || cc -O2 -o "$work/cputime" bench/cputime.c
    "$work/cputime" "$work/time.out" "$@" >/dev/null 2>"$work/$name.stderr" || true
    awk '{printf "%.6f %.6f %s\n", $1, $2, $3}' "$work/time.out" >>"$work/$name.times"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
