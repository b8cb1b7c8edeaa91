/*
 * The latest status snapshot the parent pushed, and what /v1/healthz,
 * /v1/status and /v1/vaults say of it.  Records are collected into a staging copy and become the one
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
#include "statusjson.h"

static struct snapshot cur, stage;
static int have_cur, staging;

/*
 * The records a snapshot holds, and nothing past them: the arrays are sized
 * for the most vaults a configuration may have, and slots never used are
 * never touched (never made resident).
 */
static void
copy_used(struct snapshot *to, const struct snapshot *from)
{
	to->d = from->d;
	to->e = from->e;
	to->nch = from->nch;
	to->ncr = from->ncr;
	to->nv = from->nv;
	memcpy(to->ch, from->ch, from->nch * sizeof(from->ch[0]));
	memcpy(to->cr, from->cr, from->ncr * sizeof(from->cr[0]));
	memcpy(to->v, from->v, from->nv * sizeof(from->v[0]));
}

void
snap_take(const struct msg *m)
{
	switch (m->hdr.type) {
	case MSG_SNAP_DAEMON:
		stage.nch = stage.ncr = stage.nv = 0;
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
			events_snapshot(have_cur ? &cur : NULL, &stage);
			copy_used(&cur, &stage);
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
			reason(a, "vault ", v->name, sj_vault_state_name(v->state), detail);
		}
		for (i = 0; i < cur.ncr; i++)
			if (cur.cr[i].state != CRED_ST_OK)
				reason(a, "credentials ", cur.cr[i].path,
				    sj_cred_state_name(cur.cr[i].state), cur.cr[i].error);
		for (i = 0; i < cur.nch; i++)
			if (cur.ch[i].state != CHILD_ST_RUNNING && (cur.ch[i].role != ROLE_STATUSD))
				reason(a, "", msg_role_name(cur.ch[i].role),
				    sj_child_state_name(cur.ch[i].state), cur.ch[i].last_reason);
		json_object_set_new(o, "reasons", a);
		code = 503;
	}
	json_object_set_new(o, "schema_version", json_integer(1));
	json_object_set_new(o, "version", json_string(VS_VERSION));
	*body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return code;
}

const struct snapshot *
snap_current(void)
{
	return have_cur ? &cur : NULL;
}

/* The body a route answers with: compact JSON and a newline, or NULL. */
static char *
dump(json_t *o)
{
	char *b, *nl;
	size_t n;

	if (o == NULL)
		return NULL;
	b = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (b == NULL)
		return NULL;
	n = strlen(b);
	if ((nl = realloc(b, n + 2)) == NULL) {
		free(b);
		return NULL;
	}
	nl[n] = '\n';
	nl[n + 1] = '\0';
	return nl;
}

static json_t *
vaults_array(void)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < cur.nv; i++)
		json_array_append_new(a, sj_vault(&cur.v[i]));
	return a;
}

/* The same document vaultsyncctl status --json prints. */
unsigned
snap_status(char **body)
{
	json_t *o, *ch, *cr;
	size_t i;

	if (!have_cur)
		return snap_healthz(body);	/* 503 "starting" */
	o = json_object();
	ch = json_array();
	cr = json_array();
	for (i = 0; i < cur.nch; i++)
		json_array_append_new(ch, sj_child(&cur.ch[i]));
	for (i = 0; i < cur.ncr; i++)
		json_array_append_new(cr, sj_cred(&cur.cr[i]));
	json_object_set_new(o, "schema_version", json_integer(1));
	json_object_set_new(o, "healthy", json_boolean(cur.e.healthy));
	json_object_set_new(o, "daemon", sj_daemon(&cur.d));
	json_object_set_new(o, "children", ch);
	json_object_set_new(o, "credentials", cr);
	json_object_set_new(o, "vaults", vaults_array());
	*body = dump(o);
	return 200;
}

unsigned
snap_vaults(char **body)
{
	json_t *o;

	if (!have_cur)
		return snap_healthz(body);
	o = json_object();
	json_object_set_new(o, "schema_version", json_integer(1));
	json_object_set_new(o, "vaults", vaults_array());
	*body = dump(o);
	return 200;
}

/* One vault by name: 200, or 404 with an error body. */
unsigned
snap_vault(const char *name, char **body)
{
	json_t *o;
	size_t i;

	if (!have_cur)
		return snap_healthz(body);
	for (i = 0; i < cur.nv; i++)
		if (strcmp(cur.v[i].name, name) == 0) {
			o = sj_vault(&cur.v[i]);
			json_object_set_new(o, "schema_version", json_integer(1));
			*body = dump(o);
			return 200;
		}
	*body = dump(json_pack("{s:s}", "error", "no such vault"));
	return 404;
}

/* /v1/vaults/NAME/ticks: 404 for a vault the snapshot does not name. */
unsigned
snap_ticks(const char *name, size_t limit, char **body)
{
	json_t *o;
	size_t i;

	if (!have_cur)
		return snap_healthz(body);
	for (i = 0; i < cur.nv && strcmp(cur.v[i].name, name) != 0; i++)
		;
	if (i == cur.nv) {
		*body = dump(json_pack("{s:s}", "error", "no such vault"));
		return 404;
	}
	o = json_object();
	json_object_set_new(o, "schema_version", json_integer(1));
	json_object_set_new(o, "vault", json_string(name));
	json_object_set_new(o, "ticks", ticks_json(name, limit));
	*body = dump(o);
	return 200;
}

