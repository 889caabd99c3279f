/*
 * The accept loop the ceiling forwarders share: listen on 127.0.0.1:LISTEN_PORT and hand each
 * connection to `handle` in a child process of its own, with TARGET_PORT (on 127.0.0.1).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int serve(const char *name, const char *listen_port, const char *target_port,
                 void (*handle)(int client, int target_port)) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(atoi(listen_port))};
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&at, sizeof at) != 0 || listen(listener, 64) != 0) {
    fprintf(stderr, "%s: ", name);
    perror("listen");
    return 1;
  }
  for (;;) {
    int client = accept(listener, NULL, NULL);
    if (client < 0) continue;
    if (fork() == 0) {
      close(listener);
      handle(client, atoi(target_port));
      _exit(0);
    }
    close(client);
  }
}
