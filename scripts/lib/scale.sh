# shellcheck shell=bash
# The `scale` scenario of scripts/run-bench.sh (sourced by it), for every server:
# - memory: idle connections held at --scale-conns (default 1000,5000,10000) and at the host's
#   maximum (`wsport-bench hold --max`: the most connections both the server's and the client's
#   limits allow, the limit named, a ping a second on every connection, 0 errors expected), ws
#   and wss; the summary fits memory per connection (user space and kernel apart) as a slope
#   over the counts and extrapolates it to 100,000 (bench-client/src/scale.rs);
# - cost: open loop at --rate msgs/s in total over 1000, 5000 and the maximum connections,
#   on the first scheme only: server CPU per message and p99 as the connections grow.
#
# Connections open on a ramp so that the server's accept queue (somaxconn) is not what is
# measured: --scale-ramp-ws per second for ws (default 5000), --scale-ramp-wss for wss (default
# 2000: each wss connection is a TLS handshake on the server's cores).

scale_conns="1000,5000,10000"
scale_rate_conns="1000,5000"
scale_ramp_ws=5000
scale_ramp_wss=2000

# Whether run-bench's argument $1 (with value $2) is one of ours; sets it.
scale_option() {
    case "$1" in
        --scale-conns) scale_conns="$2" ;;
        --scale-rate-conns) scale_rate_conns="$2" ;;
        --scale-ramp-ws) scale_ramp_ws="$2" ;;
        --scale-ramp-wss) scale_ramp_wss="$2" ;;
        *) return 1 ;;
    esac
}

# The cells of the scenario for scheme $1 under engine $2, payload $3; $4 is set for the first
# scheme (the cost cells run once).
scale_cells() {
    local c
    IFS=, read -ra _scale_list <<< "$scale_conns"
    for c in "${_scale_list[@]}" max; do echo "hold $1 - $c $2"; done
    [ -n "$4" ] || return 0
    IFS=, read -ra _scale_list <<< "$scale_rate_conns"
    for c in "${_scale_list[@]}" max; do echo "rate $1 $3 $c $2"; done
}

# wsport-bench's count arguments for $1 connections ("max": the host's most) over scheme $2:
# small counts open at once, as the plain cells do; large ones on the ramp.
scale_count_args() {
    local c=$1 scheme=$2 ramp=$scale_ramp_ws
    [ "$scheme" = wss ] && ramp=$scale_ramp_wss
    if [ "$c" = max ]; then echo -n "--max"; else echo -n "-c $c"; fi
    if [ "$c" = max ] || [ "$c" -gt "$ramp" ]; then echo -n " --ramp $ramp --connect-timeout 30s"; fi
    echo
}
