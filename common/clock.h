/*
 * The one monotonic clock the programs read, in milliseconds: deadlines,
 * intervals and rates, never wall time.
 */
#ifndef VS_CLOCK_H
#define VS_CLOCK_H

#include <stdint.h>

uint64_t mono_ms(void);

#endif
