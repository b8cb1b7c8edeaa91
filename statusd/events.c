/*
 * /v1/events: what happened, in order, each event with the next id of one
 * sequence (1, 2, 3... for the life of this statusd, named by "instance").
 * Events are the tick records the parent sends and the changes between one
 * snapshot and the next (a vault's state, a child's state or pid, the
 * daemon's health).  The last 10 x StatusTickHistory are kept (20 to
 * 10,000); a client that asks for ids older than that gets what is kept and
 * "dropped": how many it missed.
 *
 * ?since=ID answers the events after ID.  With ?timeout=S (at most 60) and
 * nothing newer, the request waits: libmicrohttpd suspends the connection
 * and the next event, or the timeout, resumes it.  Asked for
 * text/event-stream (EventSource), the same batch is sent as server-sent
 * events, with a retry hint; the browser reconnects with Last-Event-ID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "statusd.h"
#include "statusjson.h"

#define EVENTS_KEEP_MIN		20
#define EVENTS_KEEP_MAX		10000
#define EVENTS_WAIT_MAX_S	60
#define EVENTS_WAITERS		STATUSD_CONN_MAX

struct event {
	uint64_t id;
	char *json;		/* the whole event object */
};

struct waiter {
	struct MHD_Connection *conn;	/* NULL: free */
	uint64_t since;			/* it waits for events after this id */
	uint64_t deadline;		/* monotonic ms */
	int resumed;
};

static struct event ring[EVENTS_KEEP_MAX];
static size_t keep = 1000;
static uint64_t next_id = 1;
static struct waiter waiters[EVENTS_WAITERS];
static char instance[48];

/* Before the first event (the parent's configuration comes first). */
void
events_config(uint32_t tick_history)
{
	uint64_t k = (uint64_t)tick_history * 10;

	if (next_id == 1)
		keep = k < EVENTS_KEEP_MIN ? EVENTS_KEEP_MIN : k > EVENTS_KEEP_MAX ?
		    EVENTS_KEEP_MAX : (size_t)k;
}

void
events_init(void)
{
	snprintf(instance, sizeof(instance), "%d-%lld", (int)getpid(), (long long)time(NULL));
}

/*
 * Only the waits the new event answers: one whose since is beyond it (a
 * client that asked for later ids) sleeps on until its own deadline, never
 * resumed and suspended again.
 */
static void
wake(uint64_t id)
{
	size_t i;

	for (i = 0; i < EVENTS_WAITERS; i++)
		if (waiters[i].conn != NULL && !waiters[i].resumed && id > waiters[i].since) {
			waiters[i].resumed = 1;
			MHD_resume_connection(waiters[i].conn);
		}
}

/* Takes o: its id and time are set here. */
static void
add(json_t *o)
{
	struct event *e = &ring[next_id % keep];
	char ts[32];
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "id", json_integer((json_int_t)next_id));
	json_object_set_new(o, "time", json_string(ts));
	free(e->json);
	e->json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	e->id = e->json != NULL ? next_id : 0;
	json_decref(o);
	next_id++;
	wake(next_id - 1);
}

void
events_tick(const struct msg_tick_rec *t)
{
	json_t *o = json_pack("{s:s, s:s}", "type", "tick", "vault", t->vault);

	json_object_update(o, ticks_one_json(t));
	add(o);
}

/* What differs between the snapshot served until now and the one replacing it. */
void
events_snapshot(const struct snapshot *old, const struct snapshot *new)
{
	size_t i, j;

	if (old == NULL)
		return;		/* the first: nothing to compare with */
	for (i = 0; i < new->nv; i++)
		for (j = 0; j < old->nv; j++)
			if (strcmp(new->v[i].name, old->v[j].name) == 0 &&
			    new->v[i].state != old->v[j].state)
				add(json_pack("{s:s, s:s, s:s, s:s}", "type", "vault_state",
				    "vault", new->v[i].name,
				    "from", sj_vault_state_name(old->v[j].state),
				    "to", sj_vault_state_name(new->v[i].state)));
	for (i = 0; i < new->nch && i < old->nch; i++)
		if (new->ch[i].state != old->ch[i].state || new->ch[i].pid != old->ch[i].pid)
			add(json_pack("{s:s, s:s, s:s, s:i, s:i}", "type", "child",
			    "child", msg_role_name(new->ch[i].role),
			    "state", sj_child_state_name(new->ch[i].state),
			    "pid", (int)new->ch[i].pid, "restarts", (int)new->ch[i].restarts));
	if (new->e.healthy != old->e.healthy)
		add(json_pack("{s:s, s:b}", "type", "health", "healthy", (int)new->e.healthy));
}

/* A connection closed (perhaps while it waited): it is no waiter any more. */
void
events_forget(struct MHD_Connection *conn)
{
	struct waiter *w;
	size_t i;

	for (i = 0; i < EVENTS_WAITERS; i++) {
		w = &waiters[i];
		if (w->conn == conn)
			memset(w, 0, sizeof(*w));
	}
}

static struct waiter *
waiter_of(struct MHD_Connection *conn)
{
	size_t i;

	for (i = 0; i < EVENTS_WAITERS; i++)
		if (waiters[i].conn == conn)
			return &waiters[i];
	return NULL;
}

/*
 * Resume the waits whose time is up; ms until the next one ends, or -1.  0
 * when it resumed one: libmicrohttpd must run at once to answer it, as
 * nothing else may wake the loop for seconds.
 */
int
events_expire(void)
{
	uint64_t now = mono_ms(), next = 0;
	int resumed = 0;
	size_t i;

	for (i = 0; i < EVENTS_WAITERS; i++) {
		struct waiter *w = &waiters[i];

		if (w->conn == NULL || w->resumed)
			continue;
		if (w->deadline <= now) {
			w->resumed = 1;
			MHD_resume_connection(w->conn);
			resumed = 1;
		} else if (next == 0 || w->deadline < next)
			next = w->deadline;
	}
	if (resumed)
		return 0;
	return next == 0 ? -1 : (int)(next - now);
}

static int
number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL)
		return 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

unsigned
events_route(struct MHD_Connection *conn, char **body, const char **ctype)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
	int sse = accept != NULL && strstr(accept, "text/event-stream") != NULL;
	uint64_t since = 0, timeout = 0, oldest, id, dropped;
	int first = 1;
	struct waiter *w = waiter_of(conn);
	size_t len;
	FILE *f;

	if (number(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since"),
	    UINT64_MAX / 2, &since) != 0 ||
	    number(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout"),
	    EVENTS_WAIT_MAX_S, &timeout) != 0 ||
	    number(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID"),
	    UINT64_MAX / 2, &since) != 0) {
		*body = strdup("{\"error\":\"since and Last-Event-ID must be event ids, "
		    "timeout a number of seconds from 0 to 60\"}\n");
		*ctype = "application/json";
		return 400;
	}
	/*
	 * Nothing newer yet: wait for it, or for the timeout.  A wait is
	 * resumed once, by an event it asked for or by its deadline, and then
	 * answered.
	 */
	if (since + 1 >= next_id && timeout > 0 && w == NULL) {
		if ((w = waiter_of(NULL)) == NULL) {
			*body = strdup("{\"error\":\"too many clients waiting for events\"}\n");
			*ctype = "application/json";
			return 503;
		}
		w->conn = conn;
		w->since = since;
		w->deadline = mono_ms() + timeout * 1000;
		w->resumed = 0;
		statusd_conn_answered(conn);	/* its request is whole: no header deadline */
		MHD_suspend_connection(conn);
		return 0;
	}
	if (w != NULL)
		memset(w, 0, sizeof(*w));
	oldest = next_id > keep ? next_id - keep : 1;
	dropped = since + 1 < oldest ? oldest - since - 1 : 0;
	*body = NULL;
	if ((f = open_memstream(body, &len)) == NULL)
		return 500;
	if (sse) {
		fprintf(f, "retry: 1000\n\n");
		if (dropped > 0)
			fprintf(f, "event: dropped\ndata: {\"dropped\":%llu}\n\n",
			    (unsigned long long)dropped);
	} else
		fprintf(f, "{\"schema_version\":1,\"instance\":\"%s\",\"dropped\":%llu,"
		    "\"events\":[", instance, (unsigned long long)dropped);
	for (id = since + 1 < oldest ? oldest : since + 1; id < next_id; id++) {
		const struct event *e = &ring[id % keep];

		if (e->id != id)
			continue;	/* could not be stored (out of memory) */
		if (sse)
			fprintf(f, "id: %llu\ndata: %s\n\n", (unsigned long long)id, e->json);
		else
			fprintf(f, "%s%s", first ? "" : ",", e->json);
		first = 0;
	}
	if (!sse)
		fprintf(f, "],\"next\":%llu}\n", (unsigned long long)next_id);
	if (fclose(f) != 0) {
		free(*body);
		*body = NULL;
	}
	*ctype = sse ? "text/event-stream" : "application/json";
	return 200;
}
