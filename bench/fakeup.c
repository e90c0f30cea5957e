// The fake upstream for throughput runs: answers every A question with 192.0.2.1 (TTL 0, as
// the dnsmasq upstream does: nothing for a server under test to cache) and any other
// type with NOERROR and no records, over UDP, 64 datagrams per recvmmsg/sendmmsg. dnsmasq did the same
// job before, but at 55k forwarded queries/s it took 55 % of the load core it shares with dnsperf, so the
// load core, not the server under test, capped the forwarded rate. This one takes a fraction of that.
// Usage: fakeup ADDR [PORT]   prints "ready" once bound; on SIGTERM/SIGINT prints "answered N" and exits.
// Queries are answered verbatim but for the header and the answer; anything after the question (EDNS)
// is dropped. A datagram that does not hold one whole question is not answered.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 512

static volatile sig_atomic_t stop;
static void on_stop(int sig) { (void)sig; stop = 1; }

// End of the question (offset after QTYPE/QCLASS), or -1.
static int question_end(const unsigned char *m, int len) {
  int i = 12;
  while (i < len) {
    int l = m[i];
    if (l == 0) return i + 5 <= len ? i + 5 : -1;
    if (l & 0xc0) return -1; // no compression in a question we are sent
    i += l + 1;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: fakeup ADDR [PORT]\n"); return 2; }
  struct sigaction sa = {.sa_handler = on_stop}; // no SA_RESTART: recvmmsg returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 2 ? atoi(argv[2]) : 53)};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "fakeup: bad address %s\n", argv[1]); return 2; }
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("fakeup: bind"); return 1; }
  printf("ready\n");
  fflush(stdout);
  static unsigned char rx[BATCH][SLOT], tx[BATCH][SLOT + 16];
  static struct sockaddr_in from[BATCH];
  struct mmsghdr in[BATCH], out[BATCH];
  struct iovec iin[BATCH], iout[BATCH];
  long answered = 0;
  while (!stop) {
    for (int i = 0; i < BATCH; i++) {
      iin[i] = (struct iovec){rx[i], SLOT};
      in[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iin[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(s, in, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("fakeup: recvmmsg");
      return 1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
      int len = in[i].msg_len;
      const unsigned char *q = rx[i];
      if (len < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1) continue;
      int qe = question_end(q, len);
      if (qe < 0) continue;
      unsigned char *r = tx[k];
      memcpy(r, q, qe);
      r[2] = 0x80 | (q[2] & 0x79); // QR, the query's opcode and RD
      r[3] = 0x80;                 // RA, NOERROR
      r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
      int rl = qe;
      if (q[qe - 4] == 0 && q[qe - 3] == 1) { // A
        static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1};
        memcpy(r + rl, rr, sizeof rr);
        rl += sizeof rr;
        r[7] = 1;
      }
      iout[k] = (struct iovec){r, (size_t)rl};
      out[k].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = in[i].msg_hdr.msg_namelen, .msg_iov = &iout[k], .msg_iovlen = 1};
      k++;
    }
    for (int off = 0; off < k;) {
      int m = sendmmsg(s, out + off, k - off, 0);
      if (m < 0) {
        if (errno == EINTR) continue;
        break; // a full socket buffer: the rest are lost, as UDP would lose them
      }
      off += m;
    }
    answered += k;
  }
  printf("answered %ld\n", answered);
  return 0;
}
