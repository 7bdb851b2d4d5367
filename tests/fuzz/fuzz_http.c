/*
 * libFuzzer target for the gateway's request handling: bytes -> tg_httpd (llhttp, caps,
 * pipelining, chunked bodies) -> a handler doing what the gateway's router does with a request
 * (identity: the bearer token through tg_jwt; the JSON body with JSON_REJECT_DUPLICATES as
 * gw_parse_body; a "definition" member through tg_workflow_validate).
 *
 * Choice: tg_httpd has no connection-less entry point, and adding one would fork its write and
 * close paths; instead the real server runs in-process on 127.0.0.1 and each input is written on
 * one loopback connection followed by a sentinel request (GET /__end); the loop runs until the
 * sentinel is answered, the server closes, or nothing moves for IDLE_ROUNDS polls of 1 ms. The
 * client then resets the connection (SO_LINGER 0, no FIN from us), so no TIME_WAIT piles up on
 * the client side across hundreds of thousands of inputs. The
 * gateway's route table is not linked here (gateway/ is not a library); gw_router.c's matching
 * is a few lines over segments already bounded by tg_httpd's URL cap.
 *
 * Findings are crashes, sanitizer reports, leaks, a hang (libFuzzer -timeout), and any answer
 * that is not an HTTP/1.1 status line.
 */
#define _GNU_SOURCE /* memmem */
#include "tg_err.h"
#include "tg_httpd.h"
#include "tg_jwt.h"
#include "tg_workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t loop;
static tg_httpd *srv;
static struct sockaddr_in addr;

static void on_req(tg_httpd_req *r, void *arg)
{
  static const unsigned char secret[] = "fuzz-secret-0123456789abcdef0123";
  const char *auth = tg_httpd_header(r, "Authorization"), *why;
  char user[129];
  size_t len = 0;
  const char *b = tg_httpd_body(r, &len);
  json_t *v;
  (void)arg;
  if (strcmp(tg_httpd_path(r), "/__end") == 0) {
    tg_httpd_respond(r, 200, NULL, "__END__", 7);
    return;
  }
  if (auth && strncmp(auth, "Bearer ", 7) == 0 &&
      tg_jwt_verify_hs256(auth + 7, strlen(auth + 7), secret, sizeof secret - 1, 1700000000, user,
                          sizeof user, &why) != 0) {
    tg_httpd_respond_error(r, 401, "unauthorized", "bad token");
    return;
  }
  (void)tg_httpd_query(r, "force");
  v = json_loadb(b, len, JSON_REJECT_DUPLICATES, NULL);
  if (len && (!v || !json_is_object(v))) {
    json_decref(v);
    tg_httpd_respond_error(r, 400, "invalid_json", "bad body");
    return;
  }
  if (v && json_object_get(v, "definition")) {
    json_t *errs = tg_workflow_validate(json_object_get(v, "definition"));
    if (errs) {
      json_decref(v);
      tg_httpd_respond_json(r, 422, NULL,
                            json_pack("{s:s, s:o}", "error", "invalid", "errors", errs));
      return;
    }
  }
  json_decref(v);
  tg_httpd_respond(r, 200, NULL, "{}", 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  tg_httpd_limits lim;
  (void)argc, (void)argv;
  tg_httpd_limits_default(&lim);
  lim.max_body_bytes = 64 * 1024;
  lim.header_timeout_ms = lim.body_timeout_ms = lim.idle_timeout_ms = 2000;
  uv_loop_init(&loop);
  if (tg_httpd_start(&srv, &loop, "127.0.0.1", 0, &lim, on_req, NULL))
    abort();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)tg_httpd_port(srv));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return 0;
}

/* Checks that out holds only complete-looking responses: each starts "HTTP/1.1 ddd ". */
static void check_out(const char *out, size_t n)
{
  if (n == 0)
    return; /* closed without an answer: allowed (e.g. EOF mid-request) */
  if (n < 13 || memcmp(out, "HTTP/1.1 ", 9) != 0 || out[12] != ' ')
    abort();
  for (int i = 9; i < 12; i++)
    if (out[i] < '0' || out[i] > '9')
      abort();
}

#define IDLE_ROUNDS 20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char end[] = "\r\n\r\nGET /__end HTTP/1.1\r\nHost: x\r\n\r\n";
  static char out[1 << 16];
  size_t n_out = 0, off = 0, total = size + sizeof end - 1;
  int fd = socket(AF_INET, SOCK_STREAM, 0), eof = 0, idle = 0;
  struct linger lg = {1, 0};
  if (fd < 0)
    abort();
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
    abort();
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (!eof && idle < IDLE_ROUNDS) {
    struct pollfd p = {fd, POLLIN | (off < total ? POLLOUT : 0), 0};
    int moved = uv_run(&loop, UV_RUN_NOWAIT) && 0;
    if (poll(&p, 1, 1) < 0) {
      if (errno != EINTR) /* libFuzzer's timeout alarm interrupts polls */
        abort();
      continue;
    }
    if ((p.revents & POLLOUT) && off < total) {
      const char *src = off < size ? (const char *)data + off : end + (off - size);
      size_t len = off < size ? size - off : total - off;
      ssize_t w = send(fd, src, len, MSG_NOSIGNAL);
      if (w > 0) {
        off += (size_t)w;
        moved = 1;
      } else if (w < 0 && errno != EAGAIN) {
        off = total; /* the server closed: stop writing */
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, out + n_out, sizeof out - 1 - n_out, 0);
      if (r > 0) {
        n_out += (size_t)r;
        out[n_out] = 0;
        moved = 1;
        if (n_out + 1 >= sizeof out || memmem(out, n_out, "__END__", 7))
          eof = 1;
      } else if (r == 0 || errno != EAGAIN) {
        eof = 1;
      }
    }
    idle = moved ? 0 : idle + 1;
  }
  check_out(out, n_out);
  close(fd); /* RST */
  for (int i = 0; i < 4; i++)
    uv_run(&loop, UV_RUN_NOWAIT); /* the server sees the reset and frees the connection */
  return 0;
}
