#!/usr/bin/env bash
# The matrix runner: every server × scenario × ws/wss × payload × connections, measured with
# wsport-bench, server and client pinned to disjoint cores, runs interleaved across servers and
# repeated; then a summary (medians, ranges, server CPU per message against tokio) and plots.
#
#   scripts/run-bench.sh                 # quick default (~9 min on 2 cores, plus the build)
#   scripts/run-bench.sh --full          # 64 B / 1 KiB / 16 KiB × 100 / 1000 connections, 3 repeats
#   scripts/run-bench.sh --servers tokio,monoio-uring --scenarios echo --sizes 64 --conns 100 --repeat 5
#
# Scenarios (--scenarios, default echo, rate, connect, hold and raw):
#   echo     closed loop: each connection sends its next message when the echo returns; what the
#            pair can do (msgs/s) and what a message costs the server (µs CPU per message)
#   rate     open loop at --rate msgs/s, the same for every server: server CPU% and
#            coordinated-omission-corrected latency at equal load
#   connect  handshake storm (--storm-conns at once): TCP, TLS, upgrade and total latency
#   hold     --hold-conns idle connections with a ping a second each: server memory per connection
#   raw      each runtime's floor: every wsport server with
#            --raw-tcp (the same loop, no WebSocket session) under `wsport-bench echo --raw`, ws
#            ports, per client engine; the summary sets floor + WebSocket layer = total per server
#   scale    (not in the default) idle connections at --scale-conns (1000,5000,10000) and at the
#            host's maximum (hold --max, the limit named): memory per connection as a fitted
#            slope, user space and kernel, extrapolated to 100,000; and open loop at --rate over
#            --scale-rate-conns (1000,5000) and the maximum: server CPU per message and p99 as the
#            connections grow (scripts/lib/scale.sh)
#   sweep    (not in the default) the load axis: open loop from --sweep-from msgs/s (5000),
#            doubling, every server at each rate before the next, until the server passes 95%
#            CPU, misses the rate, its client sends late at two rates in a row, or --sweep-max
#            (640000); the summary draws server CPU per message and p99 against the rate and
#            names where the cheaper server changes (from --repeat 2 up: one run has no range)
#   abuse    (in --full, not in the quick default) the rate load without and with hostile
#            clients beside it (wsport-abuse; scripts/lib/abuse.sh): legitimate throughput and
#            p99 with/without, abusive connections by outcome (on wss over TLS, with the TLS
#            kinds), server RSS against its bound;
#            --abuse-slowloris N (1000), --abuse-rate N conns/s (200), --abuse-kinds LIST
#            (wsport-abuse's kinds, default all: to see which one costs what), --abuse-cores LIST (the
#            client's; a core of its own keeps the abuse off the legitimate client),
#            --abuse-idle / --no-abuse-idle (wsport-abuse in the SCHED_IDLE class, so it gets
#            only the CPU the client leaves; by default when it shares the client's cores);
#            in DIR/abuse/
#   broadcast (in --full, not in the quick default) fan-out: every server with --broadcast, one
#            publisher × --broadcast-subscribers subscribers (1000,10000), the first --sizes
#            (64 B), at --broadcast-deliveries deliveries per second in total (100000, which a
#            2-core host sustains: the publish rate is that ÷ subscribers, 100/s and 10/s), so
#            every cell does the same work: deliveries/s, server CPU per delivery, publish-to-
#            delivery latency, and every subscriber checked to get every message in order
#            (scripts/lib/broadcast.sh)
#   heartbeat (not in the default) idle connections held through nginx with a short
#            proxy_read_timeout (--proxy-read-timeout, 10s) for that long plus 5 s, without
#            pings and with a ping every half the timeout: how many the proxy cut, and when
#
# Deployment paths (--topology, default loopback; scripts/lib/topology.sh): "proxy" adds wss
# through nginx (installed from the distribution when missing) to a ws backend beside the
# direct ws and wss cells; "veth" runs the server in its own network namespace behind a veth
# pair; "tbf-1gbit", "tbf-100mbit" shape that link with tbf, "netem-1ms" delays it (where the
# kernel has sch_netem). Echo and rate cells run on every path listed; the summary puts them
# side by side. --proxy-cores LIST pins the nginx worker (default: the server's cores).
#
# Client engines (--client-engines, default io-uring,epoll): the closed-loop echo cells run
# under each of wsport-bench's engines, because a server's cost per message follows how many
# messages arrive per wake-up, which the client decides; the summary then says, for every pair
# of servers, whether their ranking is robust (the same under every engine) or flips. The
# other scenarios use the first engine. An engine the host refuses (io_uring) is skipped with
# the reason.
#
# Reference servers (fastwebsockets in the default, tokio-tungstenite too with --full; not in
# a paired run): echo servers built from those crates (servers/reference), run as calibration
# rows in the ws echo and connect cells only; the summary gives every server's cost as a ratio
# to fastwebsockets too.
# monoio-uring-dt (not in any default): monoio's io_uring driver on a ring set up with
# SINGLE_ISSUER | DEFER_TASKRUN, the setting wsport-uring uses and monoio does not ship;
# tokio-uring-coop: tokio-uring on a ring with COOP_TASKRUN (DEFER_TASKRUN hangs it).
#
# Ports (--ports): "standard" (default) serves ws on 80 and 8080 and wss on 443 and 8443, both
# ports of a scheme in one server process, the client spreading connections over them; where a
# port cannot be bound (privileged, or another process serves it) the run says why and falls
# back to kernel-chosen high ports. "any": kernel-chosen high ports from the start. A list
# ("9001,9002"): those ports, for either scheme.
#
# Other options: --schemes ws,wss  --sizes 64,1024  --conns 100,1000  --duration 5s  --warmup 1s
#   --repeat N  --rate N  --storm-conns N  --hold-conns N  --out DIR  --server-cores LIST
#   --client-cores LIST  --client-engines LIST  --sweep-from N  --sweep-max N
#   --broadcast-subscribers LIST  --broadcast-deliveries N
#   --server-args "..." (added to every server, e.g. the hidden
#   --debug-spin-per-message of the regression-gate proof)  --no-build (use target/release as
#   it is: a caller that runs many, like scripts/gate-proof.sh, builds once).
#
# Paired base/head (the regression gate): --base-bin DIR --head-bin DIR (each a directory with
# the release binaries of one build; --head-bin defaults to target/release) runs both builds'
# servers in one run, measured by this checkout's wsport-bench: within each repeat every cell
# runs on base and head back to back, in a random order per pair, so the host's drift hits
# both sides of a pair alike. More sides: --side NAME=DIR (repeatable); --side-args NAME=ARGS
# adds server flags to one side (the gate proof's injected slowdown). Each run's label is
# SERVER@SIDE and its runs.jsonl line carries "gate": {"side", "pair", "order", "server"}, which
# `wsport-bench compare --paired DIR` judges pair by pair. Short repeats, many of them:
# --repeat 10 --duration 2s --warmup 500ms.
#
# The output directory (default target/bench/<date>-<host>-<time>; pass --out
# results/<date>-<host> to keep one) ends with runs.jsonl (every run's wsport-bench JSON, a
# line each), an HdrHistogram log per run, summary.md, the plots and a README.md with the host
# and the exact commands; a run that failed also keeps its client output (.txt) and its
# server's logs. Exits 1 when a run failed, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/abuse.sh
source scripts/lib/abuse.sh
. scripts/lib/nginx.sh
. scripts/lib/servers.sh
. scripts/lib/netns.sh
. scripts/lib/topology.sh
# shellcheck source=scripts/lib/scale.sh
source scripts/lib/scale.sh
# shellcheck source=scripts/lib/broadcast.sh
source scripts/lib/broadcast.sh

servers="tokio,tokio-uring,monoio-uring,monoio-epoll,uring"
scenarios="echo,rate,connect,hold"
schemes="ws,wss"
ports="standard"
sizes="64"
conns="100"
duration="3s"
warmup="1s"
repeat=2
rate=20000
storm_conns=16
hold_conns=1000
client_engines="io-uring,epoll"
sweep_from=5000
sweep_max=640000
out=""
server_cores=""
client_cores=""
server_args=""
topologies="loopback"
sides=()
build=1
declare -A side_bin=() side_extra=()
command_line="scripts/run-bench.sh $*"
full="" servers_given="" scenarios_given=""

# The comment block at the top of this file is the help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ;;
        --full) sizes="64,1024,16384"; conns="100,1000"; duration="10s"; warmup="2s"; repeat=3
                hold_conns=10000; full=1 ;;
        --servers) servers="$2"; servers_given=1; shift ;;
        --scenarios) scenarios="$2"; scenarios_given=1; shift ;;
        --schemes) schemes="$2"; shift ;;
        --ports) ports="$2"; shift ;;
        --sizes) sizes="$2"; shift ;;
        --conns) conns="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --repeat) repeat="$2"; shift ;;
        --rate) rate="$2"; shift ;;
        --storm-conns) storm_conns="$2"; shift ;;
        --hold-conns) hold_conns="$2"; shift ;;
        --out) out="$2"; shift ;;
        --server-cores) server_cores="$2"; shift ;;
        --client-cores) client_cores="$2"; shift ;;
        --client-engines) client_engines="$2"; shift ;;
        --sweep-from) sweep_from="$2"; shift ;;
        --sweep-max) sweep_max="$2"; shift ;;
        --server-args) server_args="$2"; shift ;;
        --abuse-slowloris) abuse_slowloris="$2"; shift ;;
        --abuse-rate) abuse_rate="$2"; shift ;;
        --abuse-kinds) abuse_kinds="$2"; shift ;;
        --abuse-cores) abuse_cores="$2"; shift ;;
        --abuse-idle) abuse_idle=1 ;;
        --no-abuse-idle) abuse_idle=0 ;;
        --topology) topologies="$2"; shift ;;
        --proxy-read-timeout) proxy_read_timeout="$2"; shift ;;
        --proxy-cores) proxy_cores="$2"; shift ;;
        --no-build) build=0 ;;
        --base-bin) sides+=(base); side_bin[base]="$2"; shift ;;
        --head-bin) sides+=(head); side_bin[head]="$2"; shift ;;
        --side) sides+=("${2%%=*}"); side_bin[${2%%=*}]="${2#*=}"; shift ;;
        --side-args) side_extra[${2%%=*}]="${2#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        --broadcast-*) broadcast_option "$1" "${2:-}" || { echo "run-bench.sh: unknown argument '$1'" >&2; exit 2; }; shift ;;
        --scale-*) scale_option "$1" "${2:-}" || { echo "run-bench.sh: unknown argument '$1'" >&2; exit 2; }; shift ;;
        *) echo "run-bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Unless the lists were given, every run calibrates: the fastwebsockets reference (and, with
# --full, tokio-tungstenite) and each runtime's raw floor. A paired gate run does not: it
# compares two builds of ours.
if [ "${#sides[@]}" -eq 0 ]; then
    [ -n "$servers_given" ] || servers+=",fastwebsockets"
    [ -n "$servers_given" ] || [ -z "$full" ] || servers+=",tokio-tungstenite"
    [ -n "$scenarios_given" ] || scenarios+=",raw"
    [ -n "$scenarios_given" ] || [ -z "$full" ] || scenarios+=",abuse"
    [ -n "$scenarios_given" ] || [ -z "$full" ] || scenarios+=",broadcast"
fi
# A paired run compares base with head: --base-bin alone means head is this checkout's build.
if [ "${sides[*]}" = base ]; then
    sides+=(head); side_bin[head]=target/release
fi
for side in "${sides[@]}"; do
    case "$side" in
        ""|*[!a-z0-9_]*) echo "run-bench.sh: side names are lower-case letters, digits and _ ('$side')" >&2; exit 2 ;;
    esac
done

# Disjoint cores: the server gets the first half of the CPUs this process may use, the client
# the rest (on 2 cores: server CPU 0, client CPU 1). The client gets the larger half.
mapfile -t allowed < <(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status | tr ',' '\n' |
    awk -F- '{ if (NF == 2) { for (i = $1; i <= $2; i++) print i } else print $1 }')
if [ "${#allowed[@]}" -lt 2 ]; then
    echo "run-bench.sh: needs at least 2 CPUs to pin server and client apart (have ${#allowed[@]})" >&2
    exit 2
fi
half=$(( ${#allowed[@]} / 2 ))
[ -n "$server_cores" ] || server_cores=$(IFS=,; echo "${allowed[*]:0:$half}")
[ -n "$client_cores" ] || client_cores=$(IFS=,; echo "${allowed[*]:$half}")
server_threads=$(echo "$server_cores" | tr ',' '\n' | grep -c .)
[ -n "$proxy_cores" ] || proxy_cores=$server_cores

# config name -> server command (without listeners), from $server_bin (a paired run's side)
bin=target/release
server_bin=$bin
server_cmd() {
    wsport_server_cmd "$1" "$server_bin" || exit 2
}
is_reference() { case "$1" in fastwebsockets|tokio-tungstenite) return 0 ;; *) return 1 ;; esac; }
# Whether server $1 takes part in cell "$2": a reference serves ws echo and connect only (it
# has no wss, no raw floor, and calibrates per-message and per-upgrade cost).
serves_cell() {
    local sc scheme
    read -r sc scheme _ <<< "$2"
    ! is_reference "$1" || { [ "$scheme" = ws ] && { [ "$sc" = echo ] || [ "$sc" = connect ]; }; }
}
IFS=, read -ra server_list <<< "$servers"
for s in "${server_list[@]}"; do server_cmd "$s" > /dev/null; done
IFS=, read -ra scenario_list <<< "$scenarios"
for sc in "${scenario_list[@]}"; do
    case "$sc" in
        echo|rate|connect|hold|sweep|raw|abuse|heartbeat|scale|broadcast) ;;
        *) echo "run-bench.sh: unknown scenario '$sc' (echo, rate, connect, hold, sweep, raw, abuse, heartbeat, scale, broadcast)" >&2; exit 2 ;;
    esac
done
IFS=, read -ra scheme_list <<< "$schemes"
for scheme in "${scheme_list[@]}"; do
    case "$scheme" in
        ws|wss) ;;
        *) echo "run-bench.sh: unknown scheme '$scheme' (ws, wss)" >&2; exit 2 ;;
    esac
done
IFS=, read -ra engine_list <<< "$client_engines"
for e in "${engine_list[@]}"; do
    case "$e" in
        io-uring|epoll) ;;
        *) echo "run-bench.sh: unknown client engine '$e' (io-uring, epoll)" >&2; exit 2 ;;
    esac
done
IFS=, read -ra topology_list <<< "$topologies"
topology_check "${topology_list[@]}"
IFS=, read -ra size_list <<< "$sizes"
IFS=, read -ra conn_list <<< "$conns"
case "$ports" in
    standard|any) ;;
    *[!0-9,]*|"") echo "run-bench.sh: --ports takes standard, any or a list of ports" >&2; exit 2 ;;
esac

# The ports a scheme is served on, before any fallback.
declare -A fallback=()
ports_for() {
    if [ -n "${fallback[$1]:-}" ] || [ "$ports" = any ]; then
        echo "0 0"
    elif [ "$ports" = standard ]; then
        if [ "$1" = ws ]; then echo "80 8080"; else echo "443 8443"; fi
    else
        echo "$ports" | tr ',' ' '
    fi
}

# The cells of one repeat, "scenario scheme size conns engine", in the order they run; within
# a repeat every server runs a cell before the next cell starts, so drift hits all servers
# alike, and `wsport-bench report` pairs the servers' runs of one repeat (a round).
first_engine=${engine_list[0]}
cells=()
sweep_schemes=""
for sc in "${scenario_list[@]}"; do
    for scheme in "${scheme_list[@]}"; do
        case "$sc" in
            echo) for size in "${size_list[@]}"; do
                      for c in "${conn_list[@]}"; do
                          for e in "${engine_list[@]}"; do cells+=("echo $scheme $size $c $e"); done
                      done
                  done ;;
            rate) for size in "${size_list[@]}"; do
                      cells+=("rate $scheme $size ${conn_list[0]} $first_engine")
                  done ;;
            connect) cells+=("connect $scheme - $storm_conns $first_engine") ;;
            # Plain TCP: once, on the ws ports, whatever the schemes.
            raw) [ "$scheme" = "${scheme_list[0]}" ] &&
                     for size in "${size_list[@]}"; do
                         for c in "${conn_list[@]}"; do
                             for e in "${engine_list[@]}"; do cells+=("raw ws $size $c $e"); done
                         done
                     done ;;
            hold) cells+=("hold $scheme - $hold_conns $first_engine") ;;
            scale) first_scheme=""; [ "$scheme" = "${scheme_list[0]}" ] && first_scheme=1
                   mapfile -t -O "${#cells[@]}" cells < <(scale_cells "$scheme" "$first_engine" "${size_list[0]}" "$first_scheme") ;;
            broadcast) mapfile -t -O "${#cells[@]}" cells < <(broadcast_cells "$scheme" "$first_engine" "${size_list[0]}") ;;
            sweep) sweep_schemes+=" $scheme" ;;
            abuse) ;; # its own loop: scripts/lib/abuse.sh, after the matrix
            # Through nginx's TLS: once, whatever the schemes; size is the ping interval.
            heartbeat) [ "$scheme" = "${scheme_list[0]}" ] &&
                           for ping in off "$(half_of)"; do
                               cells+=("heartbeat wss $ping ${conn_list[0]} $first_engine")
                           done ;;
        esac
    done
done
# Each cell on every path that serves it ("scenario scheme size conns engine topology");
# the heartbeat always goes through nginx.
paths=("${topology_list[@]}")
if [[ " ${scenario_list[*]} " == *" heartbeat "* ]] && [[ " ${paths[*]} " != *" proxy "* ]]; then
    paths+=(proxy)
fi
path_cells=()
for cell in "${cells[@]}"; do
    for t in "${paths[@]}"; do
        if topology_serves "$t" "$cell"; then path_cells+=("$cell $t"); fi
    done
done
cells=("${path_cells[@]}")

host=$(hostname)
[ -n "$out" ] || out="target/bench/$(date +%F)-$host-$(date +%H%M%S)"
mkdir -p "$out"

if [ "$build" = 1 ]; then
    echo "== building release binaries"
    packages=(-p wsport-tokio -p wsport-tokio-uring -p wsport-monoio -p wsport-uring -p wsport-bench -p wsport-abuse)
    for s in "${server_list[@]}"; do
        if is_reference "$s"; then packages+=(-p wsport-reference); break; fi
    done
    cargo build --release "${packages[@]}"
fi

server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2> /dev/null; then
        kill -TERM "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
    fi
    server_pid=""
}
trap 'stop_decoy; stop_server; topology_cleanup' EXIT
trap 'stop_decoy; stop_server; topology_cleanup; exit 130' INT TERM
topology_init "${paths[@]}"

cat > "$out/README.md" <<EOF
# wsport benchmark run, $(date -u +%FT%TZ)

- host: $host, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) CPUs online
- kernel: $(uname -r); $(rustc -V 2> /dev/null || echo "rustc unknown")
- commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet HEAD -- . ':(exclude)results' 2> /dev/null || echo " (dirty)")
- governor: $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2> /dev/null || echo "n/a (no cpufreq)")
- pinning: server threads on CPU(s) $server_cores (--threads $server_threads), client on CPU(s) $client_cores
- client engines: $client_engines (echo cells run under each; the other scenarios under $first_engine)
- matrix: servers $servers × scenarios $scenarios × $schemes × sizes $sizes × connections $conns
  (rate: $rate msgs/s at ${conn_list[0]} connections; connect: $storm_conns at once; hold: $hold_conns
  connections); $duration after $warmup warm-up; $repeat repeats, interleaved; ports: $ports
- command: \`$command_line\`
$(broadcast_readme "$scenarios")
$(for side in "${sides[@]}"; do echo "- side $side: servers from \`${side_bin[$side]}\`${side_extra[$side]:+, with \`${side_extra[$side]}\`}"; done)
$(topology_readme "${paths[@]}")

\`runs.jsonl\` holds every run, a line each (schema wsport-bench/1, with the exact client flags
and host metadata), each \`*.hlog\` a run's HdrHistogram interval log; a failed run also keeps
its client output (\`*.txt\`) and its server's logs (\`*.server.out\`, \`*.server.err\`);
\`summary.md\` and the plots are \`wsport-bench report\` of this directory.

## Ports and servers
EOF

# Start server $1 on the ports of scheme $2 with its logs named $3 and extra flags $4; on
# success sets server_pid and urls. Falls back to kernel-chosen ports, once and for the rest of the run, when the
# chosen ones cannot be bound, and says why.
urls=()
start_server() {
    local s=$1 scheme=$2 name=$3 extra=${4:-} listen="" p
    for p in ${topo_ports:-$(ports_for "$scheme")}; do listen+=" --listen $scheme://$topo_host:$p"; done
    local cmd tls=""
    [ "$scheme" = wss ] && tls=$tls_args
    cmd="$topo_wrap$(server_cmd "$s")$listen$tls --cpus $server_cores --threads $server_threads $server_args$extra $side_args"
    # shellcheck disable=SC2086
    $cmd > "$out/$name.server.out" 2> "$out/$name.server.err" &
    server_pid=$!
    local want n
    want=$(echo ${topo_ports:-$(ports_for "$scheme")} | wc -w)
    for _ in $(seq 1 100); do
        n=$(grep -c "^listening $scheme://" "$out/$name.server.out" 2> /dev/null || true)
        [ "$n" -ge "$want" ] && break
        kill -0 "$server_pid" 2> /dev/null || break
        sleep 0.1
    done
    if [ "${n:-0}" -lt "$want" ]; then
        local reason
        reason=$(grep -m1 . "$out/$name.server.err" 2> /dev/null || echo "did not start")
        stop_server
        # Only a port problem falls back; anything else (io_uring refused, say) makes the
        # server unavailable for the rest of the run.
        if [ -z "${fallback[$scheme]:-}" ] && [ "$ports" != any ] &&
            echo "$reason" | grep -qiE 'port [0-9]+|address'; then
            fallback[$scheme]=$reason
            echo "   $scheme: ports $(ports_for_asked "$scheme") not usable ($reason); using kernel-chosen high ports"
            echo "- $scheme: ports $(ports_for_asked "$scheme") not usable: $reason; kernel-chosen high ports instead" >> "$out/README.md"
            start_server "$@"
            return
        fi
        unavailable[$s]=$reason
        return 1
    fi
    mapfile -t urls < <(grep -o "^listening $scheme://$topo_host:[0-9]*" "$out/$name.server.out" | awk '{print $2 "/"}')
    if [ -z "${announced[$label $scheme$extra]:-}" ]; then
        announced[$label $scheme$extra]=1
        echo "- $label $scheme: \`$cmd\`" >> "$out/README.md"
    fi
}
ports_for_asked() {
    if [ "$ports" = standard ]; then
        if [ "$1" = ws ]; then echo "80, 8080"; else echo "443, 8443"; fi
    else
        echo "$ports"
    fi
}

# The wsport-bench arguments of a cell (after the URLs).
cell_args() {
    local sc=$1 size=$2 c=$3 cell_rate=$4
    case "$sc" in
        echo) echo "echo -c $c --size $size --duration $duration --warmup $warmup" ;;
        raw) echo "echo --raw -c $c --size $size --duration $duration --warmup $warmup" ;;
        rate) echo "rate --rate $cell_rate $(scale_count_args "$c" "$scheme") --size $size --duration $duration --warmup $warmup" ;;
        connect) echo "connect -c $c --duration $duration --warmup $warmup" ;;
        hold) echo "hold $(scale_count_args "$c" "$scheme") --ping-interval 1s --duration $duration --warmup $warmup" ;;
        heartbeat) echo "hold -c $c --ping-interval $size --duration $(heartbeat_hold) --warmup 1s" ;;
        broadcast) broadcast_args "$size" "$c" "$scheme" "$duration" "$warmup" ;;
    esac
}

n=0
declare -A unavailable=()
declare -A announced=()
declare -A engine_unavailable=()
failed=0
jsons=()
# What the last run_cell measured, for the sweep to decide whether to go on: the server's CPU
# percent, the msgs/s achieved ("" when it failed) and whether the client sent late (1 or "").
last_cpu="" last_achieved="" last_late=""

# Run server $1 in cell "$2" (scenario scheme size conns engine), repeat $3, open-loop rate $4
# (rate and sweep cells); prints one line.
run_cell() {
    local s=$1 cell=$2 r=$3 cell_rate=$4 sc scheme size c engine topo name ok reason
    read -r sc scheme size c engine topo <<< "$cell"
    topo=${topo:-loopback}
    local label=$label$(topology_suffix "$topo") serve_scheme=$scheme
    # Behind nginx the server speaks plain ws.
    [ "$topo" = proxy ] && serve_scheme=ws
    n=$((n + 1))
    # 64 -> 64B; 16KiB stays 16KiB.
    local bytes=$size
    [[ "$bytes" =~ ^[0-9]+$ ]] && bytes+=B
    case "$sc" in
        heartbeat) name="hold-${c}c-ping${size}-${label}-${scheme}-r$r" ;;
        echo) name="echo-${bytes}-${c}c-${label}-${scheme}-${engine}-r$r" ;;
        raw) name="raw-${bytes}-${c}c-${label}-${engine}-r$r" ;;
        rate) name="rate-${cell_rate}ps-${bytes}-${c}c-${label}-${scheme}-r$r" ;;
        broadcast) name="broadcast-${bytes}-1p-${c}s-${label}-${scheme}-r$r" ;;
        *) name="$sc-${c}c-${label}-${scheme}-r$r" ;;
    esac
    last_cpu="" last_achieved="" last_late=""
    if [ -n "${unavailable[$s]:-}" ]; then
        echo "[$n/$total] $name: unavailable: ${unavailable[$s]}"
        return
    fi
    if [ -n "${engine_unavailable[$engine]:-}" ]; then
        echo "[$n/$total] $name: client engine $engine unavailable: ${engine_unavailable[$engine]}"
        return
    fi
    if [ -n "${topo_unavailable[$topo]:-}" ] || ! topology_prepare "$topo"; then
        echo "[$n/$total] $name: unavailable: ${topo_unavailable[$topo]}"
        return
    fi
    local extra=""
    [ "$sc" = raw ] && extra=" --raw-tcp"
    [ "$sc" = broadcast ] && extra=" --broadcast"
    if ! start_server "$s" "$serve_scheme" "$name" "$extra"; then
        echo "[$n/$total] $name: unavailable: ${unavailable[$s]}"
        echo "- $s: unavailable: ${unavailable[$s]}" >> "$out/README.md"
        return
    fi
    if ! topology_attach "$topo" "$sc" "$c"; then
        echo "[$n/$total] $name: unavailable: ${topo_unavailable[$topo]}"
        echo "- $topo: unavailable: ${topo_unavailable[$topo]}" >> "$out/README.md"
        stop_server
        return
    fi
    read -ra workload <<< "$(cell_args "$sc" "$size" "$c" "$cell_rate")"
    url_args=()
    for u in "${urls[@]}"; do url_args+=(--url "$u"); done
    [ "$scheme" = wss ] && url_args+=(--insecure)
    printf '[%d/%s] %s ... ' "$n" "$total" "$name"
    jsons+=("$out/$name.json")
    ok=1
    if "$bin/wsport-bench" "${workload[@]}" "${url_args[@]}" --server-pid "$server_pid" \
        "${topo_client_args[@]}" \
        --cpus "$client_cores" --engine "$engine" --label "$label" --json "$out/$name.json" \
        --hlog "$out/$name.hlog" -q > "$out/$name.txt" 2>&1; then
        # "messages 283,757 echoed: 56,751 msgs/s", "opened 4,128 connections: 4128 per
        # second", "pongs 1,000 answered pings: 1000 per second", "server pid N: 84.0% CPU,
        # 203.49 µs CPU per connection", "memory server RSS 10.0 KiB per connection (...)"
        awk '/^  deliveries / {sub(/^ *deliveries +/, ""); sub(/^[^:]*: /, ""); sub(/;.*/, ""); printf "%s", $0}
             /^  (messages|opened|pongs) / {what = ($1 == "opened") ? " handshakes/s" : " pongs/s"
                 sub(/^ *[a-z]+ +/, ""); sub(/^[^:]*: /, ""); sub(/ per second/, what); printf "%s", $0}
             /^  server +pid/ {sub(/,$/, "", $10); printf ", server %s CPU, %s µs CPU per %s", $4, $6, $10}
             /^  proxy +pid/ {sub(/,$/, "", $10); printf ", nginx %s CPU, %s µs CPU per %s", $4, $6, $10}
             /^  memory / {printf ", %s per connection", $4 " " $5}
             /^  endings / && sc == "heartbeat" {sub(/^  endings +/, ""); printf "; endings: %s", $0}' \
            sc="$sc" "$out/$name.txt"
        echo
        last_cpu=$(awk '/^  server +pid/ {sub(/%/, "", $4); print $4}' "$out/$name.txt")
        last_achieved=$(awk '/^  messages / {gsub(/,/, "", $4); print $4}' "$out/$name.txt")
        if grep -q '^WARNING: THE CLIENT SENT LATE' "$out/$name.txt"; then last_late=1; fi
        # The side and pair go into the run's own document, so runs.jsonl keeps them.
        if [ -n "$gate_tag" ]; then sed -i "0,/{/s//{\"gate\":$gate_tag,/" "$out/$name.json"; fi
        # The path goes in too, when the run compares paths.
        if [ "${#paths[@]}" -gt 1 ] || [ "$topo" != loopback ]; then
            sed -i "0,/{/s//{\"path\":${topo_path_tag//\//\\/},/" "$out/$name.json"
        fi
    elif reason=$(grep -m1 -o -- '--engine io-uring: .*' "$out/$name.txt"); then
        # The host refuses the client's io_uring: not a failure of the server.
        engine_unavailable[$engine]=${reason#--engine io-uring: }
        echo "client engine $engine unavailable: ${engine_unavailable[$engine]}"
        echo "- client engine $engine: unavailable: ${engine_unavailable[$engine]}" >> "$out/README.md"
        unset 'jsons[${#jsons[@]}-1]'
    else
        echo "FAILED (see $out/$name.txt)"
        failed=1
        ok=0
    fi
    topology_detach
    stop_server
    # A run that succeeded is its JSON (in runs.jsonl after the report) and its .hlog; its
    # client output and server logs only repeat them. A failed run keeps both to show why.
    if [ "$ok" = 1 ]; then
        rm -f "$out/$name.txt" "$out/$name.server.out" "$out/$name.server.err"
    fi
}

# Whether a sweep step shows the server saturated (CPU ≥ 95% of its cores), the rate missed
# (< 97% achieved), the run failed, or the client sent late at this step and the one before
# for server $2: the server's sweep ends there. A late step says nothing of the server (the
# summary leaves it out); one can be a hiccup of the host, but two in a row mean the client
# cannot keep the schedule, and higher rates would only be later.
declare -A late_streak=()
sweep_done() {
    local target=$1 s=$2
    [ -z "$last_cpu" ] && return 0
    if [ -n "$last_late" ]; then
        late_streak[$s]=$(( ${late_streak[$s]:-0} + 1 ))
        if [ "${late_streak[$s]}" -ge 2 ]; then
            echo "  $s: the client sent late at two rates in a row; its sweep ends here"
            return 0
        fi
    else
        late_streak[$s]=0
    fi
    awk -v cpu="$last_cpu" -v got="$last_achieved" -v want="$target" -v cores="$server_threads" \
        'BEGIN { exit !(cpu >= 95 * cores || got < 0.97 * want) }'
}

# Run server $1 in cell $2, repeat $3, rate $4 on every side of a paired run, in a random order
# (a pair whose base always ran first would carry any warm-up or drift trend as an effect), or
# once from this checkout's build.
label="" side_args="" gate_tag=""
run_sides() {
    local order=("${sides[@]}") i j k
    if [ "${#order[@]}" -eq 0 ]; then
        label=$1 server_bin=$bin side_args="" gate_tag=""
        run_cell "$@"
        return
    fi
    for ((i = ${#order[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1))); k=${order[i]}; order[i]=${order[j]}; order[j]=$k
    done
    for i in "${!order[@]}"; do
        label="$1@${order[i]}" server_bin=${side_bin[${order[i]}]} side_args=${side_extra[${order[i]}]:-}
        gate_tag="{\"side\":\"${order[i]}\",\"pair\":$3,\"order\":$i,\"server\":\"$1\"}"
        run_cell "$@"
    done
}

total=0
for cell in "${cells[@]}"; do
    for s in "${server_list[@]}"; do
        if serves_cell "$s" "$cell"; then total=$((total + 1)); fi
    done
done
total=$(( repeat * total * (${#sides[@]} > 0 ? ${#sides[@]} : 1) ))
if [ -n "$sweep_schemes" ]; then
    # The sweep's length depends on where each server saturates.
    if [ "$total" -gt 0 ]; then total="$total+sweep"; else total=sweep; fi
fi
for r in $(seq 1 "$repeat"); do
    # The servers' order rotates every repeat, so that no server always runs first in a cell
    # (just after the previous cell's load) or right after the same neighbour.
    k=$(( (r - 1) % ${#server_list[@]} ))
    round=("${server_list[@]:k}" "${server_list[@]:0:k}")
    for cell in "${cells[@]}"; do
        for s in "${round[@]}"; do
            if serves_cell "$s" "$cell"; then run_sides "$s" "$cell" "$r" "$rate"; fi
        done
    done
    # The load sweep: every server at each rate before the next, doubling until it saturates.
    for scheme in $sweep_schemes; do
        active=()
        for s in "${server_list[@]}"; do is_reference "$s" || active+=("$s"); late_streak[$s]=0; done
        step=$sweep_from
        while [ "${#active[@]}" -gt 0 ] && [ "$step" -le "$sweep_max" ]; do
            still=()
            for s in "${active[@]}"; do
                label=$s server_bin=$bin side_args="" gate_tag=""
                run_cell "$s" "rate $scheme ${size_list[0]} ${conn_list[0]} $first_engine" "$r" "$step"
                sweep_done "$step" "$s" || still+=("$s")
            done
            active=("${still[@]}")
            step=$((step * 2))
        done
    done
done

case ",$scenarios," in *,abuse,*) topology_prepare loopback; abuse_scenario ;; esac

# Empty server logs say nothing; keep the ones that do.
find "$out" -name '*.server.*' -empty -delete
echo
report_baseline=()
[ "${#sides[@]}" -gt 0 ] && report_baseline=(--baseline "${server_list[0]}@${sides[0]}")
# An abuse-only run has no matrix runs to report (its summary is abuse/summary.md).
[ "$scenarios" = abuse ] || "$bin/wsport-bench" report "$out" "${report_baseline[@]}"
# runs.jsonl now holds each JSON document, and report reads a directory without *.json back
# from it: the per-run files would only repeat it. Only after the report succeeded, so a
# failed report leaves every run in place.
if [ "${#jsons[@]}" -gt 0 ]; then rm -f "${jsons[@]}"; fi
echo "Full result: $out (summary.md, README.md, runs.jsonl, plots, one .hlog per run; client output and server logs of failed runs)"
exit "$failed"
