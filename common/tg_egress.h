/*
 * tg_egress: the egress policy of requests to user-supplied URLs (API nodes, ad-hoc MCP nodes).
 *
 * A destination address is classified (tg_egress_classify): loopback, private, link-local,
 * multicast, unspecified, CGNAT (100.64/10), reserved, cloud metadata, or public. IPv4 forms
 * embedded in IPv6 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) are classified as the IPv4 address they carry. Only public addresses are
 * allowed, unless the operator's allowlist (TOOLGATE_EGRESS_ALLOW, parsed by tg_egress_new)
 * permits the address (a CIDR containing it) or the URL's host name. Cloud metadata endpoints
 * (169.254.169.254, fd00:ec2::254) are allowed only by an entry naming exactly that address
 * (/32 or /128), never by a wider range such as 169.254.0.0/16.
 *
 * The check is meant for the address a socket is about to connect to (tg_http calls it from
 * curl's open-socket callback), so DNS rebinding and CONNECT_TO mappings cannot get around it.
 * A policy is immutable after tg_egress_new: share it between threads and clients freely.
 */
#ifndef TG_EGRESS_H
#define TG_EGRESS_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct tg_egress tg_egress;

/* Address classes (tg_egress_classify). */
typedef enum {
  TG_EGRESS_PUBLIC = 0,
  TG_EGRESS_LOOPBACK,    /* 127/8, ::1 */
  TG_EGRESS_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
  TG_EGRESS_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
  TG_EGRESS_MULTICAST,   /* 224/4, ff00::/8 */
  TG_EGRESS_UNSPECIFIED, /* 0/8, :: */
  TG_EGRESS_CGNAT,       /* 100.64/10 */
  TG_EGRESS_RESERVED,    /* 240/4 (and 255.255.255.255), 192.0.0/24, 198.18/15 */
  TG_EGRESS_METADATA     /* 169.254.169.254, fd00:ec2::254 */
} tg_egress_class;

/*
 * Parses allow, TOOLGATE_EGRESS_ALLOW's syntax: comma-separated entries, spaces around them
 * ignored; an entry is an IPv4 or IPv6 CIDR ("10.1.0.0/16", "fd00::/8"), a single address
 * ("127.0.0.1" = /32, "::1" = /128), a host name ("crm.internal") or a wildcard host name
 * ("*.corp.example": any name ending in ".corp.example", not the bare suffix). Host names match
 * case-insensitively. allow NULL or "" gives the default policy (public addresses only).
 * *out is a new policy (free with tg_egress_free). Errors: TG_EINVAL with a one-line reason in
 * err naming the bad entry, TG_ENOMEM.
 */
int tg_egress_new(tg_egress **out, const char *allow, char *err, size_t errlen);
void tg_egress_free(tg_egress *p); /* NULL-safe */

/* The class of an AF_INET or AF_INET6 address (other families: TG_EGRESS_RESERVED). */
tg_egress_class tg_egress_classify(const struct sockaddr *sa);

/* The snake_case name of a class ("loopback", "cloud_metadata", ...), static. */
const char *tg_egress_class_name(tg_egress_class cls);

/*
 * 1 when policy p lets a request whose URL names host (may be NULL) connect to address sa, 0
 * when it does not. p NULL allows everything (a client without a policy).
 */
int tg_egress_allows(const tg_egress *p, const struct sockaddr *sa, const char *host);

/* 1 when host (no port, no brackets) matches a host-name entry of p; 0 otherwise or p NULL. */
int tg_egress_allows_host(const tg_egress *p, const char *host);

#endif
