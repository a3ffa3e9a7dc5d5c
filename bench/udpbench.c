/* bench/udpbench.c: the UDP upstream and load generator of bench/run (compiled at run time).
 *
 *   udpbench echo PORT
 *       Echo server on 127.0.0.1:PORT: every datagram goes back to its sender (recvmmsg/sendmmsg).
 *   udpbench load PORT SECONDS FLOWS WINDOW [SIZES]
 *       FLOWS connected sockets (distinct source ports, so a forwarder sees FLOWS flows) to
 *       127.0.0.1:PORT, each keeping WINDOW requests (64 bytes) outstanding: every reply is
 *       answered by a new request. A socket that got nothing for 100 ms is refilled (its
 *       outstanding datagrams are counted lost). Prints one line:
 *       responses=N seconds=S rps=R p50_ms=A p99_ms=B lost=L
 *       The latency of a request is from its send to its reply (a timestamp in the payload).
 *       SIZES (e.g. 64,200,120): request sizes in bytes (8 to 2048), taken in turn per flow,
 *       so that consecutive datagrams of a flow differ in size (no same-size runs).
 *       Before the clock starts, each flow gets one request answered (resent every 200 ms,
 *       for up to 5 s), so that forwarders that set a flow up on its first datagram (socat
 *       forks a child) are measured on established flows.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SIZE 64

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int echo(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in a = loopback(port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
    static char bufs[BATCH][2048];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) { if (errno == EINTR) continue; perror("recvmmsg"); return 1; }
        for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
        int sent = 0;
        while (sent < n) {
            int m = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), 0);
            if (m < 0) { if (errno == EINTR) continue; break; }
            sent += m;
        }
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define MAX_SIZES 64
static int sizes[MAX_SIZES] = {SIZE};
static int nsizes = 1;

static int parse_sizes(const char *text) {
    nsizes = 0;
    while (*text && nsizes < MAX_SIZES) {
        char *end;
        long v = strtol(text, &end, 10);
        if (end == text || v < 8 || v > 2048) return -1;
        sizes[nsizes++] = (int)v;
        text = *end == ',' ? end + 1 : end;
    }
    return nsizes > 0 ? 0 : -1;
}

static int load(int port, double seconds, int flows, int window) {
    int ep = epoll_create1(0);
    int *fds = calloc((size_t)flows, sizeof *fds);
    uint64_t *last = calloc((size_t)flows, sizeof *last);
    uint64_t *sent_count = calloc((size_t)flows, sizeof *sent_count);
    struct sockaddr_in a = loopback(port);
    char payload[2048];
    memset(payload, 'u', sizeof payload);
    uint64_t start = now_ns(), end;
    for (int f = 0; f < flows; f++) {
        fds[f] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int big = 1 << 20;
        setsockopt(fds[f], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        if (connect(fds[f], (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)f};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[f], &ev);
    }
    char warm[2048];
    for (int f = 0; f < flows; f++) {
        for (int attempt = 0; attempt < 25; attempt++) {
            send(fds[f], payload, SIZE, 0);
            struct pollfd p = {.fd = fds[f], .events = POLLIN};
            if (poll(&p, 1, 200) == 1) break;
        }
        while (recv(fds[f], warm, sizeof warm, 0) > 0) {}
    }
    start = now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    for (int f = 0; f < flows; f++) last[f] = start;
    /* Latency samples: every 16th reply, up to 4M samples. */
    size_t cap = 1 << 22, nsamples = 0;
    uint64_t *samples = malloc(cap * sizeof *samples);
    uint64_t responses = 0, lost = 0, seq = 0;
    for (int f = 0; f < flows; f++)
        for (int w = 0; w < window; w++) {
            uint64_t t = now_ns();
            memcpy(payload, &t, 8);
            send(fds[f], payload, (size_t)sizes[sent_count[f]++ % (uint64_t)nsizes], 0);
        }
    struct epoll_event events[64];
    char buf[2048];
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end) break;
        int n = epoll_wait(ep, events, 64, 20);
        t = now_ns();
        for (int i = 0; i < n; i++) {
            int f = (int)events[i].data.u32;
            for (;;) {
                ssize_t r = recv(fds[f], buf, sizeof buf, 0);
                if (r < 0) break;
                responses++;
                last[f] = t;
                if (r >= 8 && (++seq & 15) == 0 && nsamples < cap) {
                    uint64_t sent;
                    memcpy(&sent, buf, 8);
                    uint64_t got = now_ns();
                    samples[nsamples++] = got > sent ? got - sent : 0;
                }
                uint64_t s = now_ns();
                memcpy(payload, &s, 8);
                send(fds[f], payload, (size_t)sizes[sent_count[f]++ % (uint64_t)nsizes], 0);
            }
        }
        for (int f = 0; f < flows; f++)
            if (t - last[f] > 1000000000ull) {
                lost += (uint64_t)window;
                for (int w = 0; w < window; w++) {
                    uint64_t s = now_ns();
                    memcpy(payload, &s, 8);
                    send(fds[f], payload, (size_t)sizes[sent_count[f]++ % (uint64_t)nsizes], 0);
                }
                last[f] = t;
            }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    qsort(samples, nsamples, sizeof *samples, cmp_u64);
    double p50 = nsamples ? (double)samples[nsamples / 2] / 1e6 : 0;
    double p99 = nsamples ? (double)samples[(size_t)((double)nsamples * 0.99)] / 1e6 : 0;
    printf("responses=%llu seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f lost=%llu\n", (unsigned long long)responses,
           secs, (double)responses / secs, p50, p99, (unsigned long long)lost);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "echo") == 0) return echo(atoi(argv[2]));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "load") == 0) {
        if (argc == 7 && parse_sizes(argv[6]) != 0) {
            fprintf(stderr, "udpbench: SIZES must be a comma-separated list of 8..2048\n");
            return 2;
        }
        return load(atoi(argv[2]), atof(argv[3]), atoi(argv[4]), atoi(argv[5]));
    }
    fprintf(stderr, "usage: udpbench echo PORT | udpbench load PORT SECONDS FLOWS WINDOW [SIZES]\n");
    return 2;
}
