/*
 * The latest status snapshot the parent pushed, and what /v1/healthz says
 * of it.  Records are collected into a staging copy and become the one
 * served only at a SNAP_END whose counts match the SNAP_DAEMON that began
 * them: a snapshot cut short never replaces a whole one.  Health is the
 * parent's verdict (the rule vaultsyncctl status uses); the reasons are
 * read from the same records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "statusd.h"

#define SNAP_MAX_CHILDREN	8
#define SNAP_MAX_CREDS		(CFG_MAX_VAULTS + 1)

struct snapshot {
	struct msg_snap_daemon d;
	struct msg_snap_child ch[SNAP_MAX_CHILDREN];
	struct msg_cred_info cr[SNAP_MAX_CREDS];
	struct msg_snap_vault v[CFG_MAX_VAULTS];
	size_t nch, ncr, nv;
	struct msg_snap_end e;
};

static struct snapshot cur, stage;
static int have_cur, staging;

static const char *const vault_states[] = {
	"locked", "unlocked", "dirty", "saving", "pushing", "conflict", "error",
};
static const char *const child_states[] = { "starting", "running", "backoff", "stopped" };
static const char *const cred_states[] = {
	"unknown", "ok", "missing", "bad-file", "bad-syntax", "expired", "rejected",
};

void
snap_take(const struct msg *m)
{
	switch (m->hdr.type) {
	case MSG_SNAP_DAEMON:
		memset(&stage, 0, sizeof(stage));
		stage.d = m->u.sdaemon;
		staging = 1;
		return;
	case MSG_SNAP_CHILD:
		if (staging && stage.nch < SNAP_MAX_CHILDREN)
			stage.ch[stage.nch++] = m->u.schild;
		else
			staging = 0;
		return;
	case MSG_CRED_INFO:
		if (staging && stage.ncr < SNAP_MAX_CREDS)
			stage.cr[stage.ncr++] = m->u.cred;
		else
			staging = 0;
		return;
	case MSG_SNAP_VAULT:
		if (staging && stage.nv < CFG_MAX_VAULTS)
			stage.v[stage.nv++] = m->u.svault;
		else
			staging = 0;
		return;
	case MSG_SNAP_END:
		if (staging && stage.nch == stage.d.nchildren && stage.ncr == stage.d.ncreds &&
		    stage.nv == stage.d.nvaults) {
			stage.e = m->u.send;
			cur = stage;
			have_cur = 1;
		}
		staging = 0;
		return;
	default:
		return;
	}
}

/* "KIND NAME: STATE[: DETAIL]"; names and details are printable already (the parent's). */
static void
reason(json_t *a, const char *kind, const char *name, const char *what, const char *detail)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s%s: %s%s%s", kind, name, what,
	    detail[0] != '\0' ? ": " : "", detail);
	json_array_append_new(a, json_string(buf));
}

unsigned
snap_healthz(char **body)
{
	json_t *o, *a;
	size_t i;
	unsigned code;

	o = json_object();
	if (!have_cur) {
		json_object_set_new(o, "status", json_string("starting"));
		a = json_array();
		json_array_append_new(a, json_string("no status from the daemon yet"));
		json_object_set_new(o, "reasons", a);
		code = 503;
	} else if (cur.e.healthy) {
		json_object_set_new(o, "status", json_string("ok"));
		code = 200;
	} else {
		json_object_set_new(o, "status", json_string("unhealthy"));
		a = json_array();
		for (i = 0; i < cur.nv; i++) {
			const struct msg_snap_vault *v = &cur.v[i];
			const char *detail = v->last_error;

			if (v->healthy)
				continue;
			if (detail[0] == '\0' && v->verify_outcome == VERIFY_MISMATCH)
				detail = v->verify_msg;
			reason(a, "vault ", v->name, v->state <= VAULT_ST_MAX ?
			    vault_states[v->state] : "?", detail);
		}
		for (i = 0; i < cur.ncr; i++)
			if (cur.cr[i].state != CRED_ST_OK)
				reason(a, "credentials ", cur.cr[i].path,
				    cur.cr[i].state <= CRED_ST_MAX ? cred_states[cur.cr[i].state] :
				    "?", cur.cr[i].error);
		for (i = 0; i < cur.nch; i++)
			if (cur.ch[i].state != CHILD_ST_RUNNING && (cur.ch[i].role != ROLE_STATUSD))
				reason(a, "", msg_role_name(cur.ch[i].role),
				    cur.ch[i].state <= CHILD_ST_MAX ? child_states[cur.ch[i].state] :
				    "?", cur.ch[i].last_reason);
		json_object_set_new(o, "reasons", a);
		code = 503;
	}
	json_object_set_new(o, "schema_version", json_integer(1));
	json_object_set_new(o, "version", json_string(VS_VERSION));
	*body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return code;
}
