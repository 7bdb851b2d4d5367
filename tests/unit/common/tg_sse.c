/* Unit tests for common/tg_sse.c: WHATWG event-stream parsing over arbitrary chunking. */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 16
#define FEED_STR(p, lit) tg_sse_feed((p), (lit), sizeof(lit) - 1)

typedef struct rec {
  int n;
  char type[MAX_EVENTS][64];
  char data[MAX_EVENTS][256];
  size_t len[MAX_EVENTS];
  char id[MAX_EVENTS][64];
  int stop_at; /* return 7 on this event number (1-based), 0 = never */
} rec;

static int on_event(void *arg, const tg_sse_event *ev)
{
  rec *r = arg;
  assert_true(r->n < MAX_EVENTS);
  snprintf(r->type[r->n], sizeof r->type[0], "%s", ev->type);
  assert_true(ev->data_len < sizeof r->data[0]);
  memcpy(r->data[r->n], ev->data, ev->data_len);
  r->data[r->n][ev->data_len] = 0;
  r->len[r->n] = ev->data_len;
  snprintf(r->id[r->n], sizeof r->id[0], "%s", ev->id);
  r->n++;
  return r->stop_at == r->n ? 7 : 0;
}

/* Feeds s in pieces of `step` bytes (0 = all at once). */
static int feed_steps(tg_sse_parser *p, const char *s, size_t len, size_t step)
{
  size_t off = 0;
  if (!step)
    return tg_sse_feed(p, s, len);
  while (off < len) {
    size_t n = len - off < step ? len - off : step;
    int rc = tg_sse_feed(p, s + off, n);
    if (rc)
      return rc;
    off += n;
  }
  return 0;
}

static void test_multiline_data(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  const char *s = "event: message\ndata: {\"a\":\ndata:1}\n\ndata:second\n\n";
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, s, strlen(s)), 0);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.type[0], "message");
  assert_string_equal(r.data[0], "{\"a\":\n1}");
  assert_string_equal(r.type[1], "message"); /* default type */
  assert_string_equal(r.data[1], "second");
  tg_sse_free(&p);
}

static void test_line_endings(void **state)
{
  /* The same two events with CRLF, CR, LF and mixed line ends, fed at once and byte by byte. */
  const char *variants[] = {
      "event: a\r\ndata: x\r\ndata: y\r\n\r\ndata: z\r\n\r\n",
      "event: a\rdata: x\rdata: y\r\rdata: z\r\r",
      "event: a\ndata: x\ndata: y\n\ndata: z\n\n",
      "event: a\r\ndata: x\rdata: y\n\r\ndata: z\r\r",
  };
  for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
    for (size_t step = 0; step <= 1; step++) {
      rec r = {0};
      tg_sse_parser p;
      tg_sse_init(&p, 0, on_event, &r);
      assert_int_equal(feed_steps(&p, variants[v], strlen(variants[v]), step), 0);
      assert_int_equal(r.n, 2);
      assert_string_equal(r.type[0], "a");
      assert_string_equal(r.data[0], "x\ny");
      assert_string_equal(r.data[1], "z");
      tg_sse_free(&p);
    }
}

static void test_cr_lf_split_across_feeds(void **state)
{
  /* "data: x\r" | "\ndata: y\r" | "\n\r" | "\n": CRLF pairs split across feeds are one line end
   * each, so this is ONE event "x\ny"; if the LF were a second line end, "x" alone would fire. */
  rec r = {0};
  tg_sse_parser p;
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, "data: x\r", 8), 0);
  assert_int_equal(tg_sse_feed(&p, "\ndata: y\r", 9), 0);
  assert_int_equal(r.n, 0);
  assert_int_equal(tg_sse_feed(&p, "\n\r", 2), 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(tg_sse_feed(&p, "\n", 1), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.data[0], "x\ny");
  /* A lone CR at the end of a feed followed by text is a line end too. */
  assert_int_equal(tg_sse_feed(&p, "data: q\r", 8), 0);
  assert_int_equal(tg_sse_feed(&p, "\r", 1), 0);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.data[1], "q");
  tg_sse_free(&p);
}

static void test_comments_and_fields(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  const char *s = ": keep-alive\n:another\ndata\ndata\n\n" /* field without colon: empty value */
                  "data:no-space\ndata:  two spaces\n\n"   /* only one space stripped */
                  "unknown: x\ndata: y\n\n";
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, s, strlen(s)), 0);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.len[0], 1);
  assert_string_equal(r.data[0], "\n");
  assert_string_equal(r.data[1], "no-space\n two spaces");
  assert_string_equal(r.data[2], "y");
  tg_sse_free(&p);
}

static void test_priming_event_updates_id(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  const char *prime = "id: c5f0\ndata: \n\n";
  const char *msg = "event: message\nid: 443b\ndata: {}\n\n";
  tg_sse_init(&p, 0, on_event, &r);
  assert_string_equal(tg_sse_last_event_id(&p), "");
  assert_int_equal(tg_sse_feed(&p, prime, strlen(prime)), 0);
  assert_int_equal(r.n, 0);
  assert_string_equal(tg_sse_last_event_id(&p), "c5f0");
  /* An id without dispatch (no blank line yet) is not the last event id. */
  assert_int_equal(tg_sse_feed(&p, "id: later\n", 10), 0);
  assert_string_equal(tg_sse_last_event_id(&p), "c5f0");
  assert_int_equal(tg_sse_feed(&p, "\n", 1), 0);
  assert_string_equal(tg_sse_last_event_id(&p), "later");
  assert_int_equal(tg_sse_feed(&p, msg, strlen(msg)), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.id[0], "443b");
  /* An id containing NUL is ignored; the id persists across events. */
  assert_int_equal(tg_sse_feed(&p, "id: a\0b\ndata: z\n\n", 17), 0);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.id[1], "443b");
  tg_sse_free(&p);
}

static void test_retry(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_retry_ms(&p), -1);
  assert_int_equal(FEED_STR(&p, "retry: 500\n\n"), 0);
  assert_int_equal(tg_sse_retry_ms(&p), 500);
  assert_int_equal(FEED_STR(&p, "retry: 5x0\nretry: -1\nretry:\n\n"), 0);
  assert_int_equal(tg_sse_retry_ms(&p), 500);
  assert_int_equal(FEED_STR(&p, "retry:1200\n"), 0);
  assert_int_equal(tg_sse_retry_ms(&p), 1200);
  assert_int_equal(r.n, 0);
  tg_sse_free(&p);
}

static void test_byte_by_byte(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  const char *s =
      "id: 1\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\r\n"
      "\r\n: ping\r\nid: 2\r\ndata: line1\r\ndata: line2\r\n\r\n";
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(feed_steps(&p, s, strlen(s), 1), 0);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.data[0], "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}");
  assert_string_equal(r.id[0], "1");
  assert_string_equal(r.data[1], "line1\nline2");
  assert_string_equal(r.id[1], "2");
  tg_sse_free(&p);
}

static void test_bom(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  const char *s = "\xEF\xBB\xBF"
                  "data: a\n\n";
  /* Split inside the BOM: still skipped. */
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(feed_steps(&p, s, strlen(s), 1), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.data[0], "a");
  tg_sse_free(&p);
  /* Only at the start: a BOM later is part of the field name, so the line is ignored. */
  memset(&r, 0, sizeof r);
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p,
                               "data: b\n\n\xEF\xBB\xBF"
                               "data: c\n\n",
                               21),
                   0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.data[0], "b");
  tg_sse_free(&p);
  /* A partial BOM-like prefix that is not a BOM is kept as data. */
  memset(&r, 0, sizeof r);
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, "\xEF", 1), 0);
  assert_int_equal(tg_sse_feed(&p, "X\n\ndata: d\n\n", 12), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.data[0], "d");
  tg_sse_free(&p);
}

static void test_cap(void **state)
{
  rec r = {0};
  tg_sse_parser p;
  char big[200];
  memset(big, 'x', sizeof big);
  tg_sse_init(&p, 64, on_event, &r);
  /* Fits: 40 bytes of data. */
  assert_int_equal(tg_sse_feed(&p, "data: ", 6), 0);
  assert_int_equal(tg_sse_feed(&p, big, 40), 0);
  assert_int_equal(tg_sse_feed(&p, "\n\n", 2), 0);
  assert_int_equal(r.n, 1);
  /* Over the cap across several data lines (each under it), fed in pieces. */
  assert_int_equal(tg_sse_feed(&p, "data: ", 6), 0);
  assert_int_equal(tg_sse_feed(&p, big, 30), 0);
  assert_int_equal(tg_sse_feed(&p, "\ndata: ", 7), 0);
  assert_int_equal(tg_sse_feed(&p, big, 30), TG_ETOOBIG);
  /* Sticky. */
  assert_int_equal(tg_sse_feed(&p, "\n\n", 2), TG_ETOOBIG);
  assert_int_equal(r.n, 1);
  tg_sse_free(&p);
  /* One endless comment line is capped too. */
  tg_sse_init(&p, 64, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, ":", 1), 0);
  assert_int_equal(tg_sse_feed(&p, big, sizeof big), TG_ETOOBIG);
  tg_sse_free(&p);
}

static void test_callback_stops(void **state)
{
  rec r = {.stop_at = 1};
  tg_sse_parser p;
  const char *s = "data: a\n\ndata: b\n\n";
  tg_sse_init(&p, 0, on_event, &r);
  assert_int_equal(tg_sse_feed(&p, s, strlen(s)), 7);
  assert_int_equal(r.n, 1);
  assert_int_equal(tg_sse_feed(&p, s, strlen(s)), 7);
  assert_int_equal(r.n, 1);
  tg_sse_free(&p);
  tg_sse_free(NULL);
}

TG_UNIT_MAIN(cmocka_unit_test(test_multiline_data), cmocka_unit_test(test_line_endings),
             cmocka_unit_test(test_cr_lf_split_across_feeds),
             cmocka_unit_test(test_comments_and_fields),
             cmocka_unit_test(test_priming_event_updates_id), cmocka_unit_test(test_retry),
             cmocka_unit_test(test_byte_by_byte), cmocka_unit_test(test_bom),
             cmocka_unit_test(test_cap), cmocka_unit_test(test_callback_stops))
