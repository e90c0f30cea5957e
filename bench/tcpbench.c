// TCP load for bench/ports.sh: a server for the container, and two clients (connections per second, bulk throughput).
//   tcpbench serve PORT...                   [::]:PORT (dual stack) for each PORT, 4 accept loops each; a connection
//                                            sends one byte: 'c' -> answer 'k' and close; 'b' -> read to EOF, then close
//   tcpbench cps HOST PORT SECONDS CONC      CONC threads: connect, 'c', read 'k', close; prints connections/s
//   tcpbench bulk HOST PORT SECONDS          one connection: 'b' then 64 KiB writes for SECONDS; prints MB/s
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage dst;
static socklen_t dstlen;
static double deadline;
static atomic_long done_count;
static atomic_long failed_count;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *serve_loop(void *arg) {
  int lfd = (int)(long)arg;
  static __thread char buf[1 << 16];
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) continue;
    char cmd = 0;
    if (read(c, &cmd, 1) == 1) {
      if (cmd == 'c') {
        if (write(c, "k", 1) != 1) { /* the client went away */ }
      } else if (cmd == 'b') {
        while (read(c, buf, sizeof buf) > 0) {
        }
      }
    }
    close(c);
  }
  return NULL;
}

static int dial(void) {
  int fd = socket(dst.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&dst, dstlen) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *cps_loop(void *arg) {
  (void)arg;
  while (now() < deadline) {
    int fd = dial();
    char k = 0;
    if (fd >= 0 && write(fd, "c", 1) == 1 && read(fd, &k, 1) == 1 && k == 'k') atomic_fetch_add(&done_count, 1);
    else atomic_fetch_add(&failed_count, 1);
    if (fd >= 0) close(fd);
  }
  return NULL;
}

static void resolve(const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *res;
  if (getaddrinfo(host, port, &hints, &res) != 0) {
    fprintf(stderr, "tcpbench: bad address %s\n", host);
    exit(2);
  }
  memcpy(&dst, res->ai_addr, res->ai_addrlen);
  dstlen = res->ai_addrlen;
  freeaddrinfo(res);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
    pthread_t t;
    for (int p = 2; p < argc; p++) {
      int lfd = socket(AF_INET6, SOCK_STREAM, 0);
      int one = 1, zero = 0;
      setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[p])), .sin6_addr = in6addr_any};
      if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
        perror("tcpbench: listen");
        return 1;
      }
      for (int i = 0; i < 4; i++) pthread_create(&t, NULL, serve_loop, (void *)(long)lfd);
    }
    pthread_join(t, NULL);
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "cps") == 0) {
    resolve(argv[2], argv[3]);
    double secs = atof(argv[4]);
    int conc = atoi(argv[5]);
    double start = now();
    deadline = start + secs;
    pthread_t t[256];
    if (conc < 1 || conc > 256) conc = 1;
    for (int i = 0; i < conc; i++) pthread_create(&t[i], NULL, cps_loop, NULL);
    for (int i = 0; i < conc; i++) pthread_join(t[i], NULL);
    double took = now() - start;
    printf("%.0f %ld\n", atomic_load(&done_count) / took, atomic_load(&failed_count));
    return 0;
  }
  if (argc >= 5 && strcmp(argv[1], "bulk") == 0) {
    resolve(argv[2], argv[3]);
    int fd = dial();
    if (fd < 0 || write(fd, "b", 1) != 1) {
      perror("tcpbench: connect");
      return 1;
    }
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    double start = now(), end = start + atof(argv[4]);
    long long sent = 0;
    while (now() < end) {
      ssize_t n = write(fd, buf, sizeof buf);
      if (n <= 0) break;
      sent += n;
    }
    shutdown(fd, SHUT_WR);
    char c;
    while (read(fd, &c, 1) > 0) {
    }
    close(fd);
    printf("%.1f\n", sent / (now() - start) / 1e6);
    return 0;
  }
  fprintf(stderr, "usage: tcpbench serve PORT | cps HOST PORT SECONDS CONC | bulk HOST PORT SECONDS\n");
  return 2;
}
