/* bench/tftpbench.c: the TFTP client of bench/run's `tftp` scenario (compiled at run time).
 *
 *   tftpbench PORT FILE BLKSIZE WINDOWSIZE [REFERENCE]
 *       Reads FILE from the TFTP server on 127.0.0.1:PORT (octet mode) with the options
 *       blksize BLKSIZE and tsize 0, and windowsize WINDOWSIZE (RFC 7440) when it is above 1.
 *       A server that grants no windowsize is read lockstep. The client ACKs the last block
 *       of every window (and the short final block); a block out of order (a gap, or a
 *       window the server sent again) is answered once with an ACK of the last block
 *       received in order, as RFC 7440 describes, and a silence of 1 s resends the last
 *       ACK (5 times at most). With REFERENCE (a local copy of the file), every block is
 *       compared with the bytes at its offset. Prints one line:
 *       bytes=N seconds=S mibps=M blksize=B windowsize=W tsize=T verified=yes|no|skipped
 *       timeouts=N resyncs=N client_cpu_s=C
 *       The clock runs from the request to the final ACK. Exit status 1 when the transfer
 *       failed, the size differs from tsize, or a block differs from REFERENCE.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_BLOCK 65464
#define RETRIES 5

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_string(char **p, const char *s) {
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    *p += n;
}

static void send_ack(int fd, unsigned block) {
    unsigned char ack[4] = {0, 4, (unsigned char)(block >> 8), (unsigned char)(block & 0xFF)};
    send(fd, ack, sizeof ack, 0);
}

/* Finds option NAME in an OACK's name/value list; returns its value or -1. */
static long long oack_value(const unsigned char *p, size_t n, const char *name) {
    size_t i = 2;
    while (i < n) {
        const char *key = (const char *)p + i;
        size_t klen = strnlen(key, n - i);
        if (i + klen >= n) break;
        const char *value = key + klen + 1;
        size_t vlen = strnlen(value, n - i - klen - 1);
        if (i + klen + 1 + vlen >= n) break;
        if (strcasecmp(key, name) == 0) return atoll(value);
        i += klen + 1 + vlen + 1;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: tftpbench PORT FILE BLKSIZE WINDOWSIZE [REFERENCE]\n");
        return 2;
    }
    int port = atoi(argv[1]), blksize = atoi(argv[3]), window = atoi(argv[4]);
    const char *file = argv[2];
    if (blksize < 8 || blksize > MAX_BLOCK || window < 1 || window > 65535) {
        fprintf(stderr, "tftpbench: blksize 8..65464, windowsize 1..65535\n");
        return 2;
    }
    const unsigned char *reference = NULL;
    size_t reference_size = 0;
    if (argc == 6) {
        int rfd = open(argv[5], O_RDONLY);
        struct stat st;
        if (rfd < 0 || fstat(rfd, &st) != 0) { perror("reference"); return 2; }
        reference_size = (size_t)st.st_size;
        if (reference_size > 0) {
            reference = mmap(NULL, reference_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, rfd, 0);
            if (reference == MAP_FAILED) { perror("mmap"); return 2; }
        }
        close(rfd);
    }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in server;
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    char request[1024], number[32], *p = request;
    *p++ = 0;
    *p++ = 1;
    put_string(&p, file);
    put_string(&p, "octet");
    put_string(&p, "blksize");
    snprintf(number, sizeof number, "%d", blksize);
    put_string(&p, number);
    put_string(&p, "tsize");
    put_string(&p, "0");
    if (window > 1) {
        put_string(&p, "windowsize");
        snprintf(number, sizeof number, "%d", window);
        put_string(&p, number);
    }
    size_t request_length = (size_t)(p - request);

    static unsigned char buffers[BATCH][MAX_BLOCK + 4];
    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    struct rusage usage0, usage1;
    getrusage(RUSAGE_SELF, &usage0);
    double start = now_s();

    /* The first answer: OACK, DATA 1 (no option granted) or ERROR; it names the server's TID. */
    struct sockaddr_in from;
    socklen_t from_length;
    ssize_t n = -1;
    for (int attempt = 0; attempt <= RETRIES && n < 0; attempt++) {
        sendto(fd, request, request_length, 0, (struct sockaddr *)&server, sizeof server);
        from_length = sizeof from;
        n = recvfrom(fd, buffers[0], sizeof buffers[0], 0, (struct sockaddr *)&from, &from_length);
    }
    if (n < 4) { fprintf(stderr, "tftpbench: no answer to the request\n"); return 1; }
    if (connect(fd, (struct sockaddr *)&from, from_length) != 0) { perror("connect"); return 1; }

    long long tsize = -1;
    int granted_block = 512, granted_window = 1;
    unsigned last = 0;            /* wire number of the last block received in order */
    unsigned long long bytes = 0; /* bytes received in order */
    int in_window = 0, timeouts = 0, silent = 0, resyncs = 0, resynced = 0, done = 0, failed = 0, mismatch = 0;
    int pending = 0; /* datagrams of the first answer still to process (DATA 1) */
    int opcode = buffers[0][1] | buffers[0][0] << 8;
    if (opcode == 6) {
        long long v = oack_value(buffers[0], (size_t)n, "blksize");
        if (v > 0) granted_block = (int)v;
        v = oack_value(buffers[0], (size_t)n, "windowsize");
        if (v > 0) granted_window = (int)v;
        tsize = oack_value(buffers[0], (size_t)n, "tsize");
        send_ack(fd, 0);
    } else if (opcode == 3) {
        pending = 1;
        messages[0].msg_len = (unsigned)n;
    } else {
        fprintf(stderr, "tftpbench: server answered opcode %d: %s\n", opcode, n > 4 ? (char *)buffers[0] + 4 : "");
        return 1;
    }

    for (int i = 0; i < BATCH; i++) {
        vectors[i].iov_base = buffers[i];
        vectors[i].iov_len = sizeof buffers[i];
        memset(&messages[i].msg_hdr, 0, sizeof messages[i].msg_hdr);
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    while (!done && !failed) {
        int count = pending;
        pending = 0;
        if (count == 0) {
            count = recvmmsg(fd, messages, BATCH, MSG_WAITFORONE, NULL);
            if (count < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) { perror("recvmmsg"); failed = 1; break; }
                timeouts++;
                if (++silent > RETRIES) { fprintf(stderr, "tftpbench: server silent\n"); failed = 1; break; }
                send_ack(fd, last);
                in_window = 0;
                continue;
            }
        }
        for (int i = 0; i < count && !done; i++) {
            const unsigned char *d = buffers[i];
            size_t length = messages[i].msg_len;
            if (length < 4) continue;
            int op = d[1] | d[0] << 8;
            if (op == 5) {
                fprintf(stderr, "tftpbench: ERROR %d %.*s\n", d[3] | d[2] << 8, (int)length - 4, d + 4);
                failed = 1;
                break;
            }
            if (op != 3) continue;
            unsigned block = (unsigned)(d[3] | d[2] << 8);
            size_t payload = length - 4;
            if (block != ((last + 1) & 0xFFFF) || payload > (size_t)granted_block) {
                /* A gap or a window sent again: say once where we are. */
                if (!resynced) {
                    send_ack(fd, last);
                    resyncs++;
                    resynced = 1;
                    in_window = 0;
                }
                continue;
            }
            if (reference && (bytes + payload > reference_size || memcmp(reference + bytes, d + 4, payload) != 0))
                mismatch = 1;
            bytes += payload;
            last = block;
            resynced = 0;
            silent = 0;
            if (payload < (size_t)granted_block) {
                send_ack(fd, block);
                done = 1;
            } else if (++in_window == granted_window) {
                send_ack(fd, block);
                in_window = 0;
            }
        }
    }
    double seconds = now_s() - start;
    getrusage(RUSAGE_SELF, &usage1);
    double cpu = (double)(usage1.ru_utime.tv_sec - usage0.ru_utime.tv_sec + usage1.ru_stime.tv_sec -
                          usage0.ru_stime.tv_sec) +
                 (double)(usage1.ru_utime.tv_usec - usage0.ru_utime.tv_usec + usage1.ru_stime.tv_usec -
                          usage0.ru_stime.tv_usec) / 1e6;
    if (reference && bytes != reference_size) mismatch = 1;
    if (tsize >= 0 && (long long)bytes != tsize) mismatch = 1;
    printf("bytes=%llu seconds=%.3f mibps=%.1f blksize=%d windowsize=%d tsize=%lld verified=%s timeouts=%d "
           "resyncs=%d client_cpu_s=%.2f\n",
           bytes, seconds, seconds > 0 ? (double)bytes / seconds / 1048576 : 0, granted_block, granted_window,
           tsize, reference ? (mismatch ? "no" : "yes") : "skipped", timeouts, resyncs, cpu);
    return failed || mismatch || !done;
}
