/*
 * The one monotonic clock the programs read, in milliseconds (microseconds
 * for short spans): deadlines, intervals and rates, never wall time.  Wall
 * time only where it is compared with file times (the change check).
 */
#ifndef VS_CLOCK_H
#define VS_CLOCK_H

#include <stdint.h>

uint64_t mono_ms(void);
uint64_t mono_us(void);
int64_t wall_ns(void);		/* CLOCK_REALTIME, unix nanoseconds */

#endif
