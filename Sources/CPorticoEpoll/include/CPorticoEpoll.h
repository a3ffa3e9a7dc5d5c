// The Linux calls of the fast lane's event loop (HTTPFastLane.swift) that Swift's Glibc
// module does not import: epoll, eventfd, and accept4 (a GNU extension).
#ifndef C_PORTICO_EPOLL_H
#define C_PORTICO_EPOLL_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/// accept4 with the given flags (SOCK_NONBLOCK | SOCK_CLOEXEC); the peer's address goes to
/// `address`/`length` when they are not NULL.
int portico_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// The event mask and the 64-bit tag of the `index`th of `count` events (epoll_event is packed
/// on x86-64, which Swift does not lay out).
uint32_t portico_epoll_events(const struct epoll_event *events, int index);
uint64_t portico_epoll_tag(const struct epoll_event *events, int index);

/// epoll_ctl with a tag in data.u64.
int portico_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag);

/// Names the calling thread (at most 15 bytes are kept).
void portico_name_thread(const char *name);

#endif
