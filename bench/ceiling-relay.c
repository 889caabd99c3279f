/*
 * The ceiling for a relay that copies: a TCP forwarder with no policy, no parsing and no log,
 * moving bytes with read(2) and write(2) through an 8 MiB buffer (the shield's largest read),
 * one process per connection. With a 1 MiB buffer it moved about two thirds as much here.
 * bench/shield.ts compiles it (when a C compiler is there) and measures a CONNECT-sized bulk
 * download through it, so that clawguard's tunnel throughput can be read against what any
 * user-space proxy on the same machine could reach.
 *
 *   ceiling-relay LISTEN_PORT TARGET_PORT      (both on 127.0.0.1)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ceiling-serve.h"

#define BUFFER_BYTES (8 * 1024 * 1024)

static int copy(int from, int to, char *buf) {
  ssize_t n = read(from, buf, BUFFER_BYTES);
  if (n <= 0) return -1;
  for (ssize_t off = 0; off < n;) {
    ssize_t m = write(to, buf + off, (size_t)(n - off));
    if (m <= 0) return -1;
    off += m;
  }
  return 0;
}

static void relay(int client, int target_port) {
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(target_port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int upstream = socket(AF_INET, SOCK_STREAM, 0);
  if (upstream < 0 || connect(upstream, (struct sockaddr *)&to, sizeof to) != 0) return;
  char *buf = malloc(BUFFER_BYTES);
  if (!buf) return;
  struct pollfd fds[2] = {{.fd = client, .events = POLLIN}, {.fd = upstream, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) return;
    if (fds[0].revents && copy(client, upstream, buf) != 0) return;
    if (fds[1].revents && copy(upstream, client, buf) != 0) return;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT\n", argv[0]);
    return 2;
  }
  return serve("ceiling-relay", argv[1], argv[2], relay);
}
