/*
 * tg_expr: the workflow builder's condition language (Conditional nodes, issue 13).
 *
 * Grammar (precedence low to high; keywords case-insensitive):
 *   expr    := or
 *   or      := and (("OR" | "||") and)*
 *   and     := not (("AND" | "&&") not)*
 *   not     := ("NOT" | "!") not | cmp
 *   cmp     := primary (("<" | "<=" | ">" | ">=" | "==" | "!=") primary)?
 *   primary := number | string | "true" | "false" | "null" | path | "(" expr ")"
 *   path    := name ("." (name | digits))*      name := [A-Za-z_][A-Za-z0-9_-]*
 *   string  := '...' or "..." with \\ \' \" \n \t escapes
 *   number  := JSON number syntax (an integer or a decimal, optional exponent)
 * "=" alone is accepted as "==" (the builder's users write it). Comparisons: numbers with
 * numbers, strings with strings (byte order), booleans and null with == / != only; anything
 * else is a type mismatch. AND/OR/NOT take booleans; a bare path used as a condition must be a
 * boolean. There is no implicit conversion and no truthiness: a mismatch is an error, never a
 * silent false.
 *
 * Variables resolve against a run's scope object (the engine's run variables):
 *   {"inputs": {...}, "nodes": {"<id>": {"output": ...}}, "vars": {...}}
 * A path whose first segment is "inputs", "nodes" or "vars" walks the scope from there
 * (objects by key, arrays by index); any other path is looked up in scope.vars, where the
 * engine keeps the bare variables (the run's inputs, then the top-level keys of each finished
 * node's object output, later ones overwriting earlier ones).
 */
#ifndef TG_EXPR_H
#define TG_EXPR_H

#include <jansson.h>
#include <stddef.h>

typedef struct tg_expr tg_expr;

/* Limits: source length and nesting depth. Longer or deeper input is a parse error. */
#define TG_EXPR_MAX_LEN 4096
#define TG_EXPR_MAX_DEPTH 64

/*
 * Parses src (NUL-terminated). Returns 0 and a new expression in *out (free with tg_expr_free),
 * or with *out NULL: TG_EINVAL with "column N: <what>" in err (N counted in bytes from 1),
 * TG_ENOMEM. Never reads past the terminator; any byte sequence is safe.
 */
int tg_expr_parse(tg_expr **out, const char *src, char *err, size_t errlen);

void tg_expr_free(tg_expr *e); /* NULL-safe */

/* Calls fn(arg, path) for each variable path the expression reads, in source order ("a.b.0"). */
void tg_expr_each_var(const tg_expr *e, void (*fn)(void *arg, const char *path), void *arg);

/* What an expression shows about the value a variable must hold for it to evaluate. */
typedef enum {
  TG_EXPR_ANY = 0, /* nothing: compared with another variable, with null, or not at all */
  TG_EXPR_NUMBER,  /* compared with a number literal */
  TG_EXPR_STRING,  /* compared with a string literal */
  TG_EXPR_BOOLEAN  /* compared with true / false, or used as a condition (an operand of AND /
                      OR / NOT, or the whole expression) */
} tg_expr_type;

/* tg_expr_each_var with the type each occurrence implies (above). */
void tg_expr_each_var_typed(const tg_expr *e,
                            void (*fn)(void *arg, const char *path, tg_expr_type type), void *arg);

/*
 * Evaluates e against scope (see above; borrowed). Returns 0 with *result 0 or 1, or
 * TG_EINVAL with the reason in err: "variable 'x' is not defined", "type mismatch: 'x' is a
 * string, compared with a number", ... (naming the variable when one is involved).
 */
int tg_expr_eval(const tg_expr *e, const json_t *scope, int *result, char *err, size_t errlen);

#endif
