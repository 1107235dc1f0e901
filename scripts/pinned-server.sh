# Sourced by the scripts that measure one server at a time (uring-features.sh,
# idle-memory.sh): start a server pinned to CPU 0 on one kernel-chosen port, learn its URL,
# stop it by its own PID.
#
#   start_server DIR SCHEME COMMAND...   sets server_pid, and server_url (empty if the server
#                                        did not announce its listener in 10 s; its stderr is
#                                        DIR/server.err)
#   stop_server                          SIGTERM, then wait for it

server_pid=""
server_url=""

start_server() {
    local dir=$1 scheme=$2
    shift 2
    : >"$dir/server.out"
    taskset -c 0 "$@" --listen "$scheme://127.0.0.1:0" --cpus 0 \
        >"$dir/server.out" 2>"$dir/server.err" &
    server_pid=$!
    server_url=""
    for _ in $(seq 100); do
        server_url=$(sed -n "s/^listening \($scheme:\/\/.*\)$/\1\//p" "$dir/server.out")
        [[ -n "$server_url" ]] && return
        kill -0 "$server_pid" 2>/dev/null || return
        sleep 0.1
    done
}

stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap stop_server EXIT
