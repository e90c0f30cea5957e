// Batched UDP for the resolver: recvmmsg/sendmmsg on sockets polled by Node's own event loop.
//
// Node 20's dgram costs one JS callback, one Buffer and one send request per datagram, and no
// recvmmsg/sendmmsg: measured here, a bare dgram echo server tops out below what dnsmasq answers
// (bench/RESULTS.md). This addon reads up to BATCH datagrams per wake-up into one shared receive area,
// calls JS once per batch, queues the replies JS gives it during that call and sends them, one
// sendmmsg per socket, once the event loop has handled every socket that was ready (a uv_check
// handle). Everything runs on the main thread, so the shared areas need no locks.
//
// JS side: src/resolver/native-udp.ts (the only caller). N-API only, so one build serves every Node >= 20.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 32           // datagrams per recvmmsg
#define RX_SLOT 4096       // bytes per received query; longer ones are flagged, not parsed
#define BIG_SLOT 65536     // bytes per received upstream reply: the largest UDP payload fits
#define ERR_MARK 65536     // rx_meta length -(ERR_MARK + errno): an ICMP error report, not a datagram
#define ADDR_SLOT 32       // bytes per sender address (a sockaddr_in6 is 28)
#define TX_MAX 128         // replies queued during one batch callback
#define TX_SLOT 4096       // a longer reply is sent at once instead of queued
#define MAX_ROUNDS 8       // batches per wake-up before other handles get their turn

typedef struct handle {
  uv_poll_t poll;
  int fd;
  int closed;
  int in_callback;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int uv_done;   // uv_close finished
  int finalized; // the JS external was collected: whichever comes last frees the struct
  int big;       // upstream socket: datagrams land in rx_big (BIG_SLOT each), not rx_area
  int recverr;   // IP_RECVERR is on: ICMP errors are read from the error queue and reported
} handle_t;

typedef struct {
  handle_t *h;
  int len;
  socklen_t addrlen;
  struct sockaddr_storage addr;
} tx_entry_t;

// Shared areas, owned by JS (Buffers handed to init) so that JS reads them without a copy.
static unsigned char *rx_area;  // BATCH * RX_SLOT
static int32_t *rx_meta;        // per slot: length (or -1 when longer than RX_SLOT), address length
static unsigned char *rx_addrs; // BATCH * ADDR_SLOT
static unsigned char *rx_big;   // BATCH * BIG_SLOT, for upstream sockets
static napi_ref rx_refs[4];
static int initialised;

static unsigned char tx_area[TX_MAX * TX_SLOT];
static tx_entry_t tx[TX_MAX];
static int tx_count;
static int batch_depth; // > 0 while JS runs a batch callback: sends are queued, flushed after it

static struct mmsghdr rmsgs[BATCH];
static struct iovec riov[BATCH];
static struct sockaddr_storage raddr[BATCH];

static uint64_t stat_rx, stat_tx, stat_tx_dropped, stat_rx_oversize, stat_batches;

#define CHECK(call)                                                                                                  \
  do {                                                                                                               \
    if ((call) != napi_ok) return throw_last(env);                                                                   \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "udpbatch: N-API call failed");
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static handle_t *get_handle(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "udpbatch: not a handle");
    return NULL;
  }
  return (handle_t *)p;
}

// The first `n` arguments of a call (missing ones read as undefined); 0 with a JS exception pending.
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok) return 1;
  throw_last(env);
  return 0;
}

static int int32_arg(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, "udpbatch: expected a number");
  return 0;
}

// The handle passed as the only (first) argument.
static handle_t *handle_arg(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  return get_args(env, info, 1, argv) ? get_handle(env, argv[0]) : NULL;
}

// ---- sending ----

// An ICMP error that arrived for an earlier datagram (IP_RECVERR sockets) is handed back by the next send
// on that socket, which then sends nothing (sock_alloc_send_pskb returns the pending sk_err). Such a send is
// tried again once: the error belonged to another datagram, and it is reported through the error queue.
static int async_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == EPROTO || e == ETIMEDOUT;
}

static void send_now(handle_t *h, const void *data, size_t len, const struct sockaddr *addr, socklen_t addrlen) {
  ssize_t r;
  int retried = 0;
  for (;;) {
    r = sendto(h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addrlen);
    if (r >= 0 || errno == EINTR) {
      if (r >= 0) break;
      continue;
    }
    if (h->recverr && !retried && async_error(errno)) {
      retried = 1;
      continue;
    }
    break;
  }
  if (r < 0) stat_tx_dropped++; // full socket buffer or unreachable: lost like any UDP datagram
  else stat_tx++;
}

static uv_check_t flush_check; // runs once the loop has handled all ready sockets: one flush for all of them
static int flush_check_ready, flush_check_active;

// Send every queued reply: one sendmmsg per socket (entries for one socket need not be adjacent: the
// forwarder spreads queries over several upstream sockets).
static void flush(void) {
  static struct mmsghdr msgs[TX_MAX];
  static struct iovec iov[TX_MAX];
  static unsigned char done_flag[TX_MAX];
  memset(done_flag, 0, (size_t)tx_count);
  for (int i = 0; i < tx_count; i++) {
    if (done_flag[i]) continue;
    handle_t *h = tx[i].h;
    int n = 0;
    for (int j = i; j < tx_count; j++) {
      if (done_flag[j] || tx[j].h != h) continue;
      done_flag[j] = 1;
      iov[n].iov_base = tx_area + (size_t)j * TX_SLOT;
      iov[n].iov_len = (size_t)tx[j].len;
      memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
      msgs[n].msg_hdr.msg_name = &tx[j].addr;
      msgs[n].msg_hdr.msg_namelen = tx[j].addrlen;
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      n++;
    }
    if (h->closed) {
      stat_tx_dropped += (uint64_t)n;
      continue;
    }
    int sent = 0, retried = -1;
    while (sent < n) {
      int r = sendmmsg(h->fd, msgs + sent, (unsigned)(n - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (h->recverr && retried != sent && async_error(errno)) {
          retried = sent; // a pending ICMP error of an earlier datagram: this one was not sent, try it once more
          continue;
        }
        sent++; // this datagram failed: count it lost, go on with the rest
        stat_tx_dropped++;
        continue;
      }
      sent += r;
      stat_tx += (uint64_t)r;
    }
  }
  tx_count = 0;
}

static void on_flush_check(uv_check_t *c) {
  flush();
  uv_check_stop(c);
  flush_check_active = 0;
}

static void queue_or_send(handle_t *h, const void *data, size_t len, const struct sockaddr *addr, socklen_t addrlen) {
  if (h->closed) {
    stat_tx_dropped++;
    return;
  }
  if (batch_depth == 0 || len > TX_SLOT || !flush_check_ready) {
    send_now(h, data, len, addr, addrlen);
    return;
  }
  if (tx_count == TX_MAX) flush();
  if (!flush_check_active) {
    uv_check_start(&flush_check, on_flush_check);
    flush_check_active = 1;
  }
  tx_entry_t *e = &tx[tx_count];
  memcpy(tx_area + (size_t)tx_count * TX_SLOT, data, len);
  e->h = h;
  e->len = (int)len;
  e->addrlen = addrlen;
  memcpy(&e->addr, addr, addrlen);
  tx_count++;
}

// ---- receiving ----

static void on_close(uv_handle_t *uvh) {
  handle_t *h = (handle_t *)uvh->data;
  h->uv_done = 1;
  if (h->finalized) free(h);
}

static void close_handle(handle_t *h) {
  if (h->closed) return;
  h->closed = 1;
  uv_poll_stop(&h->poll);
  close(h->fd);
  h->fd = -1;
  // The callback and async context go with the handle; a queued reply for it is dropped at flush.
  if (h->callback) napi_delete_reference(h->env, h->callback);
  h->callback = NULL;
  if (h->async) napi_async_destroy(h->env, h->async);
  h->async = NULL;
  // Entries queued for it are sent now: its struct may be freed before the next flush.
  if (tx_count > 0) {
    int keep = 0;
    for (int i = 0; i < tx_count; i++) {
      if (tx[i].h == h) {
        stat_tx_dropped++;
        continue;
      }
      if (keep != i) {
        tx[keep] = tx[i];
        memmove(tx_area + (size_t)keep * TX_SLOT, tx_area + (size_t)i * TX_SLOT, (size_t)tx[i].len);
      }
      keep++;
    }
    tx_count = keep;
  }
  uv_close((uv_handle_t *)&h->poll, on_close);
}

// Hand `n` filled slots to JS: one callback; replies it gives are queued and leave in the check phase.
static void dispatch(handle_t *h, int n) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  napi_get_reference_value(env, h->callback, &cb);
  napi_get_global(env, &recv); // make_callback wants an object as the receiver
  napi_create_int32(env, n, &argv[0]);
  h->in_callback = 1;
  batch_depth++;
  // make_callback: async hooks, and process.nextTick + promise jobs run before it returns, so replies
  // they produce join this batch's sendmmsg too.
  napi_status st = napi_make_callback(env, h->async, recv, cb, 1, argv, &result);
  batch_depth--;
  h->in_callback = 0;
  // Queued replies leave in the check phase of this loop turn, after every ready socket has had its
  // callback: replies to one client produced in several upstream sockets' callbacks share a sendmmsg.
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc); // as an exception thrown from an event handler would be
  }
  (void)st;
  napi_close_handle_scope(env, scope);
}

// Read the socket's error queue (IP_RECVERR, ip(7)): each entry is an ICMP error (port unreachable: the
// upstream has no server on that port) for a datagram we sent. msg_name is that datagram's destination and
// the data its payload (our query, so its ID), which JS matches to the attempt. Reported in slots with
// length -(ERR_MARK + errno). Returns how many were reported.
static int drain_errors(handle_t *h) {
  int reported = 0;
  while (!h->closed && reported < 4 * BATCH) {
    int n = 0;
    for (; n < BATCH; n++) {
      unsigned char control[256];
      struct iovec iov = {.iov_base = rx_big + (size_t)n * BIG_SLOT, .iov_len = BIG_SLOT};
      struct sockaddr_storage from;
      struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
      ssize_t r;
      do r = recvmsg(h->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
      while (r < 0 && errno == EINTR);
      if (r < 0) break;
      int err = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
          struct sock_extended_err ee;
          memcpy(&ee, CMSG_DATA(c), sizeof ee);
          err = (int)ee.ee_errno;
        }
      }
      if (err <= 0 || r < 2) {
        n--; // nothing we can match: read the next one into this slot
        continue;
      }
      socklen_t al = msg.msg_namelen;
      if (al > ADDR_SLOT) al = ADDR_SLOT;
      rx_meta[2 * n] = -(ERR_MARK + err);
      rx_meta[2 * n + 1] = (int32_t)al;
      memcpy(rx_addrs + (size_t)n * ADDR_SLOT, &from, al);
    }
    if (n <= 0) break;
    reported += n;
    dispatch(h, n);
    if (n < BATCH) break;
  }
  return reported;
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  handle_t *h = (handle_t *)poll->data;
  (void)events;
  if (h->closed) return;
  if (status < 0) {
    // libuv stops a poll handle that reports POLLERR and says UV_EBADF (unix/poll.c). With IP_RECVERR that
    // is an ICMP error waiting in the queue: read it, then poll again.
    if (status != UV_EBADF || !h->recverr) return;
    drain_errors(h);
    if (h->closed || uv_poll_start(&h->poll, UV_READABLE, on_readable) != 0) return;
  }
  unsigned char *area = h->big ? rx_big : rx_area;
  size_t slot = h->big ? BIG_SLOT : RX_SLOT;
  for (int round = 0; round < MAX_ROUNDS && !h->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      riov[i].iov_base = area + (size_t)i * slot;
      riov[i].iov_len = slot;
      memset(&rmsgs[i].msg_hdr, 0, sizeof rmsgs[i].msg_hdr);
      rmsgs[i].msg_hdr.msg_name = &raddr[i];
      rmsgs[i].msg_hdr.msg_namelen = sizeof raddr[i];
      rmsgs[i].msg_hdr.msg_iov = &riov[i];
      rmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do n = recvmmsg(h->fd, rmsgs, BATCH, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && h->recverr && errno != EAGAIN && errno != EWOULDBLOCK) {
      // The socket's pending ICMP error was returned instead of datagrams: report the queue, read on.
      drain_errors(h);
      continue;
    }
    if (n <= 0) return; // EAGAIN: drained
    stat_rx += (uint64_t)n;
    stat_batches++;
    for (int i = 0; i < n; i++) {
      int oversize = (rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      if (oversize) stat_rx_oversize++;
      rx_meta[2 * i] = oversize ? -1 : (int32_t)rmsgs[i].msg_len;
      socklen_t al = rmsgs[i].msg_hdr.msg_namelen;
      if (al > ADDR_SLOT) al = ADDR_SLOT;
      rx_meta[2 * i + 1] = (int32_t)al;
      memcpy(rx_addrs + (size_t)i * ADDR_SLOT, &raddr[i], al);
    }
    dispatch(h, n);
    if (n < BATCH) return;
  }
}

// ---- JS API ----

// init(rx: Buffer(BATCH*RX_SLOT), meta: Buffer(BATCH*8), addrs: Buffer(BATCH*ADDR_SLOT), big: Buffer(BATCH*BIG_SLOT))
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_errno(env, "udpbatch.init", EINVAL);
  void *p[4];
  size_t len[4];
  size_t need[4] = {(size_t)BATCH * RX_SLOT, (size_t)BATCH * 8, (size_t)BATCH * ADDR_SLOT, (size_t)BATCH * BIG_SLOT};
  for (int i = 0; i < 4; i++) {
    CHECK(napi_get_buffer_info(env, argv[i], &p[i], &len[i]));
    if (len[i] < need[i]) {
      napi_throw_range_error(env, NULL, "udpbatch.init: buffer too small");
      return NULL;
    }
  }
  for (int i = 0; i < 4; i++) {
    if (initialised) napi_delete_reference(env, rx_refs[i]);
    CHECK(napi_create_reference(env, argv[i], 1, &rx_refs[i]));
  }
  rx_area = p[0];
  rx_meta = p[1];
  rx_addrs = p[2];
  rx_big = p[3];
  if (!flush_check_ready) {
    uv_loop_t *loop;
    if (napi_get_uv_event_loop(env, &loop) == napi_ok && uv_check_init(loop, &flush_check) == 0) {
      uv_unref((uv_handle_t *)&flush_check); // never keeps the process alive by itself
      flush_check_ready = 1;
    }
  }
  initialised = 1;
  return undefined(env);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  handle_t *h = (handle_t *)data;
  h->finalized = 1;
  if (!h->closed) close_handle(h); // JS forgot to close it: on_close frees it
  else if (h->uv_done) free(h);
}

// open(fd, onBatch(count), upstream?) -> handle. The fd is duplicated: the caller closes its own. An upstream
// socket's datagrams land in the big area (a reply may be up to 64 KiB) and its ICMP errors are reported.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool upstream = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &upstream);
  if (!initialised) {
    napi_throw_error(env, NULL, "udpbatch.open: init() first");
    return NULL;
  }
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "udpbatch.open: callback must be a function");
    return NULL;
  }
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return throw_errno(env, "udpbatch.open: dup", errno);
  int fl = fcntl(own, F_GETFL);
  if (fl < 0 || fcntl(own, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    close(own);
    return throw_errno(env, "udpbatch.open: O_NONBLOCK", e);
  }
  handle_t *h = calloc(1, sizeof *h);
  if (!h) {
    close(own);
    return throw_errno(env, "udpbatch.open", ENOMEM);
  }
  // A burst (a client resolving hundreds of names at once) must not overflow the receive queue before we
  // read it: the default 208 KiB holds ~265 small datagrams (seen: 135 of 400 queries dropped, UdpRcvbufErrors).
  // 1 MiB holds ~1300; memory is used only while datagrams wait. FORCE needs CAP_NET_ADMIN, else rmem_max caps it.
  int rcvbuf = 1 << 20;
  if (setsockopt(own, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) setsockopt(own, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  h->fd = own;
  h->env = env;
  h->big = upstream;
  h->recverr = upstream;
  uv_loop_t *loop;
  napi_value name, external;
  int r;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || (r = uv_poll_init(loop, &h->poll, own)) != 0) {
    close(own);
    free(h);
    napi_throw_error(env, NULL, "udpbatch.open: cannot poll the socket");
    return NULL;
  }
  h->poll.data = h;
  CHECK(napi_create_reference(env, argv[1], 1, &h->callback));
  CHECK(napi_create_string_utf8(env, "dnsnet.udpbatch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &h->async));
  CHECK(napi_create_external(env, h, finalize_handle, NULL, &external));
  if ((r = uv_poll_start(&h->poll, UV_READABLE, on_readable)) != 0) {
    close_handle(h);
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  return external;
}

static int buffer_arg(napi_env env, napi_value v, void **data, size_t *len) {
  if (napi_get_buffer_info(env, v, data, len) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, "udpbatch: expected a Buffer");
  return 0;
}

// ---- sockets in another network namespace ----
// Docker's rule: a --dns server is dialled from the container's own netns. setns() moves only the calling
// thread, and a socket stays in the netns it was made in, so the main thread steps in, makes the socket and
// steps back within one synchronous call: no JS or libuv callback runs in between.

static int enter_netns(const char *path, int *saved) {
  *saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*saved < 0) return errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int e = fd < 0 ? errno : 0;
  if (fd >= 0 && setns(fd, CLONE_NEWNET) < 0) e = errno;
  if (fd >= 0) close(fd);
  if (e) close(*saved);
  return e;
}

static void leave_netns(int saved) {
  // Staying in a container's netns would send every later upstream query from there: never carry on.
  if (setns(saved, CLONE_NEWNET) < 0) napi_fatal_error("udpbatch", NAPI_AUTO_LENGTH, "cannot return to the daemon's network namespace", NAPI_AUTO_LENGTH);
  close(saved);
}

// A socket of `type` in the netns at `path` (NULL: this one). Returns the fd or -errno.
static int socket_in(const char *path, int af, int type) {
  int saved = -1;
  if (path) {
    int e = enter_netns(path, &saved);
    if (e) return -e;
  }
  int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int e = fd < 0 ? errno : 0;
  if (path) leave_netns(saved);
  return fd < 0 ? -e : fd;
}

// The optional netns path argument: NULL when undefined/null/empty. `buf` holds the string.
static int netns_arg(napi_env env, napi_value v, char *buf, size_t size, const char **out) {
  napi_valuetype t;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined || t == napi_null) return 1;
  size_t len;
  if (t != napi_string || napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok || len == 0 || len >= size - 1) {
    napi_throw_type_error(env, NULL, "udpbatch: bad netns path");
    return 0;
  }
  *out = buf;
  return 1;
}

static napi_value throw_code(napi_env env, const char *what, int err) {
  char msg[200];
  const char *code = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, code ? code : NULL, msg);
  return NULL;
}

// socket(family 4|6, netnsPath?) -> fd bound to a kernel-chosen port on the wildcard address (for upstream
// queries), with IP_RECVERR on so that an ICMP port unreachable ends the attempt at once (ip(7)).
static napi_value js_socket(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fam;
  char path[512];
  const char *ns;
  if (!get_args(env, info, 2, argv) || !int32_arg(env, argv[0], &fam) || !netns_arg(env, argv[1], path, sizeof path, &ns)) return NULL;
  int af = fam == 6 ? AF_INET6 : AF_INET;
  int fd = socket_in(ns, af, SOCK_DGRAM);
  if (fd < 0) return throw_code(env, ns ? "udpbatch.socket (in the container's netns)" : "udpbatch.socket", -fd);
  int on = 1;
  if (af == AF_INET6) setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
  else setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (af == AF_INET6) {
    ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
    sl = sizeof(struct sockaddr_in6);
  } else {
    ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
    sl = sizeof(struct sockaddr_in);
  }
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "udpbatch.socket: bind", e);
  }
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

// tcpConnect(sockaddr: Buffer, netnsPath?) -> fd of a TCP socket made in that netns, its non-blocking connect
// begun (JS wraps the fd in a net.Socket, whose first write waits for the connection). Throws with the
// errno's name as `code` when the connect fails at once (ECONNREFUSED on loopback, ENETUNREACH).
static napi_value js_tcp_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *addr;
  size_t alen;
  char path[512];
  const char *ns;
  if (!get_args(env, info, 2, argv) || !buffer_arg(env, argv[0], &addr, &alen) || !netns_arg(env, argv[1], path, sizeof path, &ns)) return NULL;
  if (alen < sizeof(struct sockaddr_in) || alen > sizeof(struct sockaddr_storage)) {
    napi_throw_range_error(env, NULL, "udpbatch.tcpConnect: bad address");
    return NULL;
  }
  int af = ((struct sockaddr *)addr)->sa_family;
  int fd = socket_in(ns, af, SOCK_STREAM);
  if (fd < 0) return throw_code(env, "udpbatch.tcpConnect: socket", -fd);
  int r;
  do r = connect(fd, (struct sockaddr *)addr, (socklen_t)alen);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return throw_code(env, "connect", e);
  }
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

// closeFd(fd): for a socket() that was never opened.
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !int32_arg(env, argv[0], &fd)) return NULL;
  if (fd > 2) close(fd);
  return undefined(env);
}

// reply(handle, slot, buf, len): to the sender of datagram `slot` of the batch being handled.
static napi_value js_reply(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  int32_t slot, len;
  void *data;
  size_t blen;
  if (!int32_arg(env, argv[1], &slot) || !buffer_arg(env, argv[2], &data, &blen) || !int32_arg(env, argv[3], &len)) return NULL;
  if (!h->in_callback || slot < 0 || slot >= BATCH || len < 0 || (size_t)len > blen) {
    napi_throw_range_error(env, NULL, "udpbatch.reply: outside the batch callback or bad slot/length");
    return NULL;
  }
  queue_or_send(h, data, (size_t)len, (struct sockaddr *)(rx_addrs + (size_t)slot * ADDR_SLOT), (socklen_t)rx_meta[2 * slot + 1]);
  return undefined(env);
}

// sendTo(handle, buf, len, addr: Buffer holding a sockaddr)
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  void *data, *addr;
  size_t blen, alen;
  int32_t len;
  if (!buffer_arg(env, argv[1], &data, &blen) || !int32_arg(env, argv[2], &len) || !buffer_arg(env, argv[3], &addr, &alen)) return NULL;
  if (len < 0 || (size_t)len > blen || alen < sizeof(struct sockaddr_in) || alen > sizeof(struct sockaddr_storage)) {
    napi_throw_range_error(env, NULL, "udpbatch.sendTo: bad length or address");
    return NULL;
  }
  queue_or_send(h, data, (size_t)len, (struct sockaddr *)addr, (socklen_t)alen);
  return undefined(env);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  handle_t *h = handle_arg(env, info);
  if (!h) return NULL;
  close_handle(h);
  return undefined(env);
}

static napi_value js_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  bool on;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (!h->closed) {
    if (on) uv_ref((uv_handle_t *)&h->poll);
    else uv_unref((uv_handle_t *)&h->poll);
  }
  return undefined(env);
}

// localPort(handle) -> the bound port (tests; upstream sockets).
static napi_value js_local_port(napi_env env, napi_callback_info info) {
  handle_t *h = handle_arg(env, info);
  if (!h) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (h->closed || getsockname(h->fd, (struct sockaddr *)&ss, &sl) < 0) return throw_errno(env, "udpbatch.localPort", h->closed ? EBADF : errno);
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  napi_value out;
  CHECK(napi_create_int32(env, port, &out));
  return out;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  uint64_t vals[5] = {stat_rx, stat_tx, stat_tx_dropped, stat_rx_oversize, stat_batches};
  const char *names[5] = {"received", "sent", "sendFailed", "oversize", "batches"};
  for (int i = 0; i < 5; i++) {
    CHECK(napi_create_double(env, (double)vals[i], &v));
    CHECK(napi_set_named_property(env, o, names[i], v));
  }
  return o;
}

static napi_value module_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"socket", NULL, js_socket, NULL, NULL, NULL, napi_default, NULL},
      {"tcpConnect", NULL, js_tcp_connect, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_default, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL},
      {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value consts, v;
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  napi_create_object(env, &consts);
  int32_t cv[6] = {BATCH, RX_SLOT, ADDR_SLOT, TX_SLOT, BIG_SLOT, ERR_MARK};
  const char *cn[6] = {"batch", "rxSlot", "addrSlot", "txSlot", "bigSlot", "errMark"};
  for (int i = 0; i < 6; i++) {
    napi_create_int32(env, cv[i], &v);
    napi_set_named_property(env, consts, cn[i], v);
  }
  napi_set_named_property(env, exports, "constants", consts);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
