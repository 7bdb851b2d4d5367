/*
 * tg_sse: WHATWG event-stream interpretation, one byte state machine over arbitrary chunks.
 *
 * Bytes are appended to the current line until a CR or LF; a CR sets after_cr so that an LF
 * arriving next (even in the next chunk) is swallowed as the second half of CRLF. Each complete
 * line is processed per §9.2.6: blank → dispatch, ':' → comment, otherwise field/value with one
 * leading space of the value stripped. Invariant: line.len + data.len + type.len <= max_event
 * at every step, so the network cannot grow memory past the cap. Buffers keep a NUL after their
 * content so pointers handed out are C strings.
 */
#include "tg_sse.h"
#include "tg_err.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_EVENT (4u << 20)

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

static int buf_append(tg_sse_buf *b, const char *s, size_t n)
{
  size_t need;
  if (__builtin_add_overflow(b->len, n + 1, &need))
    return TG_ETOOBIG;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    while (cap < need)
      cap *= 2;
    p = realloc(b->p, cap);
    if (!p)
      return TG_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static int buf_set(tg_sse_buf *b, const char *s, size_t n)
{
  b->len = 0;
  return buf_append(b, s, n);
}

static const char *buf_str(const tg_sse_buf *b)
{
  return b->p ? b->p : "";
}

void tg_sse_init(tg_sse_parser *p, size_t max_event_bytes, tg_sse_event_cb on_event, void *arg)
{
  memset(p, 0, sizeof *p);
  p->max_event = max_event_bytes ? max_event_bytes : DEFAULT_MAX_EVENT;
  p->on_event = on_event;
  p->arg = arg;
  p->retry_ms = -1;
}

static int dispatch(tg_sse_parser *p)
{
  tg_sse_event ev;
  int rc, own_id;

  /* Step 1 of "dispatch the event": the last event ID string takes the buffer's value even
   * when no event fires (this is how an MCP priming event records its id). */
  if (buf_set(&p->last_id, buf_str(&p->id_buf), p->id_buf.len))
    return TG_ENOMEM;
  if (p->data.len)
    p->data.p[--p->data.len] = 0; /* drop the final '\n' */
  /* WHATWG would still fire an event for "data:" with nothing after it; MCP's priming event
   * (id + empty data, mcp-client.md A.3) carries no message, so empty data is never dispatched. */
  own_id = p->id_in_event;
  p->id_in_event = 0;
  if (p->data.len == 0) {
    p->type.len = 0;
    return 0;
  }
  ev.type = p->type.len ? p->type.p : "message";
  ev.data = p->data.p;
  ev.data_len = p->data.len;
  ev.id = buf_str(&p->last_id);
  ev.own_id = own_id;
  rc = p->on_event ? p->on_event(p->arg, &ev) : 0;
  p->data.len = 0;
  p->type.len = 0;
  return rc;
}

static int all_digits(const char *s, size_t n)
{
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int process_line(tg_sse_parser *p)
{
  const char *line = p->line.p ? p->line.p : "";
  size_t n = p->line.len, flen, vlen;
  const char *colon, *value;

  if (n == 0)
    return dispatch(p);
  if (line[0] == ':')
    return 0;
  colon = memchr(line, ':', n);
  if (colon) {
    flen = (size_t)(colon - line);
    value = colon + 1;
    vlen = n - flen - 1;
    if (vlen && *value == ' ') {
      value++;
      vlen--;
    }
  } else {
    flen = n;
    value = "";
    vlen = 0;
  }
#define FIELD_IS(lit) (flen == sizeof lit - 1 && memcmp(line, lit, flen) == 0)
  if (FIELD_IS("event"))
    return buf_set(&p->type, value, vlen);
  if (FIELD_IS("data")) {
    int rc = buf_append(&p->data, value, vlen);
    return rc ? rc : buf_append(&p->data, "\n", 1);
  }
  if (FIELD_IS("id")) {
    if (memchr(value, 0, vlen))
      return 0;
    p->id_in_event = 1;
    return buf_set(&p->id_buf, value, vlen);
  }
  if (FIELD_IS("retry")) {
    if (all_digits(value, vlen)) {
      long v = 0;
      for (size_t i = 0; i < vlen; i++) {
        if (v > (__LONG_MAX__ - 9) / 10) {
          v = __LONG_MAX__;
          break;
        }
        v = v * 10 + (value[i] - '0');
      }
      p->retry_ms = v;
    }
    return 0;
  }
#undef FIELD_IS
  return 0; /* unknown fields are ignored */
}

/* Appends n bytes of line content, enforcing the cap over line + pending event. */
static int add_to_line(tg_sse_parser *p, const char *s, size_t n)
{
  size_t total = p->line.len + p->data.len + p->type.len;
  if (n > p->max_event || total > p->max_event - n)
    return TG_ETOOBIG;
  return buf_append(&p->line, s, n);
}

static int feed(tg_sse_parser *p, const char *buf, size_t len)
{
  size_t i = 0;
  int rc;

  /* A BOM may straddle chunks: hold the matched prefix until it is whole or disproved. */
  while (!p->started && i < len) {
    if ((unsigned char)buf[i] == BOM[p->bom_seen]) {
      i++;
      if (++p->bom_seen == 3)
        p->started = 1;
      continue;
    }
    p->started = 1;
    if (p->bom_seen && (rc = add_to_line(p, (const char *)BOM, (size_t)p->bom_seen)))
      return rc;
  }
  while (i < len) {
    size_t start = i;
    while (i < len && buf[i] != '\r' && buf[i] != '\n')
      i++;
    if (i > start) {
      p->after_cr = 0;
      if ((rc = add_to_line(p, buf + start, i - start)))
        return rc;
    }
    if (i == len)
      break;
    if (buf[i] == '\n' && p->after_cr) {
      p->after_cr = 0; /* second half of a CRLF already handled */
      i++;
      continue;
    }
    p->after_cr = buf[i] == '\r';
    i++;
    rc = process_line(p);
    p->line.len = 0;
    if (rc)
      return rc;
  }
  return 0;
}

int tg_sse_feed(tg_sse_parser *p, const char *buf, size_t len)
{
  if (p->err)
    return p->err;
  p->err = feed(p, buf, len);
  return p->err;
}

const char *tg_sse_last_event_id(const tg_sse_parser *p)
{
  return buf_str(&p->last_id);
}

long tg_sse_retry_ms(const tg_sse_parser *p)
{
  return p->retry_ms;
}

void tg_sse_free(tg_sse_parser *p)
{
  if (!p)
    return;
  free(p->line.p);
  free(p->data.p);
  free(p->type.p);
  free(p->id_buf.p);
  free(p->last_id.p);
  memset(&p->line, 0, sizeof p->line);
  memset(&p->data, 0, sizeof p->data);
  memset(&p->type, 0, sizeof p->type);
  memset(&p->id_buf, 0, sizeof p->id_buf);
  memset(&p->last_id, 0, sizeof p->last_id);
}
