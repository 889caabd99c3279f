/*
 * The origin for the requests-per-second and latency measurements: answers every request on a
 * keep-alive connection with a 2-byte body, from one thread on epoll, with no HTTP library.
 * The proxies are what bench/shield.ts compares, and they share two cores with the load
 * generator and this origin: the less CPU the origin takes per request, the more of each
 * proxy's own cost the numbers show. (Node's http server, the fallback when there is no C
 * compiler, takes about as much per request as the proxies do.)
 *
 * Requests are GETs without a body, as wrk and the latency client send them: each one ends at
 * the blank line after its head. Pipelined requests are answered in order, in one write.
 *
 *   small-origin PORT      (on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_BYTES 16384
#define MAX_EVENTS 256

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
#define RESPONSE_BYTES (sizeof RESPONSE - 1)
/* Enough for every request a full head buffer could hold, even a bare blank line (4 bytes). */
#define OUT_BYTES ((HEAD_BYTES / 4 + 1) * RESPONSE_BYTES)

struct conn {
  int fd;
  size_t have;
  char head[HEAD_BYTES];
};

static void drop(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

/* Read what is there and answer every complete request; -1 when the connection is done. */
static int serve(struct conn *c, char *out) {
  for (;;) {
    ssize_t n = read(c->fd, c->head + c->have, HEAD_BYTES - c->have);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->have += (size_t)n;
    size_t answers = 0, from = 0;
    for (;;) {
      char *end = memmem(c->head + from, c->have - from, "\r\n\r\n", 4);
      if (end == NULL) break;
      memcpy(out + answers * RESPONSE_BYTES, RESPONSE, RESPONSE_BYTES);
      answers++;
      from = (size_t)(end - c->head) + 4;
    }
    if (from == 0 && c->have == HEAD_BYTES) return -1; /* a head larger than any we send */
    memmove(c->head, c->head + from, c->have - from);
    c->have -= from;
    size_t len = answers * RESPONSE_BYTES;
    /* A few dozen bytes per request into an empty socket buffer: a short write means trouble. */
    if (len > 0 && write(c->fd, out, len) != (ssize_t)len) return -1;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: small-origin PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
    perror("small-origin");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  static char out[OUT_BYTES];
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c != NULL) {
        if (serve(c, out) < 0) drop(ep, c);
        continue;
      }
      for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = malloc(sizeof *c);
        if (c == NULL) {
          close(fd);
          continue;
        }
        c->fd = fd;
        c->have = 0;
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
      }
    }
  }
}
