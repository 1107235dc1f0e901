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
        monoio-epoll) echo "$2/wsport-monoio --driver epoll" ;;
        uring) echo "$2/wsport-uring" ;;
        fastwebsockets) echo "$2/wsport-ref-fastwebsockets" ;;
        tokio-tungstenite) echo "$2/wsport-ref-tungstenite" ;;
        *)
            echo "unknown server '$1' (tokio, tokio-multi, tokio-uring, monoio-uring, monoio-uring-dt, monoio-epoll, uring, fastwebsockets, tokio-tungstenite)" >&2
            return 2
            ;;
    esac
}
