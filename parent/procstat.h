/*
 * What /proc says of one of the daemon's processes, for /metrics'
 * process_* families.  Private to procstat.c and status.c.
 */
#ifndef VS_PROCSTAT_H
#define VS_PROCSTAT_H

#include <sys/types.h>

#include "msg.h"

/* Fills p (zeros for what cannot be read: the process may just have gone). */
void procstat_read(pid_t pid, struct msg_proc_stat *p);

#endif
