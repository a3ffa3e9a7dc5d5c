#define _GNU_SOURCE
#include "CPorticoEpoll.h"

#include <pthread.h>
#include <string.h>

int portico_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

uint32_t portico_epoll_events(const struct epoll_event *events, int index) {
    return events[index].events;
}

uint64_t portico_epoll_tag(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

int portico_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t tag) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = tag;
    return epoll_ctl(epfd, op, fd, &event);
}

void portico_name_thread(const char *name) {
    char copy[16];
    strncpy(copy, name, 15);
    copy[15] = 0;
    pthread_setname_np(pthread_self(), copy);
}
