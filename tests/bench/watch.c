/* The bench's WebSocket watchers: one process holds many sockets and records every frame
 * they receive, decoding nothing while the bids run (the Python side reads the record after).
 * Written in C because the watchers share the machine with the stack they measure: picows
 * clients under uvloop took 22 to 28 us of CPU per frame, this about 9, most of it the
 * kernel's.
 *
 *   flashbid-watch HOST PORT PATH RECORD < watchers
 *
 * stdin: one line per watcher, "<index> <token> <X-Forwarded-For>", then an empty line;
 * then commands, one per line, each answered on stdout:
 *   (after the watchers)  -> "ready"        every watcher connected and on its first frame,
 *                                            or failed
 *   mark                  -> "marked"       the CPU time counted from here
 *   flush                 -> "flushed N"    the record's first N bytes are written
 *   cpu                   -> "cpu S"        CPU seconds since mark
 *   quit                  -> exits
 * The record: for each event a header (kind, watcher, payload length, monotonic time of the
 * read, and the kernel's receive time of the frame's last byte, CLOCK_MONOTONIC ns), then the
 * payload. Kinds: 'B' began connecting, 'F' failed (reason), 'S' a frame, 'X' closed (reason).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER 65536

struct header {
    char kind;
    char pad[3];
    uint32_t watcher;
    uint32_t length;
    uint32_t pad2;
    int64_t at;     /* CLOCK_MONOTONIC ns */
    int64_t kernel; /* the kernel's receive time, CLOCK_MONOTONIC ns; 0 if unknown */
};

struct conn {
    int fd;
    uint32_t watcher;
    int first; /* the first frame came */
    size_t used;
    unsigned char buffer[BUFFER];
};

static FILE *record;
static int64_t realtime_offset; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */

static int64_t now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void note(char kind, uint32_t watcher, const void *data, uint32_t length, int64_t at,
                 int64_t kernel) {
    struct header h = {.kind = kind, .watcher = watcher, .length = length, .at = at,
                       .kernel = kernel};
    fwrite(&h, sizeof h, 1, record);
    if (length) fwrite(data, 1, length, record);
}

static void fail(uint32_t watcher, const char *reason) {
    note('F', watcher, reason, strlen(reason), now(CLOCK_MONOTONIC), 0);
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec +
           r.ru_stime.tv_usec / 1e6;
}

/* Connect and upgrade (blocking, one at a time); -1 on failure, noted. */
static int open_socket(const char *host, int port, const char *path, uint32_t watcher,
                       const char *token, const char *forwarded, struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    struct timeval timeout = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        fail(watcher, "ConnectionError");
        close(fd);
        return -1;
    }
    char request[4096];
    int n = snprintf(request, sizeof request,
                     "GET %s?token=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: Zmxhc2hiaWQtd2F0Y2hlcg==\r\n"
                     "Sec-WebSocket-Version: 13\r\nX-Forwarded-For: %s\r\n\r\n",
                     path, token, host, port, forwarded);
    if (send(fd, request, n, 0) != n) {
        fail(watcher, "SendError");
        close(fd);
        return -1;
    }
    size_t used = 0;
    char *end = NULL;
    while (!end) {
        ssize_t got = recv(fd, c->buffer + used, BUFFER - 1 - used, 0);
        if (got <= 0) {
            fail(watcher, got == 0 ? "ConnectionClosed" : "TimeoutError");
            close(fd);
            return -1;
        }
        used += got;
        c->buffer[used] = 0;
        end = strstr((char *)c->buffer, "\r\n\r\n");
    }
    if (strncmp((char *)c->buffer, "HTTP/1.1 101", 12) != 0) {
        char reason[64];
        snprintf(reason, sizeof reason, "WSError %.3s", (char *)c->buffer + 9);
        fail(watcher, reason);
        close(fd);
        return -1;
    }
    size_t header = end + 4 - (char *)c->buffer;
    memmove(c->buffer, c->buffer + header, used - header);
    c->used = used - header;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    c->watcher = watcher;
    c->first = 0;
    return fd;
}

/* A frame from the client must be masked (RFC 6455); the mask is zero, so the payload is
 * sent as it is. */
static void reply(struct conn *c, int opcode, const unsigned char *payload, size_t length) {
    unsigned char frame[256];
    if (length > 125) length = 125;
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | length;
    memset(frame + 2, 0, 4);
    memcpy(frame + 6, payload, length);
    send(c->fd, frame, 6 + length, MSG_NOSIGNAL);
}

static void closed(struct conn *c, int epoll, const char *reason, int64_t at) {
    note('X', c->watcher, reason, strlen(reason), at, 0);
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

/* Read what the socket has; note each whole frame. Returns how many first frames came. */
static int receive(struct conn *c, int epoll) {
    char control[256];
    struct iovec part = {.iov_base = c->buffer + c->used, .iov_len = BUFFER - c->used};
    struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    ssize_t got = recvmsg(c->fd, &message, 0);
    int64_t at = now(CLOCK_MONOTONIC);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        closed(c, epoll, got == 0 ? "closed 1006" : "ConnectionResetError", at);
        return 0;
    }
    int64_t kernel = 0;
    for (struct cmsghdr *m = CMSG_FIRSTHDR(&message); m; m = CMSG_NXTHDR(&message, m)) {
        if (m->cmsg_level == SOL_SOCKET && m->cmsg_type == SO_TIMESTAMPNS) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(m), sizeof t);
            kernel = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec - realtime_offset;
        }
    }
    if (got > 0) c->used += got;
    int firsts = 0;
    size_t at_byte = 0;
    while (c->used - at_byte >= 2) {
        unsigned char *f = c->buffer + at_byte;
        int opcode = f[0] & 0x0F;
        uint64_t length = f[1] & 0x7F;
        size_t head = 2;
        if (length == 126) {
            if (c->used - at_byte < 4) break;
            length = (f[2] << 8) | f[3];
            head = 4;
        } else if (length == 127) {
            if (c->used - at_byte < 10) break;
            length = 0;
            for (int i = 2; i < 10; i++) length = (length << 8) | f[i];
            head = 10;
        }
        if (head + length > BUFFER) {
            closed(c, epoll, "FrameTooLarge", at);
            return firsts;
        }
        if (c->used - at_byte < head + length) break;
        unsigned char *payload = f + head;
        if (opcode == 0x8) { /* close: answered, then ours */
            char reason[32];
            int code = length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
            snprintf(reason, sizeof reason, "closed %d", code);
            reply(c, 0x8, payload, length >= 2 ? 2 : 0);
            closed(c, epoll, reason, at);
            return firsts;
        } else if (opcode == 0x9) {
            reply(c, 0xA, payload, length);
        } else if (opcode == 0x1 || opcode == 0x2) {
            if (!(f[0] & 0x80)) {
                closed(c, epoll, "Fragmented", at);
                return firsts;
            }
            note('S', c->watcher, payload, length, at, kernel);
            if (!c->first) {
                c->first = 1;
                firsts++;
            }
        }
        at_byte += head + length;
    }
    memmove(c->buffer, c->buffer + at_byte, c->used - at_byte);
    c->used -= at_byte;
    return firsts;
}

static int command(const char *line, double *marked) {
    if (strcmp(line, "mark") == 0) {
        *marked = cpu_seconds();
        printf("marked\n");
    } else if (strcmp(line, "flush") == 0) {
        fflush(record);
        printf("flushed %ld\n", ftell(record));
    } else if (strcmp(line, "cpu") == 0) {
        printf("cpu %.3f\n", cpu_seconds() - *marked);
    } else if (strcmp(line, "quit") == 0) {
        return 0;
    }
    fflush(stdout);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT PATH RECORD < watchers\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]);
    record = fopen(argv[4], "wb");
    if (!record) {
        perror(argv[4]);
        return 1;
    }
    setvbuf(record, NULL, _IOFBF, 1 << 22);
    realtime_offset = now(CLOCK_REALTIME) - now(CLOCK_MONOTONIC);

    size_t capacity = 64, count = 0;
    struct conn **conns = malloc(capacity * sizeof *conns);
    int epoll = epoll_create1(0);
    char line[8192];
    int waiting = 0;
    while (fgets(line, sizeof line, stdin) && line[0] != '\n') {
        unsigned watcher;
        char token[4096], forwarded[64];
        if (sscanf(line, "%u %4095s %63s", &watcher, token, forwarded) != 3) continue;
        struct conn *c = malloc(sizeof *c);
        note('B', watcher, NULL, 0, now(CLOCK_MONOTONIC), 0);
        if (open_socket(host, port, path, watcher, token, forwarded, c) < 0) {
            free(c);
            continue;
        }
        if (count == capacity) conns = realloc(conns, (capacity *= 2) * sizeof *conns);
        conns[count++] = c;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &e);
        waiting++;
        if (c->used) waiting -= receive(c, epoll); /* the first frame came with the 101 */
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: stdin */
    epoll_ctl(epoll, EPOLL_CTL_ADD, 0, &e);
    int ready = 0;
    double marked = cpu_seconds();
    char commands[1024];
    size_t pending = 0;
    struct epoll_event events[512];
    for (;;) {
        if (!ready && waiting <= 0) {
            ready = 1;
            printf("ready\n");
            fflush(stdout);
        }
        int n = epoll_wait(epoll, events, 512, 1000);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                ssize_t got = read(0, commands + pending, sizeof commands - 1 - pending);
                if (got <= 0) return 0;
                pending += got;
                commands[pending] = 0;
                char *start = commands, *end;
                while ((end = strchr(start, '\n'))) {
                    *end = 0;
                    if (!command(start, &marked)) {
                        fflush(record);
                        return 0;
                    }
                    start = end + 1;
                }
                pending = commands + pending - start;
                memmove(commands, start, pending);
            } else if (c->fd >= 0) {
                int had = c->first;
                waiting -= receive(c, epoll);
                if (!had && !c->first && c->fd < 0) waiting--; /* closed before its first */
            }
        }
    }
}
