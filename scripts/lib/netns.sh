# A network-namespace path for the server (issue 12), sourced by run-bench.sh: the server runs
# in its own namespace, joined to this one by a veth pair, so client and server talk over a
# (virtual) link instead of loopback; the link can be shaped with tbf (bandwidth) and, where
# the kernel has sch_netem, netem (delay). Everything is created per run under unique names
# and removed by netns_destroy, which the caller runs from its EXIT trap. Functions:
#
#   netns_probe            ip present and CAP_NET_ADMIN held; else returns 1 with
#                          netns_unavailable set ("why")
#   netns_create           namespace $netns_name, veth $netns_host_if (here) and $netns_ns_if
#                          (in it), addresses $netns_host_ip/30 and $netns_ns_ip/30
#   netns_netem_probe      0 when the kernel takes a netem qdisc; else sets netem_unavailable
#   netns_shape KIND       KIND "" (none), "tbf RATE" or "netem DELAY": on both ends, so both
#                          directions go through it
#   netns_destroy          remove the namespace (which takes the veth pair with it)
#   netns_exec             the command prefix that runs a program inside the namespace

netns_name="" netns_host_if="" netns_ns_if="" netns_host_ip="" netns_ns_ip=""
netns_unavailable="" netem_unavailable=""

# CAP_NET_ADMIN is bit 12 of the effective capability set.
netns_have_net_admin() {
    local caps
    caps=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
    [ -n "$caps" ] && (( (16#$caps >> 12) & 1 ))
}

netns_probe() {
    if ! command -v ip > /dev/null; then
        netns_unavailable="no ip command (apt-get install iproute2)"
        return 1
    fi
    if ! netns_have_net_admin; then
        netns_unavailable="no CAP_NET_ADMIN: network namespaces and veth links need root (or CAP_NET_ADMIN)"
        return 1
    fi
    return 0
}

# Names and a private /30 from this shell's PID, so two runs at once do not collide: the
# namespace "wsport-PID", interfaces "wspPIDh"/"wspPIDn" (at most 15 characters), addresses in
# 10.200.0.0/16, which nothing else on these hosts uses.
netns_names() {
    local pid=$$
    netns_name="wsport-$pid"
    netns_host_if="wsp${pid}h"
    netns_ns_if="wsp${pid}n"
    local block=$(( (pid % 16384) * 4 ))
    netns_host_ip="10.200.$((block / 256)).$((block % 256 + 1))"
    netns_ns_ip="10.200.$((block / 256)).$((block % 256 + 2))"
}

netns_create() {
    netns_names
    ip netns add "$netns_name" &&
        ip link add "$netns_host_if" type veth peer name "$netns_ns_if" &&
        ip link set "$netns_ns_if" netns "$netns_name" &&
        ip addr add "$netns_host_ip/30" dev "$netns_host_if" &&
        ip link set "$netns_host_if" up &&
        ip netns exec "$netns_name" ip addr add "$netns_ns_ip/30" dev "$netns_ns_if" &&
        ip netns exec "$netns_name" ip link set "$netns_ns_if" up &&
        ip netns exec "$netns_name" ip link set lo up
}

netns_exec() { echo "ip netns exec $netns_name "; }

netns_netem_probe() {
    local err
    if ! command -v tc > /dev/null; then
        netem_unavailable="no tc command (apt-get install iproute2)"
        return 1
    fi
    if err=$(tc qdisc add dev "$netns_host_if" root netem delay 1ms 2>&1); then
        tc qdisc del dev "$netns_host_if" root 2> /dev/null || true
        return 0
    fi
    case "$err" in
        *"kind is unknown"*) netem_unavailable="kernel without sch_netem" ;;
        *) netem_unavailable="tc qdisc netem failed: $err" ;;
    esac
    return 1
}

# The qdisc arguments of a shaping KIND: "tbf 100mbit" -> a token bucket at that rate with a
# 128 KiB burst and at most 50 ms of queue; "netem 1ms" -> a fixed delay.
netns_qdisc() {
    local kind=${1%% *} arg=${1#* }
    case "$kind" in
        tbf) echo "tbf rate $arg burst 128kb latency 50ms" ;;
        netem) echo "netem delay $arg" ;;
    esac
}

netns_shape() {
    local qdisc
    tc qdisc del dev "$netns_host_if" root 2> /dev/null || true
    ip netns exec "$netns_name" tc qdisc del dev "$netns_ns_if" root 2> /dev/null || true
    [ -n "$1" ] || return 0
    qdisc=$(netns_qdisc "$1")
    # shellcheck disable=SC2086
    tc qdisc add dev "$netns_host_if" root $qdisc &&
        ip netns exec "$netns_name" tc qdisc add dev "$netns_ns_if" root $qdisc
}

netns_destroy() {
    [ -n "$netns_name" ] || return 0
    ip netns del "$netns_name" 2> /dev/null || true
    # Deleting the namespace deletes the veth pair; if it was never moved there, remove it here.
    ip link del "$netns_host_if" 2> /dev/null || true
    netns_name=""
}
