/*
 * tg_composio_page: decodes one 2xx page of GET /api/v3/connected_accounts (composio-api.md
 * 2.2; items are ConnectedAccount objects, 2.3) without building a JSON tree.
 *
 * The list answer is the hottest thing the gateway parses (one per admission check). A jansson
 * tree of a ~550-byte item costs ~35 allocations and ~9 µs to build and free; yajl's event
 * parser (Debian libyajl 2.1) reads the same page in ~1.5 µs, and only the fields
 * tg_composio_account carries are kept. The result is the same as decoding a jansson tree of
 * the body with tg_composio's rules (checked by tests/fuzz/fuzz_composio_page.c):
 *   - the body is one JSON object (no trailing data, no comments); strings are valid UTF-8 and
 *     contain no NUL (jansson rejects \u0000 by default, so does this decoder);
 *   - a repeated key counts once, with its last value (jansson keeps the last);
 *   - "items" must be an array; each element must be an object with a non-empty string "id"
 *     and "status"; status_reason, user_id, toolkit.slug and auth_config.id are taken when they
 *     are strings (else NULL); is_disabled and auth_refresh_required (top level, or in
 *     state.val) are 1 only when they are JSON true;
 *   - "next_cursor" is taken when it is a string, else NULL.
 * Deliberate differences, both on the lenient side and both for fields nobody reads: numbers
 * are not converted, so an integer too large for jansson's json_int_t is accepted; nesting
 * deeper than jansson's 2048 levels is accepted (yajl's stack grows with the input, which
 * tg_http caps at 4 MiB). One difference on the strict side: a raw NUL byte between tokens,
 * which jansson 2.14 skips, is refused (JSON allows none: RFC 8259 section 2).
 */
#ifndef TG_COMPOSIO_PAGE_H
#define TG_COMPOSIO_PAGE_H

#include "tg_composio.h"

#include <stddef.h>

typedef struct tg_composio_page {
  tg_composio_account *items; /* n_items accounts; their strings point into the page */
  size_t n_items;
  const char *next_cursor; /* NULL when absent or not a string */
  char *strings;           /* owned: every kept string, NUL-terminated */
} tg_composio_page;

/*
 * Decodes body (len bytes, need not be NUL-terminated) into *out, which the caller releases with
 * tg_composio_page_clear() whatever the result. Returns 0; TG_EPROTO with *why set to a static
 * message ("composio answered with a body that is not a JSON object", "composio list response
 * has no items array", "composio listed a connected account without id or status"); or
 * TG_ENOMEM. On failure *out holds nothing.
 */
int tg_composio_page_decode(const char *body, size_t len, tg_composio_page *out, const char **why);

/* Releases what a decode stored in p and zeroes it (NULL-safe, idempotent). */
void tg_composio_page_clear(tg_composio_page *p);

#endif
