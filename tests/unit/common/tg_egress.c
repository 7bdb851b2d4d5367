/*
 * Unit tests for common/tg_egress.c: the address classifier over every refused range and its
 * IPv4-in-IPv6 forms, and the allowlist parser and matcher (CIDRs, single addresses, host names
 * and wildcards, metadata needing an exact entry, malformed entries refused with a reason).
 */
#include "tg_unit.h"

#include "tg_egress.h"
#include "tg_err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* A sockaddr for the textual address ip (v4 or v6). */
static struct sockaddr_storage addr(const char *ip)
{
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
  }
  return ss;
}

static tg_egress_class cls(const char *ip)
{
  struct sockaddr_storage ss = addr(ip);
  return tg_egress_classify((struct sockaddr *)&ss);
}

static int allows(const tg_egress *p, const char *ip, const char *host)
{
  struct sockaddr_storage ss = addr(ip);
  return tg_egress_allows(p, (struct sockaddr *)&ss, host);
}

static void test_classify(void **state)
{
  static const struct {
    const char *ip;
    tg_egress_class c;
  } cases[] = {
      {"8.8.8.8", TG_EGRESS_PUBLIC},
      {"1.1.1.1", TG_EGRESS_PUBLIC},
      {"2606:4700::1111", TG_EGRESS_PUBLIC},
      {"127.0.0.1", TG_EGRESS_LOOPBACK},
      {"127.255.255.254", TG_EGRESS_LOOPBACK},
      {"::1", TG_EGRESS_LOOPBACK},
      {"10.0.0.1", TG_EGRESS_PRIVATE},
      {"172.16.0.1", TG_EGRESS_PRIVATE},
      {"172.31.255.255", TG_EGRESS_PRIVATE},
      {"172.32.0.1", TG_EGRESS_PUBLIC},
      {"172.15.255.255", TG_EGRESS_PUBLIC},
      {"192.168.1.1", TG_EGRESS_PRIVATE},
      {"fc00::1", TG_EGRESS_PRIVATE},
      {"fdff::1", TG_EGRESS_PRIVATE},
      {"169.254.1.1", TG_EGRESS_LINK_LOCAL},
      {"fe80::1", TG_EGRESS_LINK_LOCAL},
      {"febf::1", TG_EGRESS_LINK_LOCAL},
      {"224.0.0.1", TG_EGRESS_MULTICAST},
      {"239.255.255.250", TG_EGRESS_MULTICAST},
      {"ff02::1", TG_EGRESS_MULTICAST},
      {"0.0.0.0", TG_EGRESS_UNSPECIFIED},
      {"::", TG_EGRESS_UNSPECIFIED},
      {"100.64.0.1", TG_EGRESS_CGNAT},
      {"100.127.255.255", TG_EGRESS_CGNAT},
      {"100.128.0.1", TG_EGRESS_PUBLIC},
      {"255.255.255.255", TG_EGRESS_RESERVED},
      {"169.254.169.254", TG_EGRESS_METADATA},
      {"fd00:ec2::254", TG_EGRESS_METADATA},
      /* IPv4 carried in IPv6 */
      {"::ffff:127.0.0.1", TG_EGRESS_LOOPBACK},
      {"::ffff:10.1.2.3", TG_EGRESS_PRIVATE},
      {"::ffff:169.254.169.254", TG_EGRESS_METADATA},
      {"::ffff:100.64.1.1", TG_EGRESS_CGNAT},
      {"::ffff:0.0.0.0", TG_EGRESS_UNSPECIFIED},
      {"::ffff:8.8.8.8", TG_EGRESS_PUBLIC},
      {"::127.0.0.1", TG_EGRESS_LOOPBACK},
      {"64:ff9b::a00:1", TG_EGRESS_PRIVATE},
      {"2002:7f00:1::", TG_EGRESS_LOOPBACK},
      {"2002:808:808::", TG_EGRESS_PUBLIC},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (cls(cases[i].ip) != cases[i].c)
      fail_msg("%s: got %s, want %s", cases[i].ip, tg_egress_class_name(cls(cases[i].ip)),
               tg_egress_class_name(cases[i].c));
  }
  assert_string_equal(tg_egress_class_name(TG_EGRESS_METADATA), "cloud_metadata");
}

static void test_default_policy(void **state)
{
  tg_egress *p;
  char err[128] = "";
  assert_int_equal(tg_egress_new(&p, NULL, err, sizeof err), 0);
  assert_true(allows(p, "93.184.216.34", "example.com"));
  assert_false(allows(p, "127.0.0.1", "localhost"));
  assert_false(allows(p, "::ffff:127.0.0.1", NULL));
  assert_false(allows(p, "10.0.0.1", NULL));
  assert_false(allows(p, "169.254.169.254", NULL));
  assert_false(allows(p, "fd00:ec2::254", NULL));
  assert_true(tg_egress_allows(NULL, NULL, NULL)); /* no policy: no check */
  tg_egress_free(p);
  assert_int_equal(tg_egress_new(&p, " , ", err, sizeof err), 0); /* empty entries skipped */
  assert_false(allows(p, "127.0.0.1", NULL));
  tg_egress_free(p);
}

static void test_allowlist(void **state)
{
  tg_egress *p;
  char err[128] = "";
  assert_int_equal(tg_egress_new(&p,
                                 " 127.0.0.1 , 10.1.0.0/16,fd12::/16, CRM.Internal,*.corp.example,"
                                 "169.254.0.0/16",
                                 err, sizeof err),
                   0);
  assert_true(allows(p, "127.0.0.1", NULL));
  assert_true(allows(p, "::ffff:127.0.0.1", NULL)); /* the IPv4 entry covers the mapped form */
  assert_false(allows(p, "127.0.0.2", NULL));
  assert_false(allows(p, "::1", NULL));
  assert_true(allows(p, "10.1.200.3", NULL));
  assert_false(allows(p, "10.2.0.1", NULL));
  assert_true(allows(p, "fd12:3456::1", NULL));
  assert_false(allows(p, "fd13::1", NULL));
  assert_true(allows(p, "10.9.9.9", "crm.internal"));
  assert_true(allows(p, "10.9.9.9", "api.CORP.example"));
  assert_false(allows(p, "10.9.9.9", "corp.example")); /* the wildcard wants a label */
  assert_false(allows(p, "10.9.9.9", "evilcorp.example"));
  assert_true(allows(p, "169.254.1.1", NULL));
  assert_false(allows(p, "169.254.169.254", NULL)); /* metadata: only an exact entry */
  assert_true(tg_egress_allows_host(p, "crm.internal"));
  assert_false(tg_egress_allows_host(p, "other.internal"));
  tg_egress_free(p);

  assert_int_equal(tg_egress_new(&p, "169.254.169.254", err, sizeof err), 0);
  assert_true(allows(p, "169.254.169.254", NULL));
  assert_false(allows(p, "169.254.1.1", NULL));
  tg_egress_free(p);
}

static void test_bad_entries(void **state)
{
  static const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "host/8",  "a..b",
                              ".a",          "a.",     "x y",       "*.",         "http://a"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tg_egress *p = (tg_egress *)1;
    char err[160] = "";
    if (tg_egress_new(&p, bad[i], err, sizeof err) != TG_EINVAL)
      fail_msg("%s accepted", bad[i]);
    assert_null(p);
    assert_non_null(strstr(err, "TOOLGATE_EGRESS_ALLOW"));
  }
}

TG_UNIT_MAIN(cmocka_unit_test(test_classify), cmocka_unit_test(test_default_policy),
             cmocka_unit_test(test_allowlist), cmocka_unit_test(test_bad_entries))
