/*
 * tg_unit.h: what every cmocka unit test under tests/unit/ includes first. cmocka.h needs
 * setjmp.h, stdarg.h, stddef.h and stdint.h before it (it uses jmp_buf, va_list, size_t and
 * uintmax_t without including them), so this header includes them in that order once.
 *
 * TG_UNIT_MAIN(...) defines main() for the common case: the arguments are the group's
 * cmocka_unit_test* entries, run with no group setup or teardown; the exit status is the number
 * of failed tests, as cmocka_run_group_tests returns it. A test that needs something before its
 * group runs (sodium_init, a group setup) writes its own main().
 */
#ifndef TG_UNIT_H
#define TG_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define TG_UNIT_MAIN(...)                                                                          \
  int main(void)                                                                                   \
  {                                                                                                \
    const struct CMUnitTest tests[] = {__VA_ARGS__};                                               \
    return cmocka_run_group_tests(tests, NULL, NULL);                                              \
  }

#endif
