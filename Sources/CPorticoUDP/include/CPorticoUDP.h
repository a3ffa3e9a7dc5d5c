// Thin wrappers around the Linux datagram calls that Swift's Glibc module does not import
// (sendmmsg and struct mmsghdr need _GNU_SOURCE) and around the control-message macros.
#ifndef C_PORTICO_UDP_H
#define C_PORTICO_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// One outgoing datagram (or segmented run) in a batch: what `portico_udp_send` needs.
typedef struct {
    const void *base;
    size_t length;
    /// Destination, or NULL on a connected socket.
    const struct sockaddr *address;
    socklen_t address_length;
    /// 0: a plain datagram; otherwise the segment size for UDP_SEGMENT (GSO).
    uint16_t segment_size;
} portico_udp_datagram;

/// Scratch space for up to `capacity` messages of one sendmmsg call.
typedef struct portico_udp_scratch portico_udp_scratch;

portico_udp_scratch *portico_udp_scratch_create(unsigned int capacity);
void portico_udp_scratch_destroy(portico_udp_scratch *scratch);

/// Sends `count` datagrams (at most the scratch capacity) with one sendmmsg on `fd`.
/// Returns how many were sent (>= 1), or -1 with `*error` set to errno for the first one
/// (0 datagrams sent). EINTR is retried here.
int portico_udp_send(int fd, portico_udp_scratch *scratch, const portico_udp_datagram *datagrams,
                     unsigned int count, int *error);

/// 1 when UDP_SEGMENT is known at build time and the kernel accepts it on a UDP socket.
int portico_udp_segmentation_supported(void);

/// setsockopt(IP_FREEBIND / IPV6_FREEBIND) for `family`; 0 or -1 with errno.
int portico_udp_set_freebind(int fd, int family);

/// setsockopt(SO_NO_CHECK, value): UDP checksums off on transmit (the kernel then refuses
/// segmentation offload). For tests of the fallback only.
int portico_udp_set_no_check(int fd, int value);

#endif
