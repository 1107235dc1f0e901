# shellcheck shell=bash
# Sourced: the command that starts each server configuration, without its listeners.
# wsport_server_cmd NAME BIN_DIR
wsport_server_cmd() {
    case "$1" in
        tokio) echo "$2/wsport-tokio" ;;
        tokio-multi) echo "$2/wsport-tokio --flavor multi" ;;
        tokio-uring) echo "$2/wsport-tokio-uring" ;;
        monoio-uring) echo "$2/wsport-monoio --driver uring" ;;
        monoio-uring-dt) echo "$2/wsport-monoio --driver uring --defer-taskrun" ;;
        tokio-uring-coop) echo "$2/wsport-tokio-uring --coop-taskrun" ;;
        monoio-epoll) echo "$2/wsport-monoio --driver epoll" ;;
        uring) echo "$2/wsport-uring" ;;
        fastwebsockets) echo "$2/wsport-ref-fastwebsockets" ;;
        tokio-tungstenite) echo "$2/wsport-ref-tungstenite" ;;
        *)
            echo "unknown server '$1' (tokio, tokio-multi, tokio-uring, monoio-uring, monoio-uring-dt, tokio-uring-coop, monoio-epoll, uring, fastwebsockets, tokio-tungstenite)" >&2
            return 2
            ;;
    esac
}

# wsport_start_any_port "COMMAND" CPUS LOG: start a server command on one kernel-chosen ws port
# of 127.0.0.1, pinned to CPUS, one thread, its stdout and stderr in LOG; sets wsport_pid, and
# wsport_port once it listens ("" when it did not start: LOG says why).
wsport_start_any_port() {
    local log=$3
    wsport_port=""
    # Gone before the start: the child truncates it only once it runs, and a grep in between
    # would read the last server's port.
    rm -f "$log"
    # shellcheck disable=SC2086
    $1 --listen ws://127.0.0.1:0 --cpus "$2" --threads 1 > "$log" 2>&1 &
    wsport_pid=$!
    for _ in $(seq 1 50); do
        wsport_port=$(grep -m1 -o 'listening ws://127.0.0.1:[0-9]*' "$log" 2> /dev/null | cut -d: -f3 || true)
        [ -n "$wsport_port" ] && return
        kill -0 "$wsport_pid" 2> /dev/null || return
        sleep 0.1
    done
}
