#!/usr/bin/env bash
# Tests of run-bench.sh's deployment paths (scripts/lib/{nginx,netns,topology}.sh, issue 12):
# the nginx config, every "unavailable: <reason>" path (no nginx and no way to install it, no
# ip, no CAP_NET_ADMIN, no sch_netem; faked with commands on PATH or a dropped capability),
# and that a run, finished or interrupted, leaves no namespace, veth, nginx or temporary
# directory behind. The last part needs root and the release binaries; it says so and skips
# without them. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
tmp=$(mktemp -d /tmp/wsport-deploy-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# A PATH holding only these tools (links to the real ones) and the fakes put in $tmp/bin.
fake_path() {
    mkdir -p "$tmp/bin"
    local t
    for t in bash mktemp grep tail rm sed awk cat id; do
        [ -e "$tmp/bin/$t" ] || ln -s "$(command -v "$t")" "$tmp/bin/$t"
    done
    echo "$tmp/bin"
}

# --- the nginx config
conf=$(bash -c '. scripts/lib/nginx.sh; nginx_conf 443 127.0.0.1:9001 /c.pem /k.pem 10s 1 3000')
for want in 'listen 127.0.0.1:443 ssl;' 'proxy_http_version 1.1;' \
    'proxy_set_header Upgrade $http_upgrade;' 'proxy_set_header Connection $connection_upgrade;' \
    'proxy_read_timeout 10s;' 'proxy_buffering off;' 'server 127.0.0.1:9001;' \
    'ssl_certificate     /c.pem;' 'worker_cpu_affinity 10;' 'worker_connections 6064;'; do
    check "nginx config has '$want'" 'grep -qF -- "$want" <<< "$conf"'
done
if command -v nginx > /dev/null && command -v openssl > /dev/null; then
    bash -c ". scripts/lib/nginx.sh; tls_make_cert $tmp/tls; nginx_conf 443 127.0.0.1:9001 $tmp/tls/cert.pem $tmp/tls/key.pem 60s 0 100" > "$tmp/nginx.conf"
    mkdir -p "$tmp/prefix/logs"
    check "nginx -t accepts the generated config" \
        'nginx -t -q -c "$tmp/nginx.conf" -p "$tmp/prefix/" -e "$tmp/prefix/logs/error.log" 2> "$tmp/t.err"'
else
    echo "skip nginx -t: nginx or openssl not installed"
fi

# --- unavailable: nginx
bin=$(fake_path)
printf '#!/bin/sh\necho "E: Unable to locate package nginx"; exit 100\n' > "$bin/apt-get"
chmod +x "$bin/apt-get"
out=$(PATH=$bin bash -c '. scripts/lib/nginx.sh; nginx_ensure > /dev/null || echo "unavailable: $nginx_unavailable"')
check "no nginx, apt-get fails: $out" \
    '[ "$out" = "unavailable: nginx is not installed and apt-get install nginx failed: E: Unable to locate package nginx" ]'
rm "$bin/id"; printf '#!/bin/sh\necho 1000\n' > "$bin/id"; chmod +x "$bin/id"
out=$(PATH=$bin bash -c '. scripts/lib/nginx.sh; nginx_ensure > /dev/null || echo "unavailable: $nginx_unavailable"')
check "no nginx, not root: $out" '[[ "$out" == *"installing it needs root"* ]]'
rm "$bin/apt-get"
out=$(PATH=$bin bash -c '. scripts/lib/nginx.sh; nginx_ensure > /dev/null || echo "unavailable: $nginx_unavailable"')
check "no nginx, no apt-get: $out" '[[ "$out" == *"no apt-get to install it"* ]]'

# --- unavailable: netns and netem
out=$(PATH=$bin bash -c '. scripts/lib/netns.sh; netns_probe || echo "unavailable: $netns_unavailable"')
check "no ip: $out" '[[ "$out" == "unavailable: no ip command"* ]]'
if command -v setpriv > /dev/null && command -v ip > /dev/null; then
    out=$(setpriv --bounding-set -net_admin --inh-caps -net_admin bash -c \
        '. scripts/lib/netns.sh; netns_probe || echo "unavailable: $netns_unavailable"')
    check "no CAP_NET_ADMIN: $out" '[[ "$out" == "unavailable: no CAP_NET_ADMIN"* ]]'
fi
printf '#!/bin/sh\necho "Error: Specified qdisc kind is unknown." >&2; exit 2\n' > "$bin/tc"
chmod +x "$bin/tc"
out=$(PATH=$bin bash -c '. scripts/lib/netns.sh; netns_host_if=x; netns_netem_probe || echo "unavailable: $netem_unavailable"')
check "no sch_netem: $out" '[ "$out" = "unavailable: kernel without sch_netem" ]'

# --- nothing left behind (root, release binaries)
leftovers() {
    local pid=$1
    ! ip netns list | grep -q "^wsport-$pid\b" && ! ip link show "wsp${pid}h" > /dev/null 2>&1 &&
        ! pgrep -f "wsport-topology" > /dev/null &&
        [ "$(ls -d /tmp/wsport-topology.* 2> /dev/null | sort)" = "$before_dirs" ]
}
if [ "$(id -u)" != 0 ] || [ ! -x target/release/wsport-bench ] || [ ! -x target/release/wsport-tokio ] ||
    ! command -v nginx > /dev/null; then
    echo "skip the leftovers test: needs root, nginx and target/release/{wsport-tokio,wsport-bench}"
else
    before_dirs=$(ls -d /tmp/wsport-topology.* 2> /dev/null | sort || true)
    args=(--no-build --servers tokio --scenarios echo --client-engines epoll --schemes wss
          --topology proxy,tbf-100mbit --duration 1s --warmup 200ms --repeat 1 --ports any)
    scripts/run-bench.sh "${args[@]}" --out "$tmp/run1" > "$tmp/run1.log" 2>&1 &
    pid=$!
    wait "$pid" && rc=0 || rc=$?
    check "a proxy + tbf run succeeds (rc $rc)" '[ "$rc" = 0 ] && grep -q "wss via nginx" "$tmp/run1/summary.md"'
    check "a finished run leaves nothing behind" 'leftovers "$pid"'
    scripts/run-bench.sh "${args[@]}" --duration 3s --repeat 3 --out "$tmp/run2" > "$tmp/run2.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        ip netns list | grep -q "^wsport-$pid\b" && pgrep -f "wsport-topology" > /dev/null && break
        sleep 0.2
    done
    kill -TERM "$pid"
    wait "$pid" || true
    check "an interrupted run leaves nothing behind" 'leftovers "$pid"'
fi

echo "deploy-paths tests: $failures failure(s)"
[ "$failures" = 0 ]
