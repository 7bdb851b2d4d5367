/*
 * tg_id: unguessable identifiers (run, workflow and connector ids, OAuth states, request ids):
 * a prefix and random bytes from libsodium's CSPRNG in lowercase hex.
 */
#ifndef TG_ID_H
#define TG_ID_H

#include <stddef.h>

/*
 * Fills buf with prefix (may be NULL) followed by bytes random bytes (at most 64) in lowercase
 * hex, NUL-terminated. buf must hold strlen(prefix) + 2 * bytes + 1 bytes; when it cannot, buf
 * becomes "" (if bufsize > 0). Aborts the process if libsodium cannot initialise: an id that
 * could be guessed is never handed out.
 */
void tg_random_id(char *buf, size_t bufsize, const char *prefix, size_t bytes);

#endif
