# Deployment paths for run-bench.sh (--topology, issue 12): where the client's bytes go on
# their way to the server. Sourced after nginx.sh and netns.sh.
#
#   loopback       client and server on 127.0.0.1 (every scenario; the default)
#   proxy          wss terminated by nginx on 127.0.0.1:443, forwarded as ws to the server on
#                  a loopback port (echo and rate wss cells, and the heartbeat cell)
#   veth           the server in its own network namespace, reached over a veth pair
#   tbf-RATE       veth shaped by a token bucket on both ends (tbf-1gbit, tbf-100mbit)
#   netem-DELAY    veth with a fixed delay on both ends (netem-1ms); kernels without sch_netem
#                  say "unavailable: kernel without sch_netem"
#
# The heartbeat scenario (--scenarios heartbeat) holds idle connections through nginx with
# proxy_read_timeout --proxy-read-timeout (10s) for that long plus 5 s, once without pings and
# once with a ping every half the timeout: the recorded endings show which the proxy cut.

topo_dir="" topo_host=127.0.0.1 topo_wrap="" topo_ports="" tls_args=""
topo_client_args=() topo_path_tag=""
declare -A topo_unavailable=()
proxy_read_timeout=10s
proxy_cores=""
nginx_port=""
nginx_conf_kept=()

topology_check() {
    local t
    for t in "$@"; do
        case "$t" in
            loopback|proxy|veth|tbf-[0-9]*[kmg]bit|netem-[0-9]*ms) ;;
            *) echo "run-bench.sh: unknown topology '$t' (loopback, proxy, veth, tbf-RATE such as tbf-1gbit or tbf-100mbit, netem-DELAY such as netem-1ms)" >&2
               exit 2 ;;
        esac
    done
}

# The label suffix of a topology: a run's label is SERVER-SUFFIX, e.g. tokio-nginx.
topology_suffix() {
    case "$1" in
        loopback) echo "" ;;
        proxy) echo "-nginx" ;;
        veth) echo "-veth" ;;
        *) echo "-veth-${1//-/}" ;;
    esac
}

# Whether cell "$2" (scenario scheme size conns engine) runs over topology $1.
topology_serves() {
    local sc scheme
    read -r sc scheme _ <<< "$2"
    case "$1" in
        loopback) [ "$sc" != heartbeat ] ;;
        proxy) [ "$sc" = heartbeat ] || { [ "$scheme" = wss ] && { [ "$sc" = echo ] || [ "$sc" = rate ]; }; } ;;
        *) [ "$sc" = echo ] || [ "$sc" = rate ] ;;
    esac
}

# Once per run, before the first cell: the private directory (nginx prefix, certificate),
# the certificate every wss listener uses when nginx is in the run, the namespace.
topology_init() {
    local t need_nginx="" need_netns=""
    topo_dir=$(mktemp -d /tmp/wsport-topology.XXXXXX)
    for t in "$@"; do
        case "$t" in
            loopback) ;;
            proxy) need_nginx=1 ;;
            *) need_netns=1 ;;
        esac
    done
    if [ -n "$need_nginx" ]; then
        if ! nginx_ensure; then
            topo_unavailable[proxy]=$nginx_unavailable
        elif ! tls_make_cert "$topo_dir/tls"; then
            topo_unavailable[proxy]="cannot make a certificate with openssl (apt-get install openssl)"
        else
            # The same certificate for nginx and for the direct wss servers.
            tls_args=" --cert $topo_dir/tls/cert.pem --key $topo_dir/tls/key.pem"
        fi
    fi
    if [ -n "$need_netns" ]; then
        if ! netns_probe; then
            for t in "$@"; do
                case "$t" in loopback|proxy) ;; *) topo_unavailable[$t]=$netns_unavailable ;; esac
            done
        elif ! netns_create; then
            for t in "$@"; do
                case "$t" in loopback|proxy) ;; *) topo_unavailable[$t]="cannot create the namespace and veth pair" ;; esac
            done
        else
            for t in "$@"; do
                case "$t" in
                    netem-*) netns_netem_probe || topo_unavailable[$t]=$netem_unavailable ;;
                esac
            done
        fi
    fi
}

# Before the server of a cell starts: where it listens and what runs it.
topology_prepare() {
    local topo=$1
    topo_host=127.0.0.1 topo_wrap="" topo_ports="" topo_client_args=()
    case "$topo" in
        loopback) ;;
        proxy) topo_ports=0 ;;
        *) topo_host=$netns_ns_ip topo_wrap=$(netns_exec)
           case "$topo" in
               veth) netns_shape "" ;;
               tbf-*) netns_shape "tbf ${topo#tbf-}" ;;
               netem-*) netns_shape "netem ${topo#netem-}" ;;
           esac || { topo_unavailable[$topo]="tc cannot shape the veth link"; return 1; } ;;
    esac
}

# After the server of a cell started (urls set): for proxy, start nginx in front of it and
# point the client at nginx. Sets topo_path_tag, the run's "path" record.
topology_attach() {
    local topo=$1 sc=$2 conns=$3
    local timeout=60s
    [ "$sc" = heartbeat ] && timeout=$proxy_read_timeout
    topo_path_tag="{\"topology\":\"$topo\",\"server_cpus\":\"$server_cores\",\"client_cpus\":\"$client_cores\""
    case "$topo" in
        loopback) ;;
        proxy) nginx_attach "$timeout" "$conns" "$sc" || return 1
               topo_path_tag+=",\"proxy\":\"nginx\",\"proxy_pid\":$nginx_worker,\"proxy_cpus\":\"$proxy_cores\",\"proxy_read_timeout\":\"$timeout\"" ;;
        *) topo_path_tag+=",\"link\":\"veth\",\"server_netns\":true"
           case "$topo" in
               tbf-*|netem-*) topo_path_tag+=",\"shaping\":\"$(netns_qdisc "${topo/-/ }")\"" ;;
           esac ;;
    esac
    topo_path_tag+="}"
}

# nginx on 443 (the port a deployment uses), else 8443, else a free high port, forwarding to
# the ws server just started.
nginx_attach() {
    local timeout=$1 conns=$2 sc=$3 backend port conf
    backend=${urls[0]#ws://}
    backend=${backend%/}
    local candidates="443 8443 $((20000 + RANDOM % 20000))"
    [ -n "$nginx_port" ] && candidates=$nginx_port
    [ "$ports" = any ] && candidates="$((20000 + RANDOM % 20000)) $((20000 + RANDOM % 20000))"
    for port in $candidates; do
        conf="$topo_dir/nginx.conf"
        nginx_conf "$port" "$backend" "$topo_dir/tls/cert.pem" "$topo_dir/tls/key.pem" \
            "$timeout" "${proxy_cores%%,*}" "$conns" > "$conf"
        if nginx_start "$conf" "$topo_dir/nginx"; then
            nginx_port=$port
            urls=("wss://127.0.0.1:$port/")
            topo_client_args=(--proxy-pid "$nginx_worker")
            nginx_keep_conf "$conf" "$sc"
            return 0
        fi
    done
    topo_unavailable[proxy]="nginx did not start: $nginx_error"
    return 1
}

# The result keeps one config of each kind: the echo/rate one and the heartbeat one.
nginx_keep_conf() {
    local name=nginx.conf
    [ "$2" = heartbeat ] && name=nginx-heartbeat.conf
    if [ -z "${nginx_conf_kept[*]:-}" ] || ! printf '%s\n' "${nginx_conf_kept[@]}" | grep -qx "$name"; then
        sed "s|$topo_dir/tls/|<tmp>/|g" "$1" > "$out/$name"
        nginx_conf_kept+=("$name")
    fi
}

topology_detach() {
    nginx_stop
}

# From the EXIT trap: nothing of the run stays behind.
topology_cleanup() {
    nginx_stop
    netns_destroy
    if [ -n "$topo_dir" ]; then rm -rf "$topo_dir"; fi
    topo_dir=""
}

# The README's lines about the paths.
topology_readme() {
    local t
    echo "- topologies: $*"
    for t in "$@"; do
        if [ -n "${topo_unavailable[$t]:-}" ]; then
            echo "  - $t: unavailable: ${topo_unavailable[$t]}"
            continue
        fi
        case "$t" in
            proxy) echo "  - proxy: nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') terminates TLS on 127.0.0.1 (443, or the next free port) and forwards ws to the server on a loopback port; one nginx worker pinned to CPU ${proxy_cores%%,*}$( [ "${proxy_cores%%,*}" = "${server_cores%%,*}" ] && echo ", the server's core: nginx and the server share it, so the path's server side is one core")" ;
                   echo "    (configs: \`nginx*.conf\`, the certificate's path shown as \`<tmp>/\`); every wss listener, direct or behind nginx, uses one self-signed ECDSA P-256 certificate made with openssl for the run" ;;
            loopback) ;;
            *) echo "  - $t: the server in network namespace $netns_name at $netns_ns_ip, the client here at $netns_host_ip, over veth $netns_host_if$( case "$t" in tbf-*|netem-*) echo "; qdisc \`$(netns_qdisc "${t/-/ }")\` on both ends" ;; esac)" ;;
        esac
    done
}

# --proxy-read-timeout in seconds ("10s" or "10"); a usage error otherwise.
proxy_timeout_s() {
    local t=${proxy_read_timeout%s}
    case "$t" in
        ""|*[!0-9]*|0) echo "run-bench.sh: --proxy-read-timeout takes whole seconds, e.g. 10s" >&2; exit 2 ;;
    esac
    echo "$t"
}

# Half of a timeout given in seconds, as a wsport-bench duration: the heartbeat that keeps
# the connection alive.
half_of() {
    local s
    s=$(proxy_timeout_s)
    if [ $((s % 2)) = 0 ]; then echo "$((s / 2))s"; else echo "$((s * 500))ms"; fi
}

# The heartbeat's window: the timeout plus 5 s in all, after a 1 s warmup.
heartbeat_hold() {
    echo "$(( $(proxy_timeout_s) + 4 ))s"
}
