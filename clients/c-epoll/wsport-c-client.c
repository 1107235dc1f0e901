/*
 * wsport-c-client: a plain epoll WebSocket ping-pong client in C, the third instrument.
 *
 * wsport-bench has two engines (io_uring and epoll) and both are ours; a server's cost per
 * message follows how the messages arrive, so a verdict should also hold under a client that
 * shares none of our code. This one is the simplest client there is: one thread, level-
 * triggered epoll, one blocking-free send(2) per message and one recv(2) per readable socket,
 * each connection keeping one message in flight (closed loop).
 *
 * It measures the server from outside: CPU time of every thread of --server-pid from
 * /proc/PID/task/TID/schedstat (nanoseconds) over the window after the warm-up, beside its own
 * CPU (getrusage) and how many messages each epoll_wait returned. One line of key=value on
 * stdout; errors on stderr, one line, exit 1.
 *
 * Build: gcc -O2 -Wall -o wsport-c-client wsport-c-client.c   (scripts/c-client.sh does it)
 * Use:   wsport-c-client -p PORT [-h 127.0.0.1] [-c 100] [-s 64] [-w 1] [-d 3] [-P SERVER_PID]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 20000
#define MAX_PAYLOAD 125 /* one-byte length form (RFC 6455 section 5.2): no extended length */
#define READ_BUF 4096

struct conn {
    int fd;
    size_t have; /* bytes of the echo read so far */
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wsport-c-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (ns) of every thread of a process: the first field of each task's schedstat. */
static uint64_t process_cpu_ns(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (!dir)
        die("server pid %d: cannot open %s: %s", pid, path, strerror(errno));
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char stat_path[300];
        snprintf(stat_path, sizeof stat_path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(stat_path, "r");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) != 1)
                ns = 0;
            fclose(f);
        }
        total += ns;
    }
    closedir(dir);
    return total;
}

static double own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Connect and upgrade (RFC 6455 section 4.1), blocking; the socket is non-blocking after. */
static int open_ws(const struct sockaddr_in *addr, const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0)
        die("connect %s:%d: %s", host, port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     host, port);
    if (send(fd, req, (size_t)n, 0) != n)
        die("sending the upgrade: %s", strerror(errno));
    char resp[1024];
    size_t got = 0;
    while (got < sizeof resp - 1) {
        ssize_t r = recv(fd, resp + got, 1, 0); /* byte by byte: never read past the head */
        if (r <= 0)
            die("the server closed during the upgrade");
        got += (size_t)r;
        resp[got] = 0;
        if (got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        die("upgrade refused: %.40s", resp);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("non-blocking: %s", strerror(errno));
    return fd;
}

/* One masked binary frame (RFC 6455 section 5.3: a client masks every frame), built once. */
static size_t build_frame(uint8_t *frame, size_t size)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    frame[0] = 0x82; /* FIN, binary */
    frame[1] = 0x80 | (uint8_t)size;
    memcpy(frame + 2, key, 4);
    for (size_t i = 0; i < size; i++)
        frame[6 + i] = (uint8_t)('a' + i % 26) ^ key[i % 4];
    return 6 + size;
}

static void send_frame(int fd, const uint8_t *frame, size_t len)
{
    ssize_t n = send(fd, frame, len, MSG_NOSIGNAL);
    /* One small frame into an empty socket buffer (one message in flight) goes whole. */
    if (n != (ssize_t)len)
        die("send: %s", n < 0 ? strerror(errno) : "short write");
}

/* Read what the socket has; every whole echo sends the next message. Returns echoes read. */
static uint64_t on_readable(struct conn *c, size_t echo_len, const uint8_t *frame,
                            size_t frame_len)
{
    uint8_t buf[READ_BUF];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0)
        die("the server closed a connection");
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        die("recv: %s", strerror(errno));
    }
    uint64_t echoes = 0;
    for (ssize_t i = 0; i < n; i++) {
        /* The echo of a closed loop is one unmasked binary frame of the same size. */
        if (c->have == 0 && buf[i] != 0x82)
            die("unexpected frame byte 0x%02x (not a binary echo)", buf[i]);
        if (c->have == 1 && buf[i] != (uint8_t)(echo_len - 2))
            die("echo of length %u, sent %zu", buf[i], echo_len - 2);
        if (++c->have == echo_len) {
            c->have = 0;
            echoes++;
        }
    }
    if (echoes > 1)
        die("more than one echo in flight on one connection");
    if (echoes == 1)
        send_frame(c->fd, frame, frame_len);
    return echoes;
}

struct options {
    const char *host;
    int port, conns, server_pid;
    size_t size;
    double warmup, duration;
};

static struct options parse(int argc, char **argv)
{
    struct options o = {"127.0.0.1", 0, 100, 0, 64, 1.0, 3.0};
    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:s:w:d:P:")) != -1) {
        switch (opt) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'c': o.conns = atoi(optarg); break;
        case 's': o.size = (size_t)atoi(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'd': o.duration = atof(optarg); break;
        case 'P': o.server_pid = atoi(optarg); break;
        default:
            die("usage: -p PORT [-h HOST] [-c CONNS] [-s SIZE<=125] [-w WARMUP_S] [-d DURATION_S] "
                "[-P SERVER_PID]");
        }
    }
    if (o.port <= 0 || o.port > 65535)
        die("-p PORT is required (1-65535)");
    if (o.conns < 1 || o.conns > MAX_CONNS)
        die("-c must be 1-%d", MAX_CONNS);
    if (o.size < 1 || o.size > MAX_PAYLOAD)
        die("-s must be 1-%d bytes (one-byte length form)", MAX_PAYLOAD);
    if (o.duration <= 0 || o.warmup < 0)
        die("-d must be > 0 and -w >= 0");
    return o;
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    if (inet_pton(AF_INET, o.host, &addr.sin_addr) != 1)
        die("-h %s: not an IPv4 address", o.host);
    uint8_t frame[6 + MAX_PAYLOAD];
    size_t frame_len = build_frame(frame, o.size);
    size_t echo_len = 2 + o.size;

    int ep = epoll_create1(0);
    struct conn *conns = calloc((size_t)o.conns, sizeof *conns);
    if (ep < 0 || !conns)
        die("epoll/calloc: %s", strerror(errno));
    for (int i = 0; i < o.conns; i++) {
        conns[i].fd = open_ws(&addr, o.host, o.port);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }
    for (int i = 0; i < o.conns; i++)
        send_frame(conns[i].fd, frame, frame_len);

    double start = now_s(), window_start = 0, end = start + o.warmup + o.duration;
    uint64_t msgs = 0, waits = 0, server_ns0 = 0;
    double client_cpu0 = 0;
    int in_window = 0;
    struct epoll_event events[256];
    for (;;) {
        double t = now_s();
        if (!in_window && t >= start + o.warmup) {
            in_window = 1;
            window_start = t;
            msgs = waits = 0;
            client_cpu0 = own_cpu_s();
            server_ns0 = o.server_pid ? process_cpu_ns(o.server_pid) : 0;
        }
        if (t >= end)
            break;
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        waits++;
        for (int i = 0; i < n; i++)
            msgs += on_readable(events[i].data.ptr, echo_len, frame, frame_len);
    }
    double window = now_s() - window_start;
    double client_cpu = own_cpu_s() - client_cpu0;
    double server_cpu = o.server_pid ? (double)(process_cpu_ns(o.server_pid) - server_ns0) / 1e9 : 0;
    printf("msgs=%llu window_s=%.3f msgs_per_s=%.0f server_cpu_s=%.4f server_us_per_msg=%.3f "
           "client_cpu_s=%.4f client_us_per_msg=%.3f client_msgs_per_wait=%.2f\n",
           (unsigned long long)msgs, window, (double)msgs / window, server_cpu,
           msgs ? server_cpu * 1e6 / (double)msgs : 0.0, client_cpu,
           msgs ? client_cpu * 1e6 / (double)msgs : 0.0, waits ? (double)msgs / (double)waits : 0.0);
    return 0;
}
