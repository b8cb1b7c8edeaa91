/*
 * /metrics: the latest snapshot in the Prometheus text exposition format
 * (version 0.0.4).  Names follow its rules: the vaultsync_ prefix, base
 * units (seconds, bytes), _total for counters, _timestamp_seconds for
 * points in time; a time that never happened is left out, not written as 0.
 * Label values come from the parent's records and are escaped all the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statusd.h"
#include "statusjson.h"

void
metrics_label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* name{key="value"} number, for one vault, child or credentials file. */
static void
sample(FILE *f, const char *name, const char *key, const char *val, long long n)
{
	fprintf(f, "%s{%s=\"", name, key);
	metrics_label(f, val);
	fprintf(f, "\"} %lld\n", n);
}

static void
vault_metrics(FILE *f, const struct snapshot *s)
{
	size_t i;
	uint32_t st;

/* One gauge or counter per vault; a vault for which skip holds has no sample. */
#define EACH(m_name, m_type, m_text, m_expr, m_skip) do {			\
	help(f, m_name, m_type, m_text);					\
	for (i = 0; i < s->nv; i++)						\
		if (!(m_skip))							\
			sample(f, m_name, "vault", s->v[i].name, (long long)(m_expr));	\
} while (0)
	EACH("vaultsync_vault_healthy", "gauge", "1 if the vault counts as healthy "
	    "(the rule of vaultsyncctl status).", s->v[i].healthy, 0);
	help(f, "vaultsync_vault_state", "gauge", "1 for the state the vault is in.");
	for (i = 0; i < s->nv; i++)
		for (st = 0; st <= VAULT_ST_MAX; st++) {
			fputs("vaultsync_vault_state{vault=\"", f);
			metrics_label(f, s->v[i].name);
			fprintf(f, "\",state=\"%s\"} %d\n", sj_vault_state_name(st),
			    s->v[i].state == st);
		}
	EACH("vaultsync_vault_last_save_timestamp_seconds", "gauge",
	    "When the last new archive was saved.", s->v[i].last_save_at,
	    s->v[i].last_save_at <= 0);
	EACH("vaultsync_vault_last_push_attempt_timestamp_seconds", "gauge",
	    "When the last push ended, successful or not.", s->v[i].last_push_at,
	    s->v[i].last_push_at <= 0);
	EACH("vaultsync_vault_last_successful_push_timestamp_seconds", "gauge",
	    "When a push last succeeded.", s->v[i].last_ok_push_at,
	    s->v[i].last_ok_push_at <= 0);
	EACH("vaultsync_vault_remote_current", "gauge",
	    "1 if the remote holds the last saved archive.", s->v[i].pushed, 0);
	EACH("vaultsync_vault_consecutive_failures", "gauge",
	    "Failed operations or pushes in a row.", s->v[i].consecutive_failures, 0);
	EACH("vaultsync_vault_archive_bytes", "gauge", "Size of the local archive.",
	    s->v[i].archive_bytes, 0);
	EACH("vaultsync_vault_last_push_uploaded_bytes", "gauge",
	    "Bytes the last successful push uploaded.", s->v[i].uploaded_bytes, 0);
	EACH("vaultsync_vault_push_sent_bytes", "gauge",
	    "Of the upload in flight, the bytes sent so far.", s->v[i].push_sent,
	    s->v[i].push_total == 0);
	EACH("vaultsync_vault_push_size_bytes", "gauge", "The size of the upload in flight.",
	    s->v[i].push_total, s->v[i].push_total == 0);
	EACH("vaultsync_vault_history_copies", "gauge",
	    "Copies under history/ on the remote at the last listing.", s->v[i].history_count,
	    s->v[i].history_count < 0);
	EACH("vaultsync_vault_watches", "gauge", "inotify watches on the vault's tree.",
	    s->v[i].nwatches, 0);
	EACH("vaultsync_vault_watcher_polling", "gauge",
	    "1 if the vault is polled because inotify cannot cover it.",
	    s->v[i].watch_mode == WATCH_POLLING, 0);
	EACH("vaultsync_vault_verify_runs_total", "counter",
	    "Restore drills since the daemon started.", s->v[i].verify_runs, 0);
	EACH("vaultsync_vault_verify_mismatches_total", "counter",
	    "Drills that found the remote not holding what was encrypted here.",
	    s->v[i].verify_mismatches, 0);
	EACH("vaultsync_vault_verify_errors_total", "counter",
	    "Drills that could not fetch or found a broken file.", s->v[i].verify_errors, 0);
#undef EACH
}

/* process_* for each of the four processes, as the parent read them from /proc. */
static void
process_metrics(FILE *f, const struct snapshot *s)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "process_cpu_seconds_total", "counter", "User and system CPU time." },
		{ "process_resident_memory_bytes", "gauge", "Resident memory." },
		{ "process_open_fds", "gauge", "Open file descriptors." },
	};
	size_t k, i;

	for (k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		help(f, fam[k].name, fam[k].type, fam[k].help);
		for (i = 0; i <= s->nch; i++) {
			const struct msg_proc_stat *p = i == 0 ? &s->d.proc : &s->ch[i - 1].proc;

			if (i > 0 && s->ch[i - 1].pid == 0)
				continue;	/* not running: nothing to say */
			fprintf(f, "%s{process=\"%s\"} ", fam[k].name,
			    i == 0 ? "parent" : msg_role_name(s->ch[i - 1].role));
			if (k == 0)
				fprintf(f, "%.3f\n", (double)p->cpu_ms / 1000);
			else
				fprintf(f, "%llu\n", k == 1 ? (unsigned long long)p->rss_bytes :
				    (unsigned long long)p->open_fds);
		}
	}
}

static void
daemon_metrics(FILE *f, const struct snapshot *s)
{
	size_t i;

	help(f, "vaultsync_build_info", "gauge", "The running vaultsyncd's version.");
	fputs("vaultsync_build_info{version=\"", f);
	metrics_label(f, s->d.version);
	fputs("\"} 1\n", f);
	help(f, "vaultsync_start_time_seconds", "gauge", "When the daemon started.");
	fprintf(f, "vaultsync_start_time_seconds %lld\n", (long long)s->d.started_at);
	help(f, "vaultsync_healthy", "gauge", "1 if every vault, credentials file and "
	    "child is healthy (healthz answers 200).");
	fprintf(f, "vaultsync_healthy %u\n", s->e.healthy ? 1u : 0u);
	help(f, "vaultsync_credentials_ok", "gauge", "1 if the credentials file loaded.");
	for (i = 0; i < s->ncr; i++)
		sample(f, "vaultsync_credentials_ok", "path", s->cr[i].path,
		    s->cr[i].state == CRED_ST_OK);
	help(f, "vaultsync_credentials_expiry_timestamp_seconds", "gauge",
	    "When the loaded credentials expire (AWS_CREDENTIAL_EXPIRATION).");
	for (i = 0; i < s->ncr; i++)
		if (s->cr[i].expiry > 0)
			sample(f, "vaultsync_credentials_expiry_timestamp_seconds", "path",
			    s->cr[i].path, (long long)s->cr[i].expiry);
	help(f, "vaultsync_child_up", "gauge", "1 if the child process is running.");
	for (i = 0; i < s->nch; i++)
		sample(f, "vaultsync_child_up", "child", msg_role_name(s->ch[i].role),
		    s->ch[i].state == CHILD_ST_RUNNING);
	help(f, "vaultsync_child_restarts_total", "counter", "Restarts of the child.");
	for (i = 0; i < s->nch; i++)
		sample(f, "vaultsync_child_restarts_total", "child", msg_role_name(s->ch[i].role),
		    s->ch[i].restarts);
	process_metrics(f, s);
	help(f, "vaultsync_child_violations_total", "counter",
	    "Protocol violations that got the child killed.");
	for (i = 0; i < s->nch; i++)
		sample(f, "vaultsync_child_violations_total", "child",
		    msg_role_name(s->ch[i].role), s->ch[i].violations);
}

unsigned
metrics_render(char **body)
{
	const struct snapshot *s = snap_current();
	size_t len;
	FILE *f;

	if (s == NULL)
		return snap_healthz(body);
	*body = NULL;
	if ((f = open_memstream(body, &len)) == NULL)
		return 500;
	daemon_metrics(f, s);
	vault_metrics(f, s);
	ticks_metrics(f);
	if (fclose(f) != 0) {
		free(*body);
		*body = NULL;
	}
	return 200;
}
