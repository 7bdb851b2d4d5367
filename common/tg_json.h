/*
 * tg_json: compact JSON text from a jansson value, written with yajl's generator.
 *
 * jansson's json_dumps walks the text through a callback per fragment and decodes every string
 * character by character; it is the largest single cost of answering an admission (the
 * response body, the decision's log line, the run's inputs and metadata bound into SQLite).
 * yajl_gen (Debian libyajl 2.1) writes the same text in a fraction of the instructions.
 */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <jansson.h>
#include <stddef.h>

/*
 * The text of v, byte for byte what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) gives with
 * jansson 2.14: members in insertion order, "," and ":" without spaces, UTF-8 kept as is, '"'
 * '\\' and control characters escaped (\b \f \n \r \t, else \u00XX), '/' not escaped, integers
 * as %lld, reals as jansson formats them (%.17g, ".0" added when neither '.' nor 'e' appears,
 * exponent without '+' or leading zeros). Anything yajl's generator refuses (nesting deeper than
 * its 128 levels, a string that is not valid UTF-8) is handed to json_dumps itself, so the result
 * is always jansson's. Returns a malloc'd NUL-terminated string (free() it) and its length in
 * *len when len is not NULL; NULL when v is NULL, jansson refuses v too, or memory runs out.
 * Checked against json_dumps by tests/fuzz/fuzz_json_dump.c.
 */
char *tg_json_dumps(const json_t *v, size_t *len);

/*
 * The length of the longest prefix of s[0..n) that does not end inside a UTF-8 character: n
 * itself when s[n-1] completes a character (or is ASCII), else the offset of the lead byte of the
 * character cut short. For cutting text at a byte budget so that the cut stays a valid JSON
 * string (jansson refuses a string that is not valid UTF-8). Reads s[0..n) only; pure.
 */
size_t tg_json_utf8_cut(const char *s, size_t n);

#endif
