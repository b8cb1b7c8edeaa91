/*
 * The uploader's configuration: built on the main thread when it starts,
 * sent on its channel before anything else.
 */
#ifndef VS_UPCONF_H
#define VS_UPCONF_H

#include <stdint.h>

#include "msg.h"

/* restart_uploader: how a credentials expiry starts a fresh uploader. */
void upconf_init(void (*restart_uploader)(const char *why));
/*
 * An uploader's report on a credentials file (CRED_INFO): kept for status,
 * and an expiry timer for a fresh uploader shortly before they expire.
 * NULL, or why the report breaks the protocol.
 */
const char *upconf_cred_info(const struct msg_cred_info *ci);
/*
 * Build the configuration for a fresh uploader from the daemon's: opens
 * its dir: remotes into dirs (UPL_DIRFD_SLOTS at most, *ndirs counted up,
 * to be inherited from UPL_DIRFD_FIRST on) and records what it was given.
 */
void upconf_prepare(int *dirs, int *ndirs);
/* Send it on the uploader's channel, numbering from *seq: 0 or -1. */
int upconf_send(int chan, uint32_t *seq);
/* 1 if a reload changed what the running uploader was started with. */
int upconf_stale(void);
/* A credentials file whose metadata changed since the uploader read it, or NULL. */
const char *upconf_creds_changed(void);

#endif
