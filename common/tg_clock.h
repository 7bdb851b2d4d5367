/*
 * tg_clock: the wall clock in the unit every table and API of toolgate uses (milliseconds since
 * the Unix epoch, UTC). Timers and timeouts on a loop use uv_now instead (monotonic).
 */
#ifndef TG_CLOCK_H
#define TG_CLOCK_H

#include <stdint.h>

/* Milliseconds since the epoch, UTC (CLOCK_REALTIME: it can jump when the system clock is set). */
int64_t tg_now_ms(void);

#endif
