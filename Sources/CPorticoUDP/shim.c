#define _GNU_SOURCE
#include "CPorticoUDP.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef __linux__
#include <netinet/udp.h>
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef IP_FREEBIND
#define IP_FREEBIND 15
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SO_NO_CHECK
#define SO_NO_CHECK 11
#endif

#define CONTROL_SPACE CMSG_SPACE(sizeof(uint16_t))

struct portico_udp_scratch {
    unsigned int capacity;
    struct mmsghdr *messages;
    struct iovec *vectors;
    char *control;
};

portico_udp_scratch *portico_udp_scratch_create(unsigned int capacity) {
    portico_udp_scratch *scratch = calloc(1, sizeof *scratch);
    if (scratch == NULL) return NULL;
    scratch->capacity = capacity;
    scratch->messages = calloc(capacity, sizeof *scratch->messages);
    scratch->vectors = calloc(capacity, sizeof *scratch->vectors);
    scratch->control = calloc(capacity, CONTROL_SPACE);
    if (scratch->messages == NULL || scratch->vectors == NULL || scratch->control == NULL) {
        portico_udp_scratch_destroy(scratch);
        return NULL;
    }
    return scratch;
}

void portico_udp_scratch_destroy(portico_udp_scratch *scratch) {
    if (scratch == NULL) return;
    free(scratch->messages);
    free(scratch->vectors);
    free(scratch->control);
    free(scratch);
}

int portico_udp_send(int fd, portico_udp_scratch *scratch, const portico_udp_datagram *datagrams,
                     unsigned int count, int *error) {
    if (scratch == NULL) {
        *error = ENOMEM;
        return -1;
    }
    if (count > scratch->capacity) count = scratch->capacity;
    for (unsigned int i = 0; i < count; i++) {
        const portico_udp_datagram *d = &datagrams[i];
        struct msghdr *header = &scratch->messages[i].msg_hdr;
        memset(header, 0, sizeof *header);
        scratch->vectors[i].iov_base = (void *)d->base;
        scratch->vectors[i].iov_len = d->length;
        header->msg_iov = &scratch->vectors[i];
        header->msg_iovlen = 1;
        header->msg_name = (void *)d->address;
        header->msg_namelen = d->address == NULL ? 0 : d->address_length;
        if (d->segment_size != 0) {
            char *control = scratch->control + (size_t)i * CONTROL_SPACE;
            memset(control, 0, CONTROL_SPACE);
            header->msg_control = control;
            header->msg_controllen = CONTROL_SPACE;
            struct cmsghdr *cmsg = CMSG_FIRSTHDR(header);
            cmsg->cmsg_level = SOL_UDP;
            cmsg->cmsg_type = UDP_SEGMENT;
            cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t size = d->segment_size;
            memcpy(CMSG_DATA(cmsg), &size, sizeof size);
        }
        scratch->messages[i].msg_len = 0;
    }
    for (;;) {
        int sent = sendmmsg(fd, scratch->messages, count, MSG_DONTWAIT);
        if (sent >= 0) {
            if (sent == 0) {
                *error = EAGAIN;
                return -1;
            }
            return sent;
        }
        if (errno == EINTR) continue;
        *error = errno;
        return -1;
    }
}

int portico_udp_segmentation_supported(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int size = 512;
    int ok = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, sizeof size) == 0;
    close(fd);
    return ok;
}

int portico_udp_set_freebind(int fd, int family) {
    int one = 1;
    if (family == AF_INET6) return setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
    return setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
}

int portico_udp_set_no_check(int fd, int value) {
    return setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &value, sizeof value);
}

#else

portico_udp_scratch *portico_udp_scratch_create(unsigned int capacity) {
    (void)capacity;
    return NULL;
}

void portico_udp_scratch_destroy(portico_udp_scratch *scratch) { (void)scratch; }

int portico_udp_send(int fd, portico_udp_scratch *scratch, const portico_udp_datagram *datagrams,
                     unsigned int count, int *error) {
    (void)fd;
    (void)scratch;
    (void)datagrams;
    (void)count;
    *error = ENOSYS;
    return -1;
}

int portico_udp_segmentation_supported(void) { return 0; }

int portico_udp_set_freebind(int fd, int family) {
    (void)fd;
    (void)family;
    errno = ENOPROTOOPT;
    return -1;
}

int portico_udp_set_no_check(int fd, int value) {
    (void)fd;
    (void)value;
    errno = ENOPROTOOPT;
    return -1;
}

#endif
