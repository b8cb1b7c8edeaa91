/*
 * How a vault operation fails: an exit code for vaultsyncctl and a message,
 * set by whichever step of the op (save, unpack, mount) met the failure.
 */
#include <stdarg.h>
#include <stdio.h>

#include "vault_ops_int.h"

void
vop_err(struct vault_job *vj, int rc, const char *fmt, ...)
{
	va_list ap;

	vj->rc = rc;
	va_start(ap, fmt);
	vsnprintf(vj->err, sizeof(vj->err), fmt, ap);
	va_end(ap);
}
