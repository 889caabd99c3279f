/*
 * The load generator for the latency measurement: sends GET requests on a fixed schedule (RATE
 * per second for SECONDS), each on a keep-alive connection that has no request outstanding, and
 * opens another connection when none is free, so a slow answer never delays the next request
 * (no coordinated omission). Times each request from its send (the connect included when it
 * needs a new connection) to the last byte of its response, with CLOCK_MONOTONIC, from one
 * thread on epoll and a timerfd.
 *
 * Why not a Node client: at 1,000 requests per second the Node client took about 60% of a core,
 * and its garbage collector's threads ran for up to 4 ms at a stretch (perf sched) on the same two
 * cores as the proxy it measured. The tail it reported was then largely its own. This one costs a
 * few percent of a core.
 *
 *   paced-client PORT RATE SECONDS TARGET HOST [close]
 *
 * TARGET is the request target (a path, or an absolute URL for a proxy); HOST the Host header.
 * With `close`, each request asks for `Connection: close` and gets a new connection.
 * Prints one JSON line: {"failed":F,"ms":[latencies in ms, in the order answered]}. A request
 * fails on a refused connection, a status other than 2xx, a connection closed before the
 * response ended, or no answer within 10 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 512
#define WARMUP 20
#define BUF_BYTES 16384
#define TIMEOUT_NS 10000000000LL

struct conn {
  int fd;            /* -1 when closed */
  int busy;          /* a request is outstanding */
  int timed;         /* its latency counts (not a warm-up request) */
  long long sent_ns; /* when it was sent (before the connect, if it needed one) */
  char buf[BUF_BYTES];
  size_t have;
  long long body_left; /* -1 until the head is read; -2: read until close */
};

static struct conn conns[MAX_CONNS];
static int port, close_each;
static char request[4096];
static size_t request_len;
static double *lat_ms;
static long done_timed, failed, outstanding;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void drop(int ep, struct conn *c) {
  if (c->fd < 0) return;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

static void finish(int ep, struct conn *c, int ok) {
  if (!c->busy) return;
  c->busy = 0;
  outstanding -= 1;
  if (c->timed) {
    if (ok)
      lat_ms[done_timed++] = (double)(now_ns() - c->sent_ns) / 1e6;
    else
      failed += 1;
  }
  if (!ok || close_each) drop(ep, c);
  c->have = 0;
  c->body_left = -1;
}

static int dial(int ep, struct conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* A blocking connect (on loopback it takes microseconds), given up after 2 s: a proxy whose
   * listen queue is full must cost a failed request, not the run. */
  struct timeval limit = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  c->fd = fd;
  c->have = 0;
  c->body_left = -1;
  return 0;
}

/* Send one request on a free connection (opened if need be); counts a failure if it cannot. */
static void send_one(int ep, int timed) {
  /* A request that needs a new connection waits for it: the connect is part of its time. */
  long long start = now_ns();
  struct conn *c = NULL;
  for (int i = 0; i < MAX_CONNS && !c; i++)
    if (conns[i].fd >= 0 && !conns[i].busy) c = &conns[i];
  for (int i = 0; i < MAX_CONNS && !c; i++)
    if (conns[i].fd < 0) {
      if (dial(ep, &conns[i]) != 0) {
        if (timed) failed += 1;
        return;
      }
      c = &conns[i];
    }
  if (!c) {
    if (timed) failed += 1;
    return;
  }
  c->busy = 1;
  c->timed = timed;
  outstanding += 1;
  c->sent_ns = start;
  /* A request head of under 4 KiB fits in an empty socket buffer: one write takes it all. */
  if (write(c->fd, request, request_len) != (ssize_t)request_len) finish(ep, c, 0);
}

/* The status is 2xx; sets body_left from Content-Length (or -2, read until close). 0 or -1. */
static int parse_head(struct conn *c, size_t head_len) {
  if (head_len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[9] != '2') return -1;
  c->body_left = -2;
  for (char *line = strstr(c->buf, "\r\n"); line && line < c->buf + head_len; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "content-length:", 15) == 0) c->body_left = atoll(line + 17);
    if (strncasecmp(line + 2, "transfer-encoding:", 18) == 0) return -1; /* the origin sends a length */
  }
  return 0;
}

static void readable(int ep, struct conn *c) {
  for (;;) {
    ssize_t n = read(c->fd, c->buf + c->have, BUF_BYTES - 1 - c->have);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      /* Closed: a response read until close ends here; anything else broke off. */
      finish(ep, c, c->busy && c->body_left == -2);
      drop(ep, c);
      return;
    }
    if (!c->busy) { /* bytes nobody asked for */
      drop(ep, c);
      return;
    }
    c->have += (size_t)n;
    if (c->body_left == -1) {
      c->buf[c->have] = 0;
      char *end = strstr(c->buf, "\r\n\r\n");
      if (!end) {
        if (c->have >= BUF_BYTES - 1) finish(ep, c, 0);
        continue;
      }
      size_t head_len = (size_t)(end - c->buf) + 4;
      if (parse_head(c, head_len) != 0) {
        finish(ep, c, 0);
        return;
      }
      c->have -= head_len;
    }
    if (c->body_left >= 0) {
      c->body_left -= (long long)c->have;
      c->have = 0;
      if (c->body_left <= 0) {
        finish(ep, c, c->body_left == 0);
        if (c->fd < 0) return;
      }
    } else {
      c->have = 0; /* until close: count nothing, wait for the end */
    }
  }
}

static void timeouts(int ep) {
  long long now = now_ns();
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i].busy && now - conns[i].sent_ns > TIMEOUT_NS) finish(ep, &conns[i], 0);
}

/* The schedule: `total` requests, the i-th due at start + i / rate; `sent` of them so far. */
static long long start_ns;
static int rate;
static long total, sent;

static long long due_ns(long i) { return start_ns + (i * 1000000000LL) / rate; }

/* Send what is due, and set the timer for the next one. */
static void send_due(int ep, int tfd) {
  while (sent < total && due_ns(sent) <= now_ns()) {
    send_one(ep, 1);
    sent += 1;
  }
  if (sent < total) {
    long long next = due_ns(sent);
    struct itimerspec at = {.it_value = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL}};
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &at, NULL);
  }
}

/* Serve the timer and the connections until every request is sent and answered (or timed out). */
static void run(int ep, int tfd) {
  struct epoll_event events[64];
  while (sent < total || outstanding > 0) {
    int n = epoll_wait(ep, events, 64, 100);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        unsigned long long ticks;
        if (read(tfd, &ticks, sizeof ticks) < 0) { /* spurious */
        }
        send_due(ep, tfd);
      } else {
        readable(ep, events[i].data.ptr);
      }
    }
    timeouts(ep);
  }
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s PORT RATE SECONDS TARGET HOST [close]\n", argv[0]);
    return 2;
  }
  port = atoi(argv[1]);
  rate = atoi(argv[2]);
  long seconds = atol(argv[3]);
  close_each = argc > 6 && strcmp(argv[6], "close") == 0;
  request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", argv[4], argv[5],
                                 close_each ? "Connection: close\r\n" : "");
  if (rate <= 0 || seconds <= 0 || request_len >= sizeof request) {
    fprintf(stderr, "paced-client: bad arguments\n");
    return 2;
  }
  lat_ms = malloc(sizeof(double) * (size_t)(rate * seconds));
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

  /* Warm the connection pool so the run measures steady state, not handshakes. */
  for (int i = 0; i < WARMUP; i++) send_one(ep, 0);
  run(ep, tfd);

  total = (long)rate * seconds;
  start_ns = now_ns();
  send_due(ep, tfd);
  run(ep, tfd);
  failed += outstanding;

  printf("{\"failed\":%ld,\"ms\":[", failed);
  for (long i = 0; i < done_timed; i++) printf(i ? ",%.4f" : "%.4f", lat_ms[i]);
  printf("]}\n");
  return 0;
}
