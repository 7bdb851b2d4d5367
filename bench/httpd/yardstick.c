/*
 * yardstick: the least a libuv + llhttp server does to answer GET /healthz, as the measure for
 * the gateway's raw HTTP path (bench/httpd/run.sh). One loop, one shared read buffer, a parser
 * per connection, the same fixed response to every request, keep-alive. No limits, no timers,
 * no pipelining order beyond what one write per request gives: not a server to deploy.
 */
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct conn {
  uv_tcp_t tcp;
  llhttp_t parser;
} conn;

static const char resp[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 15\r\nConnection: keep-alive\r\n\r\n{\"status\":\"ok\"}";
static llhttp_settings_t settings;
static char rbuf[65536];

static void on_closed(uv_handle_t *h)
{
  free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
  (void)status;
  free(w);
}

static int on_message_complete(llhttp_t *p)
{
  conn *c = p->data;
  uv_write_t *w = malloc(sizeof *w);
  uv_buf_t b = uv_buf_init((char *)resp, sizeof resp - 1);
  if (!w || uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    free(w);
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
  (void)h, (void)hint;
  *out = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  conn *c = s->data;
  if (n < 0 || (n > 0 && llhttp_execute(&c->parser, b->base, (size_t)n) != HPE_OK))
    uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *l, int status)
{
  conn *c = calloc(1, sizeof *c);
  if (status < 0 || !c) {
    free(c);
    return;
  }
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
  uv_tcp_t l;
  struct sockaddr_in a;
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_message_complete;
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 19811, &a);
  uv_tcp_init(uv_default_loop(), &l);
  if (uv_tcp_bind(&l, (struct sockaddr *)&a, 0) || uv_listen((uv_stream_t *)&l, 511, on_connection))
    return 1;
  return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
