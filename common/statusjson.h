/*
 * The status snapshot records (SNAP_DAEMON, SNAP_CHILD, CRED_INFO,
 * SNAP_VAULT) as JSON objects, and the names of their enums.
 */
#ifndef VS_STATUSJSON_H
#define VS_STATUSJSON_H

#include <stdint.h>

#include <jansson.h>

#include "msg.h"

const char *sj_child_state_name(uint32_t s);
const char *sj_vault_state_name(uint32_t s);
const char *sj_verify_outcome_name(uint32_t s);
const char *sj_watch_mode_name(uint32_t s);
const char *sj_cred_state_name(uint32_t s);
const char *sj_cred_source_name(uint32_t s);
json_t *sj_time(int64_t t);	/* RFC 3339 UTC, or null for "never" */

json_t *sj_daemon(const struct msg_snap_daemon *d);
json_t *sj_child(const struct msg_snap_child *c);
json_t *sj_cred(const struct msg_cred_info *c);
json_t *sj_vault(const struct msg_snap_vault *v);

#endif
