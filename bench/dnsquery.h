// Shared by the bench's C probes (dnsping.c, waitname.c): encode a one-question A query.
#ifndef DNSNET_BENCH_DNSQUERY_H
#define DNSNET_BENCH_DNSQUERY_H
#include <string.h>

// Encode "name" as a one-question A query (RD set) into buf; returns its length.
static int build(unsigned char *buf, const char *name, unsigned id) {
  int n = 12;
  memset(buf, 0, 12);
  buf[0] = id >> 8; buf[1] = id & 0xff; buf[2] = 0x01; buf[5] = 1;
  const char *p = name;
  while (*p) {
    const char *dot = strchr(p, '.');
    int len = dot ? (int)(dot - p) : (int)strlen(p);
    buf[n++] = len;
    memcpy(buf + n, p, len);
    n += len;
    p += len + (dot ? 1 : 0);
  }
  buf[n++] = 0;
  buf[n++] = 0; buf[n++] = 1; // A
  buf[n++] = 0; buf[n++] = 1; // IN
  return n;
}
#endif
