/*
 * tg_egress: address classes and the operator's allowlist (contract in tg_egress.h).
 *
 * Addresses are compared as bytes in network order. An IPv6 address that carries an IPv4
 * address (mapped, compatible, NAT64, 6to4) is reduced to that IPv4 address before it is
 * classified, so ::ffff:127.0.0.1 is loopback; an allow entry matches either the address as
 * connected or the IPv4 address it carries. Sources: RFC 6890 (special-purpose registries),
 * RFC 4291 section 2.5.5 (embedded IPv4), RFC 6052 (NAT64), RFC 3056 (6to4), RFC 6598 (CGNAT).
 */
#include "tg_egress.h"

#include "tg_err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ENTRY 256 /* bytes of one allowlist entry */

typedef struct cidr {
  int v6;              /* 0: 4-byte address */
  unsigned char a[16]; /* network order */
  int prefix;          /* bits */
} cidr;

struct tg_egress {
  cidr *cidrs;
  size_t n_cidrs;
  char **hosts; /* lowercased; "*.x" for wildcards */
  size_t n_hosts;
};

static const unsigned char META4[4] = {169, 254, 169, 254};
static const unsigned char META6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                        0,    0,    0,    0,    0, 0, 0x02, 0x54};

/* 1 when the first bits of a and b agree. */
static int prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
  int whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, (size_t)whole) != 0)
    return 0;
  if (rest == 0)
    return 1;
  return ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* The IPv4 address carried by IPv6 address a (into v4): 1, or 0 when it carries none. */
static int embedded_v4(const unsigned char *a, unsigned char *v4)
{
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char zero[12] = {0};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
      /* IPv4-compatible ::a.b.c.d, but not :: and ::1 */
      (memcmp(a, zero, 12) == 0 && (a[12] | a[13] | a[14]) != 0)) {
    memcpy(v4, a + 12, 4);
    return 1;
  }
  if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
    memcpy(v4, a + 2, 4);
    return 1;
  }
  return 0;
}

static tg_egress_class classify4(const unsigned char *a)
{
  if (memcmp(a, META4, 4) == 0)
    return TG_EGRESS_METADATA;
  if (a[0] == 127)
    return TG_EGRESS_LOOPBACK;
  if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
    return TG_EGRESS_PRIVATE;
  if (a[0] == 169 && a[1] == 254)
    return TG_EGRESS_LINK_LOCAL;
  if ((a[0] & 0xf0) == 224)
    return TG_EGRESS_MULTICAST;
  if (a[0] == 0)
    return TG_EGRESS_UNSPECIFIED;
  if (a[0] == 100 && (a[1] & 0xc0) == 64)
    return TG_EGRESS_CGNAT;
  if ((a[0] & 0xf0) == 240 || (a[0] == 192 && a[1] == 0 && a[2] == 0) ||
      (a[0] == 198 && (a[1] & 0xfe) == 18))
    return TG_EGRESS_RESERVED;
  return TG_EGRESS_PUBLIC;
}

static tg_egress_class classify6(const unsigned char *a)
{
  static const unsigned char zero[16] = {0};
  unsigned char v4[4];
  if (memcmp(a, META6, 16) == 0)
    return TG_EGRESS_METADATA;
  if (memcmp(a, zero, 16) == 0)
    return TG_EGRESS_UNSPECIFIED;
  if (memcmp(a, zero, 15) == 0 && a[15] == 1)
    return TG_EGRESS_LOOPBACK;
  if (embedded_v4(a, v4))
    return classify4(v4);
  if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
    return TG_EGRESS_PRIVATE; /* fc00::/7 unique local, fec0::/10 site-local (deprecated) */
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
    return TG_EGRESS_LINK_LOCAL;
  if (a[0] == 0xff)
    return TG_EGRESS_MULTICAST;
  return TG_EGRESS_PUBLIC;
}

tg_egress_class tg_egress_classify(const struct sockaddr *sa)
{
  if (sa && sa->sa_family == AF_INET)
    return classify4((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
  if (sa && sa->sa_family == AF_INET6)
    return classify6((const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
  return TG_EGRESS_RESERVED;
}

const char *tg_egress_class_name(tg_egress_class cls)
{
  switch (cls) {
  case TG_EGRESS_PUBLIC:
    return "public";
  case TG_EGRESS_LOOPBACK:
    return "loopback";
  case TG_EGRESS_PRIVATE:
    return "private";
  case TG_EGRESS_LINK_LOCAL:
    return "link_local";
  case TG_EGRESS_MULTICAST:
    return "multicast";
  case TG_EGRESS_UNSPECIFIED:
    return "unspecified";
  case TG_EGRESS_CGNAT:
    return "cgnat";
  case TG_EGRESS_RESERVED:
    return "reserved";
  case TG_EGRESS_METADATA:
    return "cloud_metadata";
  }
  return "reserved";
}

/* A host name entry: labels of [A-Za-z0-9-_] separated by dots, optionally "*." first. */
static int host_ok(const char *s)
{
  if (strncmp(s, "*.", 2) == 0)
    s += 2;
  if (!*s || *s == '.' || s[strlen(s) - 1] == '.')
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
          (*s == '.' && s[1] != '.')))
      return 0;
  return 1;
}

/* Parses one entry (lowercased, trimmed) into p. 0, TG_EINVAL, TG_ENOMEM. */
static int add_entry(tg_egress *p, char *e)
{
  char *slash = strchr(e, '/');
  cidr c = {0};
  int max;
  if (slash)
    *slash = 0;
  if (inet_pton(AF_INET, e, c.a) == 1) {
    max = 32;
  } else if (inet_pton(AF_INET6, e, c.a) == 1) {
    c.v6 = 1;
    max = 128;
  } else if (!slash && host_ok(e)) {
    char **nh = realloc(p->hosts, (p->n_hosts + 1) * sizeof *nh);
    if (!nh)
      return TG_ENOMEM;
    p->hosts = nh;
    if (!(p->hosts[p->n_hosts] = strdup(e)))
      return TG_ENOMEM;
    p->n_hosts++;
    return 0;
  } else {
    return TG_EINVAL;
  }
  c.prefix = max;
  if (slash) {
    char *end;
    long n = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || n < 0 || n > max)
      return TG_EINVAL;
    c.prefix = (int)n;
  }
  {
    cidr *nc = realloc(p->cidrs, (p->n_cidrs + 1) * sizeof *nc);
    if (!nc)
      return TG_ENOMEM;
    p->cidrs = nc;
    p->cidrs[p->n_cidrs++] = c;
  }
  return 0;
}

int tg_egress_new(tg_egress **out, const char *allow, char *err, size_t errlen)
{
  tg_egress *p = calloc(1, sizeof *p);
  const char *s = allow ? allow : "";
  int rc = 0;
  *out = NULL;
  if (!p)
    return TG_ENOMEM;
  while (*s && rc == 0) {
    size_t n = strcspn(s, ","), a = 0, b = n;
    char e[MAX_ENTRY];
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
      a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
      b--;
    if (b - a >= sizeof e) {
      snprintf(err, errlen, "TOOLGATE_EGRESS_ALLOW: an entry is longer than %d bytes",
               MAX_ENTRY - 1);
      rc = TG_EINVAL;
      break;
    }
    for (size_t i = a; i < b; i++)
      e[i - a] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    e[b - a] = 0;
    if (*e && (rc = add_entry(p, e)) == TG_EINVAL)
      snprintf(err, errlen,
               "TOOLGATE_EGRESS_ALLOW: \"%.*s\" is neither a CIDR, an IP address nor a host name",
               (int)(b - a), s + a);
    s += n;
    if (*s == ',')
      s++;
  }
  if (rc) {
    tg_egress_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void tg_egress_free(tg_egress *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->n_hosts; i++)
    free(p->hosts[i]);
  free(p->hosts);
  free(p->cidrs);
  free(p);
}

int tg_egress_allows_host(const tg_egress *p, const char *host)
{
  size_t hl = host ? strlen(host) : 0;
  if (!p || hl == 0)
    return 0;
  for (size_t i = 0; i < p->n_hosts; i++) {
    const char *e = p->hosts[i];
    if (e[0] == '*') {
      size_t sl = strlen(e + 1); /* ".suffix" */
      if (hl > sl && strcasecmp(host + hl - sl, e + 1) == 0)
        return 1;
    } else if (strcasecmp(host, e) == 0) {
      return 1;
    }
  }
  return 0;
}

/* 1 when an entry of p contains address a (v6: 16 bytes, else 4); exact: /32 or /128 only. */
static int cidr_match(const tg_egress *p, int v6, const unsigned char *a, int exact)
{
  for (size_t i = 0; i < p->n_cidrs; i++) {
    const cidr *c = &p->cidrs[i];
    if (c->v6 != v6 || (exact && c->prefix != (v6 ? 128 : 32)))
      continue;
    if (prefix_eq(c->a, a, c->prefix))
      return 1;
  }
  return 0;
}

int tg_egress_allows(const tg_egress *p, const struct sockaddr *sa, const char *host)
{
  tg_egress_class cls;
  const unsigned char *a;
  unsigned char v4[4];
  int v6, has_v4 = 0, exact;
  if (!p)
    return 1;
  if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
    return 0;
  cls = tg_egress_classify(sa);
  if (cls == TG_EGRESS_PUBLIC)
    return 1;
  if (tg_egress_allows_host(p, host))
    return 1;
  v6 = sa->sa_family == AF_INET6;
  a = v6 ? (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr
         : (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
  if (v6)
    has_v4 = embedded_v4(a, v4);
  exact = cls == TG_EGRESS_METADATA;
  return cidr_match(p, v6, a, exact) || (has_v4 && cidr_match(p, 0, v4, exact));
}
