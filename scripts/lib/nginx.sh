# nginx as a TLS terminator in front of a wsport server (issue 12), sourced by run-bench.sh.
#
# nginx runs as this script's own foreground process (`-g 'daemon off;'`), from a config this
# file writes, with its pid file, logs and temporary files in a private prefix directory: the
# system's nginx service is never started, stopped or read. Functions:
#
#   nginx_ensure                  nginx on PATH, installed from the distribution when missing;
#                                 else returns 1 with nginx_unavailable set ("why")
#   nginx_conf PORT BACKEND CERT KEY READ_TIMEOUT CPU CONNS
#                                 the config on stdout
#   nginx_start CONF PREFIX       start it; sets nginx_pid (master) and nginx_worker (the
#                                 worker, whose CPU is measured); returns 1 with nginx_error
#   nginx_stop                    stop it by PID and wait for it
#   tls_make_cert DIR             a self-signed ECDSA P-256 certificate for localhost,
#                                 127.0.0.1 and ::1 (what the wsport servers generate with
#                                 rcgen) as DIR/cert.pem and DIR/key.pem, for nginx and the
#                                 direct wss servers alike

nginx_pid="" nginx_worker="" nginx_unavailable="" nginx_error=""

nginx_ensure() {
    command -v nginx > /dev/null && return 0
    if ! command -v apt-get > /dev/null; then
        nginx_unavailable="nginx is not installed and this host has no apt-get to install it"
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        nginx_unavailable="nginx is not installed and installing it needs root (apt-get install nginx)"
        return 1
    fi
    echo "   installing nginx from the distribution's packages (apt-get install -y nginx)"
    local log
    log=$(mktemp)
    if DEBIAN_FRONTEND=noninteractive apt-get install -y nginx > "$log" 2>&1 ||
        { apt-get update > /dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y nginx > "$log" 2>&1; }; then
        rm -f "$log"
        command -v nginx > /dev/null && return 0
    fi
    nginx_unavailable="nginx is not installed and apt-get install nginx failed: $(grep -m1 -iE 'E:|error' "$log" || tail -1 "$log")"
    rm -f "$log"
    return 1
}

# The worker_cpu_affinity mask of CPU $1: "1" then $1 zeros (CPU 0 is the rightmost bit).
nginx_cpu_mask() {
    local mask=1 i
    for ((i = 0; i < $1; i++)); do mask+=0; done
    echo "$mask"
}

# The config of one proxied run: TLS on 127.0.0.1:PORT with CERT/KEY, every request forwarded
# to ws://BACKEND as an HTTP/1.1 upgrade (the Upgrade and Connection headers are hop-by-hop,
# RFC 7230 §6.1, so nginx drops them unless told to pass them on), no buffering, one worker on
# CPU `cpu`, idle upgraded connections cut after READ_TIMEOUT without a byte from the backend.
nginx_conf() {
    local port=$1 backend=$2 cert=$3 key=$4 read_timeout=$5 cpu=$6 conns=$7
    # Each proxied connection holds two sockets.
    local worker_conns=$((2 * conns + 64))
    [ "$worker_conns" -ge 1024 ] || worker_conns=1024
    cat <<CONF
# Written by scripts/run-bench.sh (scripts/lib/nginx.sh): wss terminated here, ws to the backend.
worker_processes 1;
worker_cpu_affinity $(nginx_cpu_mask "$cpu");
worker_rlimit_nofile $((worker_conns + 64));
error_log logs/error.log warn;
pid logs/nginx.pid;

events {
    worker_connections $worker_conns;
}

http {
    access_log off;
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    upstream wsport {
        server $backend;
    }
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate     $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        location / {
            proxy_pass http://wsport;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_read_timeout $read_timeout;
            proxy_send_timeout $read_timeout;
        }
    }
}
CONF
}

# Start nginx with CONF, its files under PREFIX; wait until its worker runs.
nginx_start() {
    local conf=$1 prefix=$2 i
    mkdir -p "$prefix/logs"
    nginx -c "$conf" -p "$prefix/" -e "$prefix/logs/error.log" -g 'daemon off;' \
        > "$prefix/logs/stdout" 2>&1 &
    nginx_pid=$!
    nginx_worker=""
    for i in $(seq 1 50); do
        if ! kill -0 "$nginx_pid" 2> /dev/null; then
            nginx_error=$(grep -m1 -E 'emerg|alert|crit' "$prefix/logs/error.log" "$prefix/logs/stdout" 2> /dev/null |
                sed 's/^[^:]*://' || true)
            nginx_error=${nginx_error:-nginx exited at start}
            wait "$nginx_pid" 2> /dev/null || true
            nginx_pid=""
            return 1
        fi
        nginx_worker=$(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2> /dev/null | awk '{print $1}')
        [ -n "$nginx_worker" ] && [ -s "$prefix/logs/nginx.pid" ] && return 0
        sleep 0.1
    done
    nginx_error="nginx started no worker within 5 s"
    nginx_stop
    return 1
}

nginx_stop() {
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2> /dev/null; then
        # TERM: fast shutdown; the master takes its worker down with it.
        kill -TERM "$nginx_pid" 2> /dev/null || true
        wait "$nginx_pid" 2> /dev/null || true
    fi
    nginx_pid="" nginx_worker=""
}

tls_make_cert() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" > /dev/null 2>&1
}
