/*
 * tg_buf: a growable byte buffer with a hard cap (see tg_buf.h). Invariants: len <= cap;
 * alloc == 0 or alloc >= len + 1 with ptr[len] == 0; alloc never exceeds cap + 1.
 */
#include "tg_buf.h"

#include "tg_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_ALLOC 64

void tg_buf_init(tg_buf *b, size_t cap)
{
  tg_buf_init_hint(b, cap, MIN_ALLOC);
}

void tg_buf_init_hint(tg_buf *b, size_t cap, size_t first)
{
  b->ptr = NULL;
  b->len = 0;
  b->alloc = 0;
  b->cap = cap;
  b->first = first ? first : MIN_ALLOC;
}

void tg_buf_free(tg_buf *b)
{
  if (!b)
    return;
  free(b->ptr);
  b->ptr = NULL;
  b->len = 0;
  b->alloc = 0;
}

void tg_buf_reset(tg_buf *b)
{
  b->len = 0;
  if (b->ptr)
    b->ptr[0] = 0;
}

int tg_buf_reserve(tg_buf *b, size_t n)
{
  size_t need, size;
  char *p;
  if (__builtin_add_overflow(b->len, n, &need) || need > b->cap || need == (size_t)-1)
    return TG_ETOOBIG;
  if (need < b->alloc) /* room for need bytes and the NUL */
    return 0;
  size = b->alloc ? b->alloc : b->first ? b->first : MIN_ALLOC; /* first == 0: zeroed */
  while (size <= need && size <= b->cap / 2)
    size *= 2;
  if (size <= need || size > b->cap)
    size = b->cap < (size_t)-1 ? b->cap + 1 : need + 1; /* the cap: the last growth */
  p = realloc(b->ptr, size);
  if (!p)
    return TG_ENOMEM;
  if (!b->ptr)
    p[0] = 0;
  b->ptr = p;
  b->alloc = size;
  return 0;
}

char *tg_buf_end(tg_buf *b)
{
  return b->ptr ? b->ptr + b->len : NULL;
}

size_t tg_buf_room(const tg_buf *b)
{
  return b->alloc ? b->alloc - b->len - 1 : 0;
}

void tg_buf_commit(tg_buf *b, size_t n)
{
  if (!n)
    return;
  b->len += n;
  b->ptr[b->len] = 0;
}

int tg_buf_add(tg_buf *b, const void *p, size_t n)
{
  int rc;
  if (!n)
    return 0;
  if ((rc = tg_buf_reserve(b, n)) != 0)
    return rc;
  memcpy(b->ptr + b->len, p, n);
  tg_buf_commit(b, n);
  return 0;
}

int tg_buf_addstr(tg_buf *b, const char *s)
{
  return tg_buf_add(b, s, strlen(s));
}

int tg_buf_vprintf(tg_buf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  int n, rc;
  va_copy(ap2, ap);
  n = vsnprintf(tg_buf_end(b), tg_buf_room(b) + (b->alloc ? 1 : 0), fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return TG_EINVAL;
  if ((size_t)n > tg_buf_room(b)) {
    if ((rc = tg_buf_reserve(b, (size_t)n)) != 0) {
      if (b->ptr)
        b->ptr[b->len] = 0; /* undo a partial write of the first attempt */
      return rc;
    }
    n = vsnprintf(tg_buf_end(b), tg_buf_room(b) + 1, fmt, ap);
    if (n < 0) {
      b->ptr[b->len] = 0;
      return TG_EINVAL;
    }
  }
  tg_buf_commit(b, (size_t)n);
  return 0;
}

int tg_buf_printf(tg_buf *b, const char *fmt, ...)
{
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = tg_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void tg_buf_truncate(tg_buf *b, size_t n)
{
  if (n >= b->len)
    return;
  b->len = n;
  b->ptr[n] = 0;
}

const char *tg_buf_str(const tg_buf *b)
{
  return b->ptr ? b->ptr : "";
}

char *tg_buf_take(tg_buf *b, size_t *len)
{
  char *p = b->ptr;
  if (len)
    *len = b->len;
  if (!p)
    p = calloc(1, 1);
  b->ptr = NULL;
  b->len = 0;
  b->alloc = 0;
  return p;
}
