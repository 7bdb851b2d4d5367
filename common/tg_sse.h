/*
 * tg_sse: incremental Server-Sent Events parser (WHATWG HTML "Server-sent events",
 * §9.2.6 "Interpreting an event stream",
 * https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 * Feed the body bytes as they arrive, in chunks of any size; every complete event is handed to
 * the callback. Lines end in CRLF, LF or CR (a CR ending one chunk followed by an LF starting the
 * next is one line end). A UTF-8 BOM at the very start of the stream is skipped. Empty-data
 * events (no data line, or data that is empty once joined; the latter is a deliberate deviation
 * from WHATWG, which would fire an event with data "") are not dispatched, but their `id` still
 * becomes the last event id (MCP priming events, see ../shared/reference/mcp-client.md A.3/A.4).
 * The parser never interprets the data.
 *
 * Memory: the parser owns growable buffers for the current line and the pending event, capped
 * by max_event_bytes (line + pending data together). The struct may be embedded; its fields are
 * private.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include "tg_buf.h"

#include <stddef.h>

/* One dispatched event; every pointer is valid only during the callback. */
typedef struct tg_sse_event {
  const char *type; /* the `event` field, "message" when absent; NUL-terminated */
  const char *data; /* data lines joined with '\n', final '\n' removed; NUL-terminated, may
                       contain NUL bytes (use data_len) */
  size_t data_len;  /* bytes, without the terminating NUL */
  const char *id;   /* the last event id after this event ("" if none ever seen) */
  int own_id;       /* 1 when this event had its own `id` field (else id is inherited) */
} tg_sse_event;

/* Returns 0 to go on; any nonzero value stops the feed, which returns it. */
typedef int (*tg_sse_event_cb)(void *arg, const tg_sse_event *ev);

typedef struct tg_sse_parser {
  size_t max_event; /* cap in bytes on current line + pending data + event type */
  tg_sse_event_cb on_event;
  void *arg;
  tg_buf line;     /* the line being assembled (without its line end) */
  tg_buf data;     /* pending data, each line followed by '\n' */
  tg_buf type;     /* pending event type */
  tg_buf id_buf;   /* WHATWG "last event ID buffer" */
  tg_buf last_id;  /* the last event id string, updated at dispatch */
  long retry_ms;   /* last valid `retry`, -1 if none */
  int after_cr;    /* the previous byte was a CR that ended a line */
  int bom_seen;    /* bytes of the UTF-8 BOM matched at stream start (0-3) */
  int started;     /* past the point where a BOM may appear */
  int id_in_event; /* an `id` field was seen since the last dispatch */
  int err;         /* sticky: the code that stopped the parser, 0 while usable */
} tg_sse_parser;

/* Initializes p. max_event_bytes caps one event (and one line); 0 = 4 MiB. on_event(arg, ev) is
 * called synchronously from tg_sse_feed for every dispatched event. No allocation happens here. */
void tg_sse_init(tg_sse_parser *p, size_t max_event_bytes, tg_sse_event_cb on_event, void *arg);

/*
 * Parses len bytes of the stream. Returns 0 when all were consumed; TG_ETOOBIG when an event or
 * line passes the cap; TG_ENOMEM; or the callback's nonzero return value. After a nonzero
 * return the parser is stopped: the rest of buf is dropped and every later feed returns the
 * same code.
 */
int tg_sse_feed(tg_sse_parser *p, const char *buf, size_t len);

/* The last event id (NUL-terminated, "" if none); valid until the next feed or free. */
const char *tg_sse_last_event_id(const tg_sse_parser *p);

/* The reconnection time from the last valid `retry` field in ms, or -1 if none was seen. */
long tg_sse_retry_ms(const tg_sse_parser *p);

/* Frees the buffers (p itself is the caller's). Accepts NULL; p may be re-initialized after. */
void tg_sse_free(tg_sse_parser *p);

#endif
