/*
 * tg_buf: the one growable byte buffer of toolgate, with a mandatory cap.
 *
 * Modelled on curl's dynbuf (lib/curlx/dynbuf.c): a buffer is created with the most bytes it may
 * ever hold, every append checks that cap (and size arithmetic for overflow) before it grows, and
 * a failed append leaves the contents as they were. Whatever the network, a peer or a tenant can
 * grow goes through one of these, so no input can grow memory past a limit somebody chose.
 *
 * The contents are always followed by a NUL byte that is not counted in len (so text can be used
 * as a C string once something was added; an empty buffer's tg_buf_str is ""). Memory grows by
 * doubling from 64 bytes (or from the size given to tg_buf_init_hint) and is never larger than
 * cap + 1.
 *
 * A tg_buf is a plain struct the caller embeds; it owns ptr. Not thread-safe: one owner at a time.
 */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tg_buf {
  char *ptr;    /* contents + NUL, or NULL before the first append */
  size_t len;   /* bytes held, excluding the NUL */
  size_t alloc; /* bytes allocated at ptr */
  size_t cap;   /* the most bytes len may reach */
  size_t first; /* bytes of the first allocation */
} tg_buf;

/* A buffer that holds nothing yet and may grow to cap bytes (cap > 0). Allocates nothing. */
void tg_buf_init(tg_buf *b, size_t cap);

/* As tg_buf_init, but the first allocation is `first` bytes (including the NUL; still at most
 * cap + 1, and larger when the first append needs more): for buffers on a hot path whose usual
 * size is known, so that they are allocated once instead of doubling up from 64 bytes. */
void tg_buf_init_hint(tg_buf *b, size_t cap, size_t first);

/* Frees the memory and leaves the buffer empty with the same cap (ready for reuse). NULL-safe. */
void tg_buf_free(tg_buf *b);

/* Empties the buffer but keeps its memory for the next appends. */
void tg_buf_reset(tg_buf *b);

/*
 * Appends n bytes (n == 0 is a no-op). Errors: TG_ETOOBIG when len + n would exceed the cap (or
 * overflow size_t), TG_ENOMEM; on error the buffer is unchanged.
 */
int tg_buf_add(tg_buf *b, const void *p, size_t n);

/* Appends the NUL-terminated string s. Errors as tg_buf_add. */
int tg_buf_addstr(tg_buf *b, const char *s);

/* Appends printf-formatted text. Errors as tg_buf_add (TG_EINVAL on a formatting error). */
int tg_buf_printf(tg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tg_buf_vprintf(tg_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Makes room for at least n more bytes without adding them, for callers that write in place
 * (a read(2) into tg_buf_end, then tg_buf_commit). Errors as tg_buf_add.
 */
int tg_buf_reserve(tg_buf *b, size_t n);

/* The first free byte after the contents (valid after a successful tg_buf_reserve) and how many
 * bytes may be written there. */
char *tg_buf_end(tg_buf *b);
size_t tg_buf_room(const tg_buf *b);

/* Counts n bytes written at tg_buf_end as added (n <= tg_buf_room) and writes the NUL after. */
void tg_buf_commit(tg_buf *b, size_t n);

/* Shortens the contents to n bytes (no-op when n >= len). */
void tg_buf_truncate(tg_buf *b, size_t n);

/* The contents as a C string: "" when empty. Valid until the next call that changes b. */
const char *tg_buf_str(const tg_buf *b);

/* Hands the contents (NUL-terminated, malloc'd) to the caller, who frees them with free(); *len
 * (may be NULL) gets the length. The buffer is left empty. Returns NULL for an empty buffer only
 * when no memory could be allocated for "" (then *len is 0). */
char *tg_buf_take(tg_buf *b, size_t *len);

static inline size_t tg_buf_len(const tg_buf *b)
{
  return b->len;
}

#endif
