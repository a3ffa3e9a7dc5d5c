#include <stddef.h>
#include <sys/epoll.h>

/// accept4 and memmem are GNU extensions the Glibc module leaves out.
int cepoll_accept(int fd, int flags);
void *cepoll_memmem(const void *haystack, size_t length, const void *needle, size_t needleLength);
