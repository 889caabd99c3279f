/*
 * The ceiling for a relay that does not copy through user space: a CONNECT-speaking forwarder
 * that puts both sockets of each tunnel into a BPF sockhash, with an sk_skb verdict program
 * that sends every byte received on one socket out of the other, inside the kernel. It needs
 * CAP_BPF and CAP_NET_ADMIN (root). bench/shield.ts measures a CONNECT bulk download through it
 * beside bench/ceiling-relay.c, to show whether leaving user space out would lift the tunnel's
 * throughput on this machine.
 *
 *   ceiling-sockmap LISTEN_PORT TARGET_PORT      (both on 127.0.0.1; any CONNECT goes to TARGET)
 *
 * Both sockets go into the map before the 200 answer, so no tunnel byte can arrive earlier:
 * the client sends nothing before the answer and the bench's origin nothing before a request.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ceiling-serve.h"

static int map_fd;

static int bpf(int cmd, union bpf_attr *attr) { return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr); }

/* The sockhash, keyed by the socket cookie of the receiving socket, holds its peer. */
static int setup(void) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_SOCKHASH;
  a.key_size = 8;
  a.value_size = 4;
  a.max_entries = 65536;
  map_fd = bpf(BPF_MAP_CREATE, &a);
  if (map_fd < 0) return perror("ceiling-sockmap: map"), -1;
  /* r0 = cookie(skb); key = r0; return bpf_sk_redirect_hash(skb, map, &key, 0) (egress). */
  struct bpf_insn prog[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 6, .src_reg = 1},
      {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_socket_cookie},
      {.code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = 10, .src_reg = 0, .off = -8},
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 6},
      {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 2, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd},
      {0},
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 10},
      {.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 3, .imm = -8},
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 4, .imm = 0},
      {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_sk_redirect_hash},
      {.code = BPF_JMP | BPF_EXIT},
  };
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SK_SKB;
  a.insns = (uint64_t)(uintptr_t)prog;
  a.insn_cnt = sizeof prog / sizeof prog[0];
  a.license = (uint64_t)(uintptr_t) "GPL";
  int prog_fd = bpf(BPF_PROG_LOAD, &a);
  if (prog_fd < 0) return perror("ceiling-sockmap: program"), -1;
  memset(&a, 0, sizeof a);
  a.target_fd = map_fd;
  a.attach_bpf_fd = prog_fd;
  a.attach_type = BPF_SK_SKB_VERDICT;
  if (bpf(BPF_PROG_ATTACH, &a) < 0) return perror("ceiling-sockmap: attach"), -1;
  return 0;
}

static int pair(int from, int to) {
  uint64_t key = 0;
  socklen_t len = sizeof key;
  if (getsockopt(from, SOL_SOCKET, SO_COOKIE, &key, &len) != 0) return -1;
  uint32_t value = (uint32_t)to;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = map_fd;
  a.key = (uint64_t)(uintptr_t)&key;
  a.value = (uint64_t)(uintptr_t)&value;
  a.flags = BPF_ANY;
  return bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static void tunnel(int client, int target_port) {
  char head[8192];
  size_t have = 0;
  while (!memmem(head, have, "\r\n\r\n", 4)) {
    ssize_t n = read(client, head + have, sizeof head - have);
    if (n <= 0) return;
    have += (size_t)n;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(target_port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int upstream = socket(AF_INET, SOCK_STREAM, 0);
  if (upstream < 0 || connect(upstream, (struct sockaddr *)&to, sizeof to) != 0) return;
  if (pair(client, upstream) != 0 || pair(upstream, client) != 0) {
    perror("ceiling-sockmap: insert");
    return;
  }
  static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  if (write(client, ok, sizeof ok - 1) != sizeof ok - 1) return;
  /* The kernel moves the bytes; this process only waits for either side to hang up. */
  struct pollfd fds[2] = {{.fd = client, .events = POLLRDHUP}, {.fd = upstream, .events = POLLRDHUP}};
  poll(fds, 2, -1);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT\n", argv[0]);
    return 2;
  }
  if (setup() != 0) return 1;
  return serve("ceiling-sockmap", argv[1], argv[2], tunnel);
}
