# shellcheck shell=bash
# The `broadcast` scenario of scripts/run-bench.sh (sourced by it): every server started with
# --broadcast (each message a connection sends goes to every other connection), one publisher
# and --broadcast-subscribers subscribers (default 1000,10000), 64 B (the first --sizes),
# measured by `wsport-bench broadcast`: deliveries per second, server CPU per delivery,
# publish-to-delivery latency, and a check that every subscriber got every message in order.
#
# The load is a fixed number of deliveries per second, --broadcast-deliveries (default
# 100000, which a 2-core host sustains with the server on one core), the same for every
# subscriber count: the publish rate is deliveries ÷ subscribers (100/s to 1,000, 10/s to
# 10,000), so the cells compare what a delivery costs as the fan-out widens, at equal work.
# Subscribers open on a ramp (--scale-ramp-ws / --scale-ramp-wss per second, as `scale`) when
# there are more than that, so that the server's accept queue is not what is measured.

broadcast_subscribers="1000,10000"
broadcast_deliveries=100000

# Whether run-bench's argument $1 (with value $2) is one of ours; sets it.
broadcast_option() {
    case "$1" in
        --broadcast-subscribers) broadcast_subscribers="$2" ;;
        --broadcast-deliveries) broadcast_deliveries="$2" ;;
        *) return 1 ;;
    esac
}

# The cells of the scenario for scheme $1 under engine $2, payload $3: "broadcast SCHEME SIZE
# SUBSCRIBERS ENGINE".
broadcast_cells() {
    local s
    IFS=, read -ra _broadcast_list <<< "$broadcast_subscribers"
    for s in "${_broadcast_list[@]}"; do echo "broadcast $1 $3 $s $2"; done
}

# Messages published per second that give --broadcast-deliveries deliveries per second to $1
# subscribers (at least 1; bench-client/src/broadcast.rs, publish_rate_for, does the same).
broadcast_rate() {
    local r=$(( broadcast_deliveries / $1 ))
    [ "$r" -ge 1 ] || r=1
    echo "$r"
}

# wsport-bench's arguments for a broadcast cell: payload $1, $2 subscribers, scheme $3,
# window $4 after warm-up $5.
broadcast_args() {
    local size=$1 subs=$2 scheme=$3 ramp=${scale_ramp_ws:-5000}
    [ "$scheme" = wss ] && ramp=${scale_ramp_wss:-2000}
    echo -n "broadcast --publishers 1 --subscribers $subs --rate $(broadcast_rate "$subs")"
    echo -n " --size $size --duration $4 --warmup $5"
    if [ "$subs" -gt "$ramp" ]; then echo -n " --ramp $ramp --connect-timeout 30s"; fi
    echo
}

# The result README's line about this scenario (empty when it is not in the run): $1 is the
# scenario list.
broadcast_readme() {
    case ",$1," in
        *,broadcast,*) echo "- broadcast: servers with --broadcast, 1 publisher × $broadcast_subscribers subscribers at $broadcast_deliveries deliveries/s in total (publish rate = that ÷ subscribers)" ;;
    esac
}
