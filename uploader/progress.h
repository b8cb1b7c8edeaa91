/*
 * How far the PUT being served has got, told to the parent a few times a
 * second at most.  The backends count the bytes they hand the transport.
 */
#ifndef VS_PROGRESS_H
#define VS_PROGRESS_H

#include <stdint.h>

#include "msg.h"

typedef void (*progress_emit_fn)(const struct msg_upl_progress *p);

void progress_begin(uint32_t id, uint64_t total, progress_emit_fn emit);
void progress_add(uint64_t n);
void progress_end(void);

#endif
