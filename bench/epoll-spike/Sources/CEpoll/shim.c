#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include "CEpoll.h"

int cepoll_accept(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }

void *cepoll_memmem(const void *haystack, size_t length, const void *needle, size_t needleLength) {
    return memmem(haystack, length, needle, needleLength);
}
