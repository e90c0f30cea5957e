// Concurrency-1 DNS latency probe: one query in flight, the next sent as soon as the answer is in.
// dnsperf cannot do this (at -q 1 it sleeps between queries and manages ~40 queries/s), so the
// latency percentiles at c=1 come from here: tens of thousands of samples per second.
// Usage: dnsping SERVER_IP QUERYFILE SECONDS  ->  "samples lost p50_us p99_us p999_us qps answered_pct"
// (answered = NOERROR with at least one answer record; lost = no reply within 1 s)
#include <arpa/inet.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dnsquery.h"

static volatile sig_atomic_t stop; // SIGINT/SIGTERM: finish the query in flight, print, exit
static void on_stop(int sig) { (void)sig; stop = 1; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: dnsping SERVER QUERYFILE SECONDS\n"); return 2; }
  FILE *f = fopen(argv[2], "r");
  if (!f) { perror(argv[2]); return 1; }
  static char names[200000][128];
  int nn = 0;
  char line[256];
  while (nn < 200000 && fgets(line, sizeof line, f)) {
    if (sscanf(line, "%127s", names[nn]) == 1) nn++;
  }
  fclose(f);
  if (nn == 0) return 1;
  double secs = atof(argv[3]);
  signal(SIGINT, on_stop);
  signal(SIGTERM, on_stop);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
  inet_pton(AF_INET, argv[1], &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
  size_t cap = 1 << 20, n = 0;
  double *lat = malloc(cap * sizeof *lat);
  long lost = 0, ok = 0;
  unsigned char q[512], r[4096];
  double start = now(), end = start + secs;
  unsigned id = 1;
  for (long i = 0; !stop && now() < end && n < cap; i++) {
    id = (id * 1103515245u + 12345u) & 0xffff;
    int len = build(q, names[i % nn], id);
    double t0 = now();
    if (send(s, q, len, 0) != len) { lost++; continue; }
    for (;;) {
      struct pollfd p = {.fd = s, .events = POLLIN};
      int left = (int)((t0 + 1.0 - now()) * 1000);
      int rc = left > 0 ? poll(&p, 1, left) : 0;
      if (rc < 0 && stop) { rc = poll(&p, 1, 1000); } // interrupted by the stop signal: still wait for this answer
      if (rc <= 0) { lost++; break; }
      ssize_t got = recv(s, r, sizeof r, 0);
      if (got >= 12 && ((r[0] << 8) | r[1]) == id) {
        lat[n++] = (now() - t0) * 1e6;
        if ((r[3] & 0xf) == 0 && ((r[6] << 8) | r[7]) > 0) ok++; // NOERROR with an answer
        break;
      }
    }
  }
  double took = now() - start;
  if (n == 0) { printf("0 %ld 0 0 0 0 0\n", lost); return 0; }
  qsort(lat, n, sizeof *lat, cmp);
#define PCT(x) lat[(size_t)((n - 1) * (x))]
  printf("%zu %ld %.1f %.1f %.1f %.0f %.2f\n", n, lost, PCT(0.50), PCT(0.99), PCT(0.999), n / took, 100.0 * ok / n);
  return 0;
}
