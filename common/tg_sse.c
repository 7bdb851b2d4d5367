/*
 * tg_sse: WHATWG event-stream interpretation, one byte state machine over arbitrary chunks.
 *
 * Bytes are appended to the current line until a CR or LF; a CR sets after_cr so that an LF
 * arriving next (even in the next chunk) is swallowed as the second half of CRLF. Each complete
 * line is processed per §9.2.6: blank → dispatch, ':' → comment, otherwise field/value with one
 * leading space of the value stripped. Invariant: line.len + data.len + type.len <= max_event
 * at every step, so the network cannot grow memory past the cap (each tg_buf is also capped at
 * max_event). Buffers keep a NUL after their content so pointers handed out are C strings.
 */
#include "tg_sse.h"
#include "tg_buf.h"
#include "tg_err.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_EVENT (4u << 20)
#define BUF_FIRST 256 /* first allocation of each buffer */

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

/* Replaces the contents of b with n bytes at s. */
static int buf_set(tg_buf *b, const char *s, size_t n)
{
  tg_buf_reset(b);
  return tg_buf_add(b, s, n);
}

void tg_sse_init(tg_sse_parser *p, size_t max_event_bytes, tg_sse_event_cb on_event, void *arg)
{
  memset(p, 0, sizeof *p);
  p->max_event = max_event_bytes ? max_event_bytes : DEFAULT_MAX_EVENT;
  tg_buf_init_hint(&p->line, p->max_event, BUF_FIRST);
  tg_buf_init_hint(&p->data, p->max_event, BUF_FIRST);
  tg_buf_init_hint(&p->type, p->max_event, BUF_FIRST);
  tg_buf_init_hint(&p->id_buf, p->max_event, BUF_FIRST);
  tg_buf_init_hint(&p->last_id, p->max_event, BUF_FIRST);
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
  if (buf_set(&p->last_id, tg_buf_str(&p->id_buf), p->id_buf.len))
    return TG_ENOMEM;
  if (p->data.len)
    tg_buf_truncate(&p->data, p->data.len - 1); /* drop the final '\n' */
  /* WHATWG would still fire an event for "data:" with nothing after it; MCP's priming event
   * (id + empty data, mcp-client.md A.3) carries no message, so empty data is never dispatched. */
  own_id = p->id_in_event;
  p->id_in_event = 0;
  if (p->data.len == 0) {
    tg_buf_reset(&p->type);
    return 0;
  }
  ev.type = p->type.len ? p->type.ptr : "message";
  ev.data = p->data.ptr;
  ev.data_len = p->data.len;
  ev.id = tg_buf_str(&p->last_id);
  ev.own_id = own_id;
  rc = p->on_event ? p->on_event(p->arg, &ev) : 0;
  tg_buf_reset(&p->data);
  tg_buf_reset(&p->type);
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
  const char *line = tg_buf_str(&p->line);
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
    int rc = tg_buf_add(&p->data, value, vlen);
    return rc ? rc : tg_buf_add(&p->data, "\n", 1);
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
  return tg_buf_add(&p->line, s, n);
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
    tg_buf_reset(&p->line);
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
  return tg_buf_str(&p->last_id);
}

long tg_sse_retry_ms(const tg_sse_parser *p)
{
  return p->retry_ms;
}

void tg_sse_free(tg_sse_parser *p)
{
  if (!p)
    return;
  tg_buf_free(&p->line);
  tg_buf_free(&p->data);
  tg_buf_free(&p->type);
  tg_buf_free(&p->id_buf);
  tg_buf_free(&p->last_id);
}
