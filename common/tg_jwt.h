/*
 * tg_jwt: verification of compact JWS tokens signed with HS256 (RFC 7519, RFC 7515), the
 * gateway's production identity, and ES256 signing of client assertions (tg_jwt_sign_es256)
 * (DESIGN.md section 3: "Authorization: Bearer <JWT HS256>").
 *
 * The algorithm is fixed: the header must say "alg":"HS256" and nothing else ("none", "HS512",
 * "RS256", ... are refused, so a token cannot choose how it is checked). The signature is
 * HMAC-SHA256 (libsodium) over "<header b64>.<payload b64>", compared in constant time, before
 * any claim is trusted. Claims: "exp" is required and at most the verifier's maximum lifetime
 * ahead (TOOLGATE_JWT_MAX_LIFETIME_S: a token cannot make itself valid forever), "nbf" is
 * honoured when present (both NumericDate seconds, with TG_JWT_LEEWAY_S of clock skew, kept
 * small: it only covers clocks that disagree), "sub" (the user id) is required:
 * 1..TG_JWT_SUB_MAX printable ASCII bytes. Base64url decoding is libsodium's; JSON is jansson's;
 * the only hand-written parsing is splitting on the two dots.
 */
#ifndef TG_JWT_H
#define TG_JWT_H

#include <stddef.h>
#include <stdint.h>

#define TG_JWT_MAX_BYTES 4096 /* longer tokens are refused without decoding */
#define TG_JWT_SUB_MAX 128    /* bytes of "sub" (matches the gateway's user id cap) */
#define TG_JWT_LEEWAY_S 30    /* clock skew accepted on exp and nbf, seconds */
#define TG_JWT_MIN_SECRET 32  /* bytes: shorter HS256 secrets are refused at start-up */

/*
 * Verifies token (len bytes, not NUL-terminated necessarily) with secret (secret_len bytes) at
 * time now_s (seconds since the epoch). "exp" may be at most max_lifetime_s (> 0) seconds after
 * now_s, plus TG_JWT_LEEWAY_S; later is refused ("lifetime too long"). On success copies "sub"
 * into sub (subsize >= 2, NUL-terminated) and returns 0. Errors: TG_EAUTH with a short static
 * reason in *why (e.g. "bad signature", "expired", "algorithm not allowed"); the reason never
 * contains token bytes. TG_ENOMEM when memory runs out.
 */
int tg_jwt_verify_hs256(const char *token, size_t len, const unsigned char *secret,
                        size_t secret_len, int64_t now_s, int64_t max_lifetime_s, char *sub,
                        size_t subsize, const char **why);

/*
 * Signs claims (a JSON object text, e.g. {"sub":"alice","exp":...}) into a compact HS256 token.
 * Returns a malloc'd NUL-terminated token (caller frees) or NULL on bad input or no memory. For
 * tests and tools; the gateway only verifies.
 */
char *tg_jwt_sign_hs256(const char *claims_json, const unsigned char *secret, size_t secret_len);

/*
 * Signs claims (a JSON object text) into a compact ES256 token (RFC 7518 section 3.4: ECDSA P-256
 * with SHA-256, the signature as raw r || s) with the EC P-256 private key in private_key_pem
 * (PEM, PKCS#8 or SEC1; OpenSSL's libcrypto). Returns a malloc'd token, or NULL on a key that is
 * not P-256, bad input or no memory. Used for private_key_jwt client authentication (RFC 7523
 * section 2.2) by tg_mcp_auth.
 */
char *tg_jwt_sign_es256(const char *claims_json, const char *private_key_pem);

#endif
