/*
 * tg_http: curl multi on libuv.
 *
 * Invariants:
 * - Every uv handle we create (the timer, each socket's poll) is counted in c->open_handles and
 *   uncounted in its close callback; the client is freed only when the count reaches 0 after
 *   tg_http_client_close().
 * - curl is never re-entered from its own callbacks: the timer function only (re)arms a uv
 *   timer, and on_data (the only user code curl calls) may not cancel (tg_http.h), so
 *   tg_http_cancel always runs outside curl and frees the transfer at once.
 * - A transfer is in c->transfers from tg_http_send() until it is completed or removed.
 */
#include "tg_http.h"
#include "tg_buf.h"
#include "tg_err.h"
#include "tg_log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_MAX_BODY (8u << 20)
#define BODY_FIRST 4096 /* first allocation of a response body */
#define MAX_HEADER_BYTES (64u << 10)
#define SPARE_EASY 32     /* finished easy handles kept for reuse (curl_easy_reset) */
#define MAX_CONNS_KEPT 64 /* idle connections the multi handle keeps (CURLMOPT_MAXCONNECTS) */

struct tg_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  int open_handles;
  int closing;
  void (*on_closed)(void *);
  void *closed_arg;
  tg_http_transfer *transfers; /* doubly linked */
  struct sock_ctx *socks;      /* doubly linked, polls not yet closing */
  CURL *spare[SPARE_EASY];     /* finished easy handles: reused, which spares curl_easy_init's
                                  allocations (handle, receive buffer) per request */
  int n_spare;
  const tg_egress *egress;       /* borrowed; NULL: no check */
  struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO entries, or NULL */
  char *ca_file;                 /* CURLOPT_CAINFO, or NULL */
};

struct tg_http_transfer {
  tg_http_client *c;
  CURL *easy;
  struct curl_slist *headers;
  char *req_body;
  size_t req_body_len; /* bytes, for tg_http_response.not_sent */
  tg_http_done_cb done_cb;
  tg_http_data_cb on_data;
  void *arg;
  tg_buf body;              /* the response body, capped at tg_http_request.max_body */
  size_t resp_header_bytes; /* of the latest response, for MAX_HEADER_BYTES */
  int abort_err;
  int completing; /* done_cb is running: the caller frees t when it returns */
  char *host;     /* the URL's host name, for the egress policy's host entries */
  int denied;     /* sockets the egress policy refused */
  int opened;     /* sockets it let through */
  char errbuf[CURL_ERROR_SIZE];
  tg_http_transfer *prev, *next;
};

typedef struct sock_ctx {
  tg_http_client *c;
  uv_poll_t poll;
  curl_socket_t fd;
  struct sock_ctx *prev, *next; /* c->socks: open polls, closed on client close */
} sock_ctx;

static void on_handle_closed(uv_handle_t *h);
static void check_done(tg_http_client *c);

static void close_sock(sock_ctx *s)
{
  tg_http_client *c = s->c;
  if (s->prev)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void unlink_transfer(tg_http_transfer *t)
{
  tg_http_client *c = t->c;
  if (t->prev)
    t->prev->next = t->next;
  else if (c->transfers == t)
    c->transfers = t->next;
  if (t->next)
    t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

static void free_transfer(tg_http_transfer *t)
{
  if (!t)
    return;
  if (t->easy) {
    tg_http_client *c = t->c;
    curl_multi_remove_handle(c->multi, t->easy);
    if (!c->closing && c->n_spare < SPARE_EASY)
      c->spare[c->n_spare++] = t->easy;
    else
      curl_easy_cleanup(t->easy);
  }
  curl_slist_free_all(t->headers);
  free(t->req_body);
  free(t->host);
  tg_buf_free(&t->body);
  free(t);
}

/* Only caps the response head: curl keeps the headers itself (tg_http_header reads them with
 * curl_easy_header), and before 8.3.0 it set no limit on what it keeps (CVE-2023-38039). */
static size_t on_header(char *buf, size_t size, size_t n, void *userp)
{
  tg_http_transfer *t = userp;
  size_t len = size * n;

  /* A new status line starts a new response (after 100 Continue or a redirect). */
  if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
    t->resp_header_bytes = 0;
    return len;
  }
  t->resp_header_bytes += len;
  if (t->resp_header_bytes > MAX_HEADER_BYTES) {
    t->abort_err = TG_ETOOBIG;
    return 0;
  }
  return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *userp)
{
  tg_http_transfer *t = userp;
  size_t len = size * n;
  int rc;

  if (t->on_data) {
    rc = t->on_data(t->arg, t, buf, len);
    if (rc) {
      t->abort_err = rc;
      return 0;
    }
    return len;
  }
  if ((rc = tg_buf_add(&t->body, buf, len)) != 0) {
    t->abort_err = rc; /* TG_ETOOBIG past max_body, or TG_ENOMEM */
    return 0;
  }
  return len;
}

static int map_curl(CURLcode rc, const tg_http_transfer *t)
{
  switch (rc) {
  case CURLE_OK:
    return 0;
  case CURLE_OPERATION_TIMEDOUT:
    return TG_ETIMEDOUT;
  case CURLE_WRITE_ERROR:
  case CURLE_ABORTED_BY_CALLBACK:
    return t->abort_err ? t->abort_err : TG_EIO;
  case CURLE_OUT_OF_MEMORY:
    return TG_ENOMEM;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    return TG_EINVAL;
  default:
    return t->abort_err ? t->abort_err : TG_EIO;
  }
}

/* tg_http_response.not_sent: 1 when the failed request certainly never reached the peer.
 * No connection (these codes are only returned before anything was written), or the body was
 * not fully written: the peer cannot have a complete Content-Length request to act on. Caveat:
 * curl itself re-sends a request once on a fresh connection when a reused one died before any
 * answer; this describes the last attempt only. */
static int request_not_sent(tg_http_transfer *t, CURLcode rc)
{
  curl_off_t up = 0;
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
      rc == CURLE_COULDNT_RESOLVE_PROXY)
    return 1;
  if (!t->req_body || !t->req_body_len)
    return 0; /* no body to count: cannot tell */
  if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK)
    return 0;
  return up >= 0 && (size_t)up < t->req_body_len;
}

static void complete(tg_http_transfer *t, CURLcode rc)
{
  tg_http_response resp = {0};
  long status = 0;
  double secs = 0;
  int err = map_curl(rc, t);

  if (err && t->denied && !t->opened)
    err = TG_EEGRESS; /* every address was refused (not: one refused, another unreachable) */
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &secs);
  if (err && err != TG_ETOOBIG && err != TG_EEGRESS && !t->abort_err) {
    char *url = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    tg_debug("http_transfer_failed", "{s:s, s:s, s:s}", "curl_error",
             t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc), "error", tg_errname(err), "host",
             url && strstr(url, "://") ? strstr(url, "://") + 3 : "?");
  }
  resp.status = status;
  resp.body = tg_buf_str(&t->body);
  resp.body_len = tg_buf_len(&t->body);
  resp.total_ms = secs * 1000.0;
  resp.t = t;
  if (err && status == 0)
    resp.not_sent = request_not_sent(t, rc);
  unlink_transfer(t);
  t->completing = 1;
  if (t->done_cb)
    t->done_cb(t->arg, err, &resp);
  free_transfer(t);
}

static void check_done(tg_http_client *c)
{
  CURLMsg *msg;
  int pending;
  while (!c->closing && (msg = curl_multi_info_read(c->multi, &pending))) {
    tg_http_transfer *t = NULL;
    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    complete(t, msg->data.result);
  }
}

static void socket_action(tg_http_client *c, curl_socket_t fd, int flags)
{
  int running;
  if (c->closing)
    return;
  curl_multi_socket_action(c->multi, fd, flags, &running);
  check_done(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  sock_ctx *s = h->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  socket_action(s->c, s->fd, flags);
}

static void on_timer(uv_timer_t *h)
{
  socket_action(h->data, CURL_SOCKET_TIMEOUT, 0);
}

static void on_handle_closed(uv_handle_t *h)
{
  tg_http_client *c;
  if (h->type == UV_POLL) {
    sock_ctx *s = h->data;
    c = s->c;
    free(s);
  } else {
    c = h->data;
  }
  if (--c->open_handles == 0 && c->closing) {
    void (*cb)(void *) = c->on_closed;
    void *arg = c->closed_arg;
    curl_slist_free_all(c->connect_to);
    free(c->ca_file);
    free(c);
    if (cb)
      cb(arg);
  }
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  tg_http_client *c = userp;
  sock_ctx *s = socketp;
  int events = 0;

  if (what == CURL_POLL_REMOVE) {
    if (s) {
      close_sock(s);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    s->c = c;
    s->fd = fd;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    c->open_handles++;
    s->next = c->socks;
    if (c->socks)
      c->socks->prev = s;
    c->socks = s;
    curl_multi_assign(c->multi, fd, s);
  }
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  tg_http_client *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION of a client with an egress policy: the address here is the one
 * the socket will connect to (after DNS and CONNECT_TO), for every connection curl makes. */
static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
  tg_http_transfer *t = clientp;
  curl_socket_t fd;
  (void)purpose;
  if (!tg_egress_allows(t->c->egress, &addr->addr, t->host)) {
    char ip[64] = "?";
    if (addr->family == AF_INET)
      inet_ntop(AF_INET, &((struct sockaddr_in *)&addr->addr)->sin_addr, ip, sizeof ip);
    else if (addr->family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr->addr)->sin6_addr, ip, sizeof ip);
    tg_warn("egress_denied", "{s:s, s:s, s:s}", "host", t->host ? t->host : "?", "address", ip,
            "class", tg_egress_class_name(tg_egress_classify(&addr->addr)));
    t->denied++;
    return CURL_SOCKET_BAD;
  }
  fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd >= 0)
    t->opened++;
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* The host name of url (lowercase as curl keeps it), malloc'd; NULL when it has none. */
static char *url_host(const char *url)
{
  CURLU *u = curl_url();
  char *h = NULL, *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h) {
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') /* an IPv6 literal: no host entry matches */
      out = strndup(h + 1, n - 2);
    else
      out = strdup(h);
  }
  curl_free(h);
  curl_url_cleanup(u);
  return out;
}

void tg_http_client_set_egress(tg_http_client *c, const tg_egress *policy)
{
  c->egress = policy;
}

int tg_http_client_set_connect_to(tg_http_client *c, const char *list)
{
  struct curl_slist *l = NULL;
  const char *s = list ? list : "";
  while (*s) {
    size_t n = strcspn(s, ","), colons = 0;
    char *e = strndup(s, n);
    struct curl_slist *nl;
    if (!e) {
      curl_slist_free_all(l);
      return TG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
      colons += e[i] == ':';
    if (n > 0 && colons < 3) {
      free(e);
      curl_slist_free_all(l);
      return TG_EINVAL;
    }
    nl = n > 0 ? curl_slist_append(l, e) : l;
    free(e);
    if (!nl) {
      curl_slist_free_all(l);
      return TG_ENOMEM;
    }
    l = nl;
    s += n;
    if (*s == ',')
      s++;
  }
  curl_slist_free_all(c->connect_to);
  c->connect_to = l;
  return 0;
}

int tg_http_client_set_ca_file(tg_http_client *c, const char *path)
{
  char *p = NULL;
  if (path && *path && !(p = strdup(path)))
    return TG_ENOMEM;
  free(c->ca_file);
  c->ca_file = p;
  return 0;
}

static void global_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

int tg_http_client_init(tg_http_client **out, uv_loop_t *loop)
{
  static uv_once_t once = UV_ONCE_INIT;
  tg_http_client *c;

  *out = NULL;
  /* curl_global_init is not thread-safe on 7.88 for every TLS backend: do it once. */
  uv_once(&once, global_init_once);
  c = calloc(1, sizeof *c);
  if (!c)
    return TG_ENOMEM;
  c->loop = loop;
  c->multi = curl_multi_init();
  if (!c->multi) {
    free(c);
    return TG_EIO;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  /* The default cache (4 x the handles added) shrinks whenever transfers finish, closing
   * keep-alive connections that the next burst has to open again. */
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNS_KEPT);
  *out = c;
  return 0;
}

int tg_http_send(tg_http_client *c, const tg_http_request *req, tg_http_done_cb done_cb, void *arg,
                 tg_http_transfer **out)
{
  tg_http_transfer *t;
  const char *method = req->method ? req->method : "GET";

  if (out)
    *out = NULL;
  if (c->closing)
    return TG_ECANCELED;
  if (!req->url)
    return TG_EINVAL;
  t = calloc(1, sizeof *t);
  if (!t)
    return TG_ENOMEM;
  t->c = c;
  t->done_cb = done_cb;
  t->on_data = req->on_data;
  t->arg = arg;
  tg_buf_init_hint(&t->body, req->max_body ? req->max_body : DEFAULT_MAX_BODY, BODY_FIRST);
  if (c->n_spare > 0) {
    t->easy = c->spare[--c->n_spare];
    curl_easy_reset(t->easy); /* every option back to its default; set again below */
  } else {
    t->easy = curl_easy_init();
  }
  if (!t->easy)
    goto nomem;
  for (const char *const *h = req->headers; h && *h; h++) {
    struct curl_slist *n = curl_slist_append(t->headers, *h);
    if (!n)
      goto nomem;
    t->headers = n;
  }
  /* curl adds "Expect: 100-continue" to large POSTs; our peers answer at once, so skip it. */
  {
    struct curl_slist *n = curl_slist_append(t->headers, "Expect:");
    if (!n)
      goto nomem;
    t->headers = n;
  }
  curl_easy_setopt(t->easy, CURLOPT_URL, req->url);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS,
                   req->connect_timeout_ms ? req->connect_timeout_ms : 5000L);
  curl_easy_setopt(t->easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
  if (c->connect_to)
    curl_easy_setopt(t->easy, CURLOPT_CONNECT_TO, c->connect_to);
  if (c->ca_file)
    curl_easy_setopt(t->easy, CURLOPT_CAINFO, c->ca_file);
  if (c->egress) {
    t->host = url_host(req->url); /* NULL for a malformed URL: curl refuses it anyway */
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PROXY, ""); /* the check is on the destination itself */
  }
  if (strcmp(method, "GET") != 0 || req->body) {
    if (req->body) {
      t->req_body = malloc(req->body_len + 1);
      if (!t->req_body)
        goto nomem;
      memcpy(t->req_body, req->body, req->body_len);
      t->req_body[req->body_len] = 0;
      t->req_body_len = req->body_len;
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->req_body);
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(method, "POST") == 0) {
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
  }
  if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK)
    goto nomem;
  t->next = c->transfers;
  if (c->transfers)
    c->transfers->prev = t;
  c->transfers = t;
  if (out)
    *out = t;
  return 0;
nomem:
  free_transfer(t);
  return TG_ENOMEM;
}

void tg_http_cancel(tg_http_transfer *t)
{
  if (!t || t->completing)
    return; /* from t's own done_cb: freed when it returns */
  unlink_transfer(t);
  free_transfer(t);
}

long tg_http_status(const tg_http_transfer *t)
{
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

const char *tg_http_header(const tg_http_transfer *t, const char *name)
{
  struct curl_header *h;
  /* request -1: the latest response (not a 100 Continue or a redirect before it). The value
   * points into curl's store of this transfer's headers, which lives until the next transfer
   * on the handle; the last of repeated fields wins, as before. */
  if (curl_easy_header(t->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  if (h->amount > 1 &&
      curl_easy_header(t->easy, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  return h->value;
}

uv_loop_t *tg_http_loop(const tg_http_client *c)
{
  return c->loop;
}

long tg_http_retry_after_ms(const tg_http_transfer *t)
{
  const long max_ms = 86400L * 1000;
  const char *v = tg_http_header(t, "Retry-After");
  char *end;
  long secs;
  time_t when, now;

  if (!v || !*v)
    return -1;
  if (*v >= '0' && *v <= '9') {
    secs = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
      end++;
    if (*end || secs < 0)
      return -1;
    return secs > max_ms / 1000 ? max_ms : secs * 1000;
  }
  when = curl_getdate(v, NULL);
  if (when == (time_t)-1)
    return -1;
  now = time(NULL);
  if (when <= now)
    return 0;
  return when - now > max_ms / 1000 ? max_ms : (long)(when - now) * 1000;
}

size_t tg_http_active(const tg_http_client *c)
{
  size_t n = 0;
  for (const tg_http_transfer *t = c->transfers; t; t = t->next)
    n++;
  return n;
}

void tg_http_client_close(tg_http_client *c, void (*on_closed)(void *), void *arg)
{
  if (!c || c->closing)
    return;
  c->closing = 1;
  c->on_closed = on_closed;
  c->closed_arg = arg;
  while (c->transfers) {
    tg_http_transfer *t = c->transfers;
    tg_http_response resp = {.body = "", .t = t};
    unlink_transfer(t);
    t->completing = 1;
    if (t->done_cb)
      t->done_cb(t->arg, TG_ECANCELED, &resp);
    free_transfer(t);
  }
  /* curl_multi_cleanup may report CURL_POLL_REMOVE for cached connections: polls close then. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->n_spare > 0)
    curl_easy_cleanup(c->spare[--c->n_spare]);
  while (c->socks)
    close_sock(c->socks);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}
