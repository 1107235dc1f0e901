# shellcheck shell=bash
# Sourced by scripts/run-bench.sh: the `abuse` scenario (in --full, not in the quick default).
#
# Per server and scheme, the legitimate load (wsport-bench rate at --rate msgs/s over the first
# --conns connections, --size bytes) runs without and with wsport-abuse beside it on the same
# server process: slowloris handshakes held (--abuse-slowloris, 1000), never-read clients
# (20), and the short-lived kinds (431 headers, 2^63-byte frames, bad UTF-8, unmasked frames,
# resets mid-frame, ping floods) at --abuse-rate connections/s (200). Clean and abused runs
# alternate, their order swapped every repeat. The abuse has a listener of its own, one more
# port of the cell's scheme: on a wss cell every attack goes over TLS (wsport-abuse --wss) and
# the TLS kinds run too (a ClientHello trickled and never finished, plain HTTP to the TLS port,
# a record that does not decrypt). Servers run with $abuse_server_flags so that slowloris
# connections turn over within a run and the RSS bound (abuse/src/rss.rs) is tight.
# wsport-abuse samples the server's VmRSS every 100 ms and checks it against that bound; it
# exits 3 when a connection did not end the RFC way or RSS passed the bound.
#
# A third mode calibrates the instrument: on two cores the abuse shares the legitimate client's
# core, and its work there (its own system calls, and the network stack's softirq work done in
# its context) delays the client's reading of echoes even in the idle class. So in a `decoy`
# run the same abuse is aimed at a decoy, a second copy of the server on the abuse's cores in
# the idle class, and the measured server gets none of it: what its p99 loses there is the
# instrument's (results/2026-12-07-vm/abuse-decoy/: legitimate p99 medians 103-385 µs clean,
# 302-779 µs decoy, 271-731 µs abused). The summary judges the abused runs against the decoy
# runs. Decoy runs happen when the abuse shares the client's cores (no --abuse-cores).
#
# Output: $out/abuse/runs.jsonl (a line per run: server, scheme, repeat, mode, the
# wsport-bench JSON and the wsport-abuse JSON) and $out/abuse/summary.md.

abuse_slowloris=${abuse_slowloris:-1000}
abuse_rate=${abuse_rate:-200}
abuse_never_read=${abuse_never_read:-20}
# --abuse-kinds LIST: only these kinds (wsport-abuse --kinds), to find which one costs the
# legitimate load what; empty: all of them.
abuse_kinds=${abuse_kinds:-}
# CPUs for wsport-abuse (--abuse-cores); by default the client's, which on two cores makes the
# abuse compete with the legitimate client: give it a core of its own where there is one.
abuse_cores=${abuse_cores:-}
# wsport-abuse runs in the SCHED_IDLE class (chrt --idle 0) when it shares the legitimate
# client's cores (no --abuse-cores), so that it only gets what the client leaves: measured,
# the client's send lag p99 in abused runs went from 2.6-2.9 ms to 2-23 µs
# (results/2026-12-06-vm/abuse-idle/). --abuse-idle forces it, --no-abuse-idle turns it off.
abuse_idle=${abuse_idle:-auto}
abuse_server_flags="--handshake-timeout 2s --max-frame-bytes 1MiB"

# Run every server and scheme of the matrix, clean and abused, $repeat times.
abuse_scenario() {
    local dir="$out/abuse" r s scheme mode modes i=0 total
    mkdir -p "$dir"
    : > "$dir/runs.jsonl"
    total=0
    for s in "${server_list[@]}"; do is_reference "$s" || total=$((total + 1)); done
    local order=(clean abused)
    [ -z "$abuse_cores" ] && order=(clean decoy abused)
    total=$(( repeat * total * ${#scheme_list[@]} * ${#order[@]} ))
    echo "== abuse: legitimate rate load with and without hostile clients ($total runs)"
    for r in $(seq 1 "$repeat"); do
        # Rotated every repeat, so that no mode always runs first or last.
        modes=$(rotated $((r - 1)) "${order[@]}")
        for s in "${server_list[@]}"; do
            is_reference "$s" && continue
            for scheme in "${scheme_list[@]}"; do
                for mode in $modes; do
                    i=$((i + 1))
                    abuse_run "$s" "$scheme" "$r" "$mode" "[abuse $i/$total]"
                done
            done
        done
    done
    "$bin/wsport-abuse" summary "$dir" > /dev/null
    echo "abuse summary: $dir/summary.md"
}

# One run of server $1 over scheme $2, repeat $3, mode $4 (clean|abused); progress label $5.
abuse_run() {
    local s=$1 scheme=$2 r=$3 mode=$4 progress=$5 name abuse_pid="" abuse_addr rc=0 attack_args
    name="abuse-$mode-$s-$scheme-r$r"
    label=$s server_bin=$bin side_args="" gate_tag=""
    if [ -n "${unavailable[$s]:-}" ]; then
        echo "$progress $name: unavailable: ${unavailable[$s]}"
        return
    fi
    if ! start_server "$s" "$scheme" "abuse/$name" " $abuse_server_flags --listen $scheme://127.0.0.1:0"; then
        echo "$progress $name: unavailable: ${unavailable[$s]}"
        return
    fi
    # The abuse's listener is the last one announced (it comes last on the command line).
    abuse_addr=$(grep -o "^listening $scheme://127.0.0.1:[0-9]*" "$out/abuse/$name.server.out" | tail -1 | sed 's|.*://||')
    url_args=()
    for u in "${urls[@]}"; do
        [ "$u" = "$scheme://$abuse_addr/" ] || url_args+=(--url "$u")
    done
    attack_args=()
    if [ "$scheme" = wss ]; then
        url_args+=(--insecure)
        attack_args=(--wss --legit-wss)
    fi
    if [ -n "$abuse_kinds" ]; then attack_args+=(--kinds "$abuse_kinds"); fi
    printf '%s %s ... ' "$progress" "$name"
    local target_pid=$server_pid
    if [ "$mode" = decoy ]; then
        if ! start_decoy "$s" "$scheme" "$name"; then
            echo "decoy did not start: $(head -1 "$out/abuse/$name.decoy.err")"
            stop_server
            failed=1
            return
        fi
        abuse_addr=$decoy_addr target_pid=$decoy_pid
    fi
    if [ "$mode" != clean ]; then
        sched=()
        if abuse_in_idle_class; then sched=(chrt --idle 0); fi
        taskset -c "${abuse_cores:-$client_cores}" "${sched[@]}" "$bin/wsport-abuse" run --addr "$abuse_addr" \
            --duration "$(abuse_seconds)s" --slowloris "$abuse_slowloris" --churn-rate "$abuse_rate" \
            --never-read "$abuse_never_read" --handshake-timeout 2s --max-frame-bytes 1MiB \
            --legit-conns "${conn_list[0]}" "${attack_args[@]}" \
            --server-pid "$target_pid" --json "$out/abuse/$name.abuse.json" \
            > "$out/abuse/$name.abuse.txt" 2>&1 &
        abuse_pid=$!
        sleep 0.5
    fi
    "$bin/wsport-bench" rate --rate "$rate" -c "${conn_list[0]}" --size "${size_list[0]}" \
        --duration "$duration" --warmup "$warmup" "${url_args[@]}" --server-pid "$server_pid" \
        --cpus "$client_cores" --engine "$first_engine" --label "$s" \
        --json "$out/abuse/$name.json" -q > "$out/abuse/$name.txt" 2>&1 || rc=$?
    if [ -n "$abuse_pid" ]; then wait "$abuse_pid" || rc=$((rc == 0 ? 10 + $? : rc)); fi
    stop_decoy
    stop_server
    abuse_record "$s" "$scheme" "$r" "$mode" "$name" "$rc"
}

# The decoy for run $3: server $1 on scheme $2, one thread on the abuse's cores in the
# abuse's scheduling class, on a kernel-chosen port, with the flags the measured server has
# for the abuse; sets decoy_pid and decoy_addr.
start_decoy() {
    local s=$1 scheme=$2 name=$3 tls="" log="$out/abuse/$3.decoy" sched=()
    [ "$scheme" = wss ] && tls=$tls_args
    if abuse_in_idle_class 2> /dev/null; then sched=(chrt --idle 0); fi
    # shellcheck disable=SC2086
    "${sched[@]}" $(server_cmd "$s") --listen "$scheme://127.0.0.1:0" $tls \
        --cpus "${abuse_cores:-$client_cores}" --threads 1 $abuse_server_flags \
        > "$log.out" 2> "$log.err" &
    decoy_pid=$!
    for _ in $(seq 1 100); do
        decoy_addr=$(grep -o -m1 "^listening $scheme://127.0.0.1:[0-9]*" "$log.out" | sed 's|.*://||')
        [ -n "$decoy_addr" ] && return 0
        kill -0 "$decoy_pid" 2> /dev/null || break
        sleep 0.1
    done
    stop_decoy
    return 1
}

stop_decoy() {
    if [ -n "${decoy_pid:-}" ] && kill -0 "$decoy_pid" 2> /dev/null; then
        kill -TERM "$decoy_pid" 2> /dev/null || true
        wait "$decoy_pid" 2> /dev/null || true
    fi
    decoy_pid=""
}

# The words after $1, rotated left by $1 places.
rotated() {
    local k=$1
    shift
    local words=("$@") n=$#
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${words[$(((i + k) % n))]}"; done
}

# Whether wsport-abuse runs in the SCHED_IDLE class (see abuse_idle above).
abuse_in_idle_class() {
    case "$abuse_idle" in
        1) ;;
        auto) [ -z "$abuse_cores" ] || return 1 ;;
        *) return 1 ;;
    esac
    if ! command -v chrt > /dev/null; then
        echo "abuse: chrt (util-linux) not found: wsport-abuse runs in the normal class" >&2
        return 1
    fi
}

# The abuse covers the warm-up and the measured window.
abuse_seconds() {
    local total=0 d
    for d in "$warmup" "$duration"; do
        case "$d" in
            *ms) total=$(awk -v t="$total" -v d="${d%ms}" 'BEGIN {print t + d / 1000}') ;;
            *s) total=$(awk -v t="$total" -v d="${d%s}" 'BEGIN {print t + d}') ;;
        esac
    done
    awk -v t="$total" 'BEGIN {printf "%d", t + 1.5}'
}

# Append run $5's line to runs.jsonl, print its outcome and keep its logs only if it failed
# ($6: 0 ok, 1-9 the load failed, 10+ the abuse found a wrong ending or RSS over its bound).
abuse_record() {
    local s=$1 scheme=$2 r=$3 mode=$4 name=$5 rc=$6 d="$out/abuse"
    local bench=null abuse=null
    [ -s "$d/$name.json" ] && bench=$(tr -d '\n' < "$d/$name.json")
    [ -s "$d/$name.abuse.json" ] && abuse=$(jq -c 'del(.rss)' "$d/$name.abuse.json")
    printf '{"server":"%s","scheme":"%s","repeat":%d,"mode":"%s","bench":%s,"abuse":%s}\n' \
        "$s" "$scheme" "$r" "$mode" "$bench" "$abuse" >> "$d/runs.jsonl"
    jq -r '.results | "\(.msgs_per_sec | floor) msgs/s, p99 \(.latency_ns.p99 / 1000 | floor) µs"' \
        "$d/$name.json" 2> /dev/null | tr '\n' ' '
    [ "$abuse" != null ] && jq -r '"abuse: \(if .all_expected then "all RFC endings" else "WRONG ENDINGS" end), RSS max \(.rss_check.max / 1048576 * 10 | floor / 10) MiB of \(.rss_check.bound / 1048576 | floor) MiB"' \
        "$d/$name.abuse.json" 2> /dev/null | tr '\n' ' '
    if [ "$rc" = 0 ]; then
        echo
        rm -f "$d/$name.json" "$d/$name.abuse.json" "$d/$name.txt" "$d/$name.abuse.txt" \
            "$d/$name.server.out" "$d/$name.server.err" "$d/$name.decoy.out" "$d/$name.decoy.err"
    else
        echo "FAILED (rc $rc; see $d/$name.*)"
        failed=1
    fi
}
