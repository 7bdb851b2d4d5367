/*
 * Differential libFuzzer target for common/tg_composio_page.c: every input is decoded by the
 * event-parser decoder and by the jansson reference (composio_page_oracle.h). When jansson
 * accepts the body, both must agree exactly: the same verdict, and on success the same
 * accounts field by field and the same next_cursor. When jansson refuses it, the decoder may
 * accept only what its header documents as lenient (numbers, depth); it must not crash or leak.
 * A raw NUL byte (which jansson skips between tokens) must always be refused.
 */
#include "composio_page_oracle.h"
#include "tg_composio_page.h"
#include "tg_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  tg_composio_page page;
  tg_composio_account *ref = NULL;
  json_t *tree = NULL;
  const char *why = NULL, *cursor = NULL;
  size_t n = 0;
  int rc = tg_composio_page_decode((const char *)data, size, &page, &why);
  int o = oracle_page((const char *)data, size, &tree, &ref, &n, &cursor);

  if (rc != 0 && rc != TG_EPROTO && rc != TG_ENOMEM)
    abort();
  if (rc == TG_EPROTO && !why)
    abort();
  if (memchr(data, 0, size)) {
    /* JSON has no raw NUL anywhere (RFC 8259; \u0000 is not raw); jansson skips one between
     * tokens, the decoder refuses it (see tg_composio_page.h). */
    if (rc == 0)
      abort();
  } else if (o == 0) {
    if (rc != 0 || page.n_items != n || !same_str(page.next_cursor, cursor))
      abort();
    for (size_t i = 0; i < n; i++)
      if (!same_account(&page.items[i], &ref[i]))
        abort();
  } else if (o == 1 && rc == 0) {
    abort(); /* jansson parsed it and the rules refuse it: so must the decoder */
  }
  tg_composio_page_clear(&page);
  free(ref);
  json_decref(tree);
  return 0;
}
