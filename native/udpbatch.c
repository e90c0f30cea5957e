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
#include <netinet/in.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 32           // datagrams per recvmmsg
#define RX_SLOT 4096       // bytes per received datagram; longer ones are flagged, not parsed
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
static napi_ref rx_refs[3];
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

static void send_now(handle_t *h, const void *data, size_t len, const struct sockaddr *addr, socklen_t addrlen) {
  ssize_t r;
  do r = sendto(h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addrlen);
  while (r < 0 && errno == EINTR);
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
    int sent = 0;
    while (sent < n) {
      int r = sendmmsg(h->fd, msgs + sent, (unsigned)(n - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r < 0) {
        if (errno == EINTR) continue;
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

static void on_readable(uv_poll_t *poll, int status, int events) {
  handle_t *h = (handle_t *)poll->data;
  (void)events;
  if (status < 0 || h->closed) return;
  napi_env env = h->env;
  for (int round = 0; round < MAX_ROUNDS && !h->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      riov[i].iov_base = rx_area + (size_t)i * RX_SLOT;
      riov[i].iov_len = RX_SLOT;
      memset(&rmsgs[i].msg_hdr, 0, sizeof rmsgs[i].msg_hdr);
      rmsgs[i].msg_hdr.msg_name = &raddr[i];
      rmsgs[i].msg_hdr.msg_namelen = sizeof raddr[i];
      rmsgs[i].msg_hdr.msg_iov = &riov[i];
      rmsgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do n = recvmmsg(h->fd, rmsgs, BATCH, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return; // EAGAIN: drained; other errors (ICMP reports) need nothing from us
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
    if (n < BATCH) return;
  }
}

// ---- JS API ----

// init(rx: Buffer(BATCH*RX_SLOT), meta: Buffer(BATCH*8), addrs: Buffer(BATCH*ADDR_SLOT)) -> { batch, rxSlot, addrSlot }
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_errno(env, "udpbatch.init", EINVAL);
  void *p[3];
  size_t len[3];
  size_t need[3] = {(size_t)BATCH * RX_SLOT, (size_t)BATCH * 8, (size_t)BATCH * ADDR_SLOT};
  for (int i = 0; i < 3; i++) {
    CHECK(napi_get_buffer_info(env, argv[i], &p[i], &len[i]));
    if (len[i] < need[i]) {
      napi_throw_range_error(env, NULL, "udpbatch.init: buffer too small");
      return NULL;
    }
  }
  for (int i = 0; i < 3; i++) {
    if (initialised) napi_delete_reference(env, rx_refs[i]);
    CHECK(napi_create_reference(env, argv[i], 1, &rx_refs[i]));
  }
  rx_area = p[0];
  rx_meta = p[1];
  rx_addrs = p[2];
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

// open(fd, onBatch(count)) -> handle. The fd is duplicated: the caller closes its own.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
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
  h->fd = own;
  h->env = env;
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

// socket(family 4|6) -> fd bound to a kernel-chosen port on the wildcard address (for upstream queries).
static napi_value js_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fam;
  if (!get_args(env, info, 1, argv) || !int32_arg(env, argv[0], &fam)) return NULL;
  int af = fam == 6 ? AF_INET6 : AF_INET;
  int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "udpbatch.socket", errno);
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

// closeFd(fd): for a socket() that was never opened.
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !int32_arg(env, argv[0], &fd)) return NULL;
  if (fd > 2) close(fd);
  return undefined(env);
}

static int buffer_arg(napi_env env, napi_value v, void **data, size_t *len) {
  if (napi_get_buffer_info(env, v, data, len) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, "udpbatch: expected a Buffer");
  return 0;
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
  int32_t cv[4] = {BATCH, RX_SLOT, ADDR_SLOT, TX_SLOT};
  const char *cn[4] = {"batch", "rxSlot", "addrSlot", "txSlot"};
  for (int i = 0; i < 4; i++) {
    napi_create_int32(env, cv[i], &v);
    napi_set_named_property(env, consts, cn[i], v);
  }
  napi_set_named_property(env, exports, "constants", consts);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
