/* bench/tlsload.c: the load generator of bench/run's `handshake` scenario (compiled at run time).
 *
 *   tlsload PORT SECONDS CONNECTIONS
 *
 * CONNECTIONS concurrent clients against 127.0.0.1:PORT; each repeatedly opens a TCP
 * connection, makes a full TLS handshake (SNI bench.test, no certificate verification, like
 * wrk), sends `GET / HTTP/1.1` with `Connection: close`, reads the whole response, waits
 * for the server to close (so TIME_WAIT stays on the server side), and starts over.
 * Unlike wrk and h2load, which resume TLS sessions when the server lets them, it never
 * offers a session: the client session cache is off, no session is ever set, and session
 * tickets are refused (SSL_OP_NO_TICKET). `resumed` counts handshakes the library reports
 * as resumed (always 0 if this holds). Prints one line:
 *   requests=N seconds=S rps=R p50_ms=A p99_ms=B errors=E resumed=0 protocol=TLSv1.3
 * Latency: from connect() to the last byte of the response.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, HANDSHAKE, WRITING, READING, DRAINING };

struct slot {
    int fd;
    SSL *ssl;
    enum state state;
    uint64_t start;
    size_t have, head_end, content_length;
    char buf[8192];
};

static const char REQUEST[] = "GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n";
static SSL_CTX *ctx;
static int ep, port;
static uint64_t requests, errors, resumed, nsamples, cap;
static uint64_t *samples;
static const char *protocol = "-";

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void watch(struct slot *s, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = s};
    epoll_ctl(ep, op, s->fd, &ev);
}

static void start(struct slot *s) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->start = now_ns();
    s->have = s->head_end = s->content_length = 0;
    s->ssl = NULL;
    s->state = CONNECTING;
    connect(s->fd, (struct sockaddr *)&a, sizeof a);
    watch(s, EPOLLOUT, EPOLL_CTL_ADD);
}

static void finish(struct slot *s, int failed) {
    if (failed) errors++;
    if (s->ssl) SSL_free(s->ssl);
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    ERR_clear_error();
    start(s);
}

/* Parses what was read so far; returns 1 when the whole response is in. */
static int complete(struct slot *s) {
    if (!s->head_end) {
        char *end = memmem(s->buf, s->have, "\r\n\r\n", 4);
        if (!end) return 0;
        s->head_end = (size_t)(end - s->buf) + 4;
        for (char *p = s->buf; p < end; p++)
            if ((p == s->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                s->content_length = strtoul(p + 15, NULL, 10);
    }
    return s->have >= s->head_end + s->content_length;
}

/* Drives a slot as far as it goes; `want` is set to the epoll events to wait for. */
static void drive(struct slot *s) {
    for (;;) {
        int r, err;
        switch (s->state) {
        case CONNECTING: {
            int so = 0;
            socklen_t len = sizeof so;
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &so, &len);
            if (so != 0) { finish(s, 1); return; }
            s->ssl = SSL_new(ctx);
            SSL_set_fd(s->ssl, s->fd);
            SSL_set_tlsext_host_name(s->ssl, "bench.test");
            SSL_set_connect_state(s->ssl);
            s->state = HANDSHAKE;
            break;
        }
        case HANDSHAKE:
            r = SSL_do_handshake(s->ssl);
            if (r == 1) {
                if (SSL_session_reused(s->ssl)) resumed++;
                protocol = SSL_get_version(s->ssl);
                s->state = WRITING;
                break;
            }
            goto wait;
        case WRITING:
            r = SSL_write(s->ssl, REQUEST, sizeof REQUEST - 1);
            if (r > 0) { s->state = READING; break; }
            goto wait;
        case READING:
        case DRAINING:
            if (s->have == sizeof s->buf) s->have = s->head_end = sizeof s->buf / 2; /* keep parsing state bounded */
            r = SSL_read(s->ssl, s->buf + s->have, (int)(sizeof s->buf - s->have));
            if (r > 0) {
                if (s->state == READING) {
                    s->have += (size_t)r;
                    if (complete(s)) {
                        uint64_t t = now_ns() - s->start;
                        requests++;
                        if (nsamples < cap) samples[nsamples++] = t;
                        s->state = DRAINING;
                        s->have = 0;
                    }
                } else {
                    s->have = 0;
                }
                break;
            }
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && r == 0) || err == SSL_ERROR_SYSCALL) {
                /* The server closed: the end of a DRAINING connection, an error while READING. */
                finish(s, s->state != DRAINING);
                return;
            }
            goto wait;
        }
        continue;
    wait:
        err = SSL_get_error(s->ssl, r);
        if (err == SSL_ERROR_WANT_READ) { watch(s, EPOLLIN, EPOLL_CTL_MOD); return; }
        if (err == SSL_ERROR_WANT_WRITE) { watch(s, EPOLLOUT, EPOLL_CTL_MOD); return; }
        finish(s, 1);
        return;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: tlsload PORT SECONDS CONNECTIONS\n"); return 2; }
    port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int connections = atoi(argv[3]);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    cap = 1 << 22;
    samples = malloc(cap * sizeof *samples);
    ep = epoll_create1(0);
    struct slot *slots = calloc((size_t)connections, sizeof *slots);
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < connections; i++) start(&slots[i]);
    struct epoll_event events[256];
    while (now_ns() < end) {
        int n = epoll_wait(ep, events, 256, 50);
        for (int i = 0; i < n; i++) drive(events[i].data.ptr);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(samples, nsamples, sizeof *samples, cmp_u64);
    printf("requests=%llu seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%llu resumed=%llu protocol=%s\n",
           (unsigned long long)requests, secs, (double)requests / secs,
           nsamples ? (double)samples[nsamples / 2] / 1e6 : 0, nsamples ? (double)samples[(size_t)((double)nsamples * 0.99)] / 1e6 : 0,
           (unsigned long long)errors, (unsigned long long)resumed, protocol);
    return 0;
}
