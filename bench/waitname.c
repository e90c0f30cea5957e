// Start-to-resolvable probe: asks SERVER for NAME's A record every INTERVAL_US from inside a container's
// netns, and prints the wall-clock time (µs since the epoch) of the first answer carrying an address that
// is not IGNORE (the fake upstream answers every name with 192.0.2.1: that is not the container yet).
// Started, and ready, before the timed `run -d`, so the measurement is not padded by starting a `dig`
// process (about 50 ms here) after the run returns, and it sees the name even before the CLI exits.
// Usage: waitname SERVER_IP NAME TIMEOUT_MS [INTERVAL_US [IGNORE_IP]]
//   prints "ready" once its socket is set up, then "<epoch_us> <queries_sent>" on success; exit 1 on timeout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dnsquery.h"

static double mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}


// Skip a (possibly compressed) name; returns the offset after it or -1.
static int skip_name(const unsigned char *m, int len, int off) {
  while (off < len) {
    unsigned char l = m[off];
    if (l == 0) return off + 1;
    if ((l & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : -1;
    off += 1 + l;
  }
  return -1;
}

// 1 when the reply holds an A record other than `ignore`.
static int has_address(const unsigned char *m, int len, struct in_addr ignore) {
  if (len < 12 || !(m[2] & 0x80) || (m[3] & 0x0f) != 0) return 0;
  int qd = (m[4] << 8) | m[5], an = (m[6] << 8) | m[7], off = 12;
  for (int i = 0; i < qd; i++) {
    off = skip_name(m, len, off);
    if (off < 0 || off + 4 > len) return 0;
    off += 4;
  }
  for (int i = 0; i < an; i++) {
    off = skip_name(m, len, off);
    if (off < 0 || off + 10 > len) return 0;
    int type = (m[off] << 8) | m[off + 1], rdlen = (m[off + 8] << 8) | m[off + 9];
    off += 10;
    if (off + rdlen > len) return 0;
    if (type == 1 && rdlen == 4 && memcmp(m + off, &ignore, 4) != 0) return 1;
    off += rdlen;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: waitname SERVER_IP NAME TIMEOUT_MS [INTERVAL_US [IGNORE_IP]]\n");
    return 2;
  }
  double timeout = atof(argv[3]);
  int interval_us = argc > 4 ? atoi(argv[4]) : 1000;
  struct in_addr ignore;
  inet_pton(AF_INET, argc > 5 ? argv[5] : "192.0.2.1", &ignore);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("waitname"); return 2; }
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("ready\n");
  unsigned char q[300], r[1500];
  unsigned id = (unsigned)getpid() * 7919u, sent = 0;
  double start = mono_ms(), next = start;
  while (mono_ms() - start < timeout) {
    double now = mono_ms();
    if (now >= next) {
      int n = build(q, argv[2], (id + sent) & 0xffff);
      if (send(fd, q, n, 0) == n) sent++; // refused while nothing listens yet: just try again
      next = now + interval_us / 1000.0;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    double wait = next - mono_ms();
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000), .tv_nsec = (long)((wait - (time_t)(wait / 1000) * 1000) * 1e6)};
    if (ppoll(&p, 1, &ts, NULL) > 0) {
      int n = recv(fd, r, sizeof r, 0);
      if (n > 0 && has_address(r, n, ignore)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        printf("%lld %u\n", (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000, sent);
        return 0;
      }
    }
  }
  return 1;
}
