/*
 * vaultsync-uploader: the only process that ever holds S3 credentials.  It
 * opens and parses its credentials files itself while still privileged,
 * resolves its endpoints and loads the CA bundle, then closes its sandbox.
 * From then on it serves the parent's requests one at a time: the archive
 * bytes come and go only through fds the parent passes.  It reports where
 * its credentials came from and when they expire, never what they are.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "creds.h"
#include "log.h"
#include "progress.h"
#include "remote.h"

#define MAX_CREDS	UPL_MAX_CREDS
#define NET_FAILURES_REEXEC	3	/* then exit: the parent re-execs us, we re-resolve */
#define EXIT_REEXEC	75

struct cred_slot {
	struct msg_cred_info info;
	struct creds creds;
	int loaded;
};

static struct child c;
static struct cred_slot slots[MAX_CREDS];
static int nslots;
static struct upl_remote remotes[UPL_MAX_REMOTES];
static int nremotes;

void
upl_seterr(struct msg_upl_result *res, uint32_t outcome, const char *fmt, ...)
{
	va_list ap;

	res->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

/* One remote from its message (already checked by the codec); -1 if it cannot be used. */
static int
remote_from_msg(const struct msg_upl_remote *m, struct upl_remote *r,
    struct s3_remote_cfg *s3cfg)
{
	memset(r, 0, sizeof(*r));
	memset(s3cfg, 0, sizeof(*s3cfg));
	r->dirfd = -1;
	msg_strlcpy(r->vault, m->vault, sizeof(r->vault));
	if (m->kind == UPL_REMOTE_DIR) {
		r->kind = UPL_KIND_DIR;
		r->dirfd = m->dirfd;
		snprintf(r->base, sizeof(r->base), "%s/", m->vault);
		return 0;
	}
	if (m->cred >= (uint32_t)nslots || strlen(m->region) >= sizeof(s3cfg->region) ||
	    strlen(m->bucket) >= sizeof(s3cfg->bucket) ||
	    strlen(m->endpoint) >= sizeof(s3cfg->endpoint))
		return -1;
	r->kind = UPL_KIND_S3;
	r->cred = (int)m->cred;
	s3cfg->path_style = m->path_style != 0;
	msg_strlcpy(s3cfg->region, m->region, sizeof(s3cfg->region));
	msg_strlcpy(s3cfg->bucket, m->bucket, sizeof(s3cfg->bucket));
	msg_strlcpy(s3cfg->endpoint, m->endpoint, sizeof(s3cfg->endpoint));
	r->tls = strncmp(m->endpoint, "https://", 8) == 0;
	if ((size_t)snprintf(r->base, sizeof(r->base), "%s%s%s/", m->prefix,
	    m->prefix[0] ? "/" : "", m->vault) >= sizeof(r->base))
		return -1;
	return 0;
}

static void
load_slot(struct cred_slot *s)
{
	enum cred_state st = CRED_ST_UNKNOWN;
	char err[256] = "";
	int fd;

	s->info.loaded_at = (int64_t)time(NULL);
	if ((fd = creds_open(s->info.path, &st, err, sizeof(err))) < 0) {
		s->info.state = st;
		msg_strlcpy(s->info.error, err, sizeof(s->info.error));
		return;
	}
	if (creds_read_fd(fd, &s->creds, &st, err, sizeof(err)) != 0) {
		s->info.state = st;
		msg_strlcpy(s->info.error, err, sizeof(s->info.error));
	} else {
		s->loaded = 1;
		s->info.state = CRED_ST_OK;
		s->info.expiry = s->creds.expiry;
		creds_key_hint(&s->creds, s->info.key_hint);
		if (s->creds.expiry != 0 && s->creds.expiry <= s->info.loaded_at) {
			s->info.state = CRED_ST_EXPIRED;
			msg_strlcpy(s->info.error, "credentials have expired",
			    sizeof(s->info.error));
		}
	}
	close(fd);
}

static void
send_cred(struct cred_slot *s)
{
	if (child_send(&c, MSG_CRED_INFO, &s->info, sizeof(s->info)) != 0)
		fatal("send CRED_INFO");
}

/* The credentials a request may use, or NULL (with the slot's state telling why). */
static const struct creds *
creds_for(const struct upl_remote *r)
{
	struct cred_slot *s = &slots[r->cred];

	if (!s->loaded)
		return NULL;
	if (s->creds.expiry != 0 && s->creds.expiry <= (int64_t)time(NULL)) {
		if (s->info.state != CRED_ST_EXPIRED) {
			s->info.state = CRED_ST_EXPIRED;
			msg_strlcpy(s->info.error, "credentials have expired", sizeof(s->info.error));
			send_cred(s);
		}
		return NULL;
	}
	return &s->creds;
}

/* The server's verdict on the credentials, told to the parent when it changes. */
static void
judge_creds(const struct upl_remote *r, const struct msg_upl_result *res)
{
	struct cred_slot *s = &slots[r->cred];

	if (r->kind != UPL_KIND_S3 || !s->loaded || s->info.state == CRED_ST_EXPIRED)
		return;
	if (res->outcome == UPL_AUTH && s->info.state != CRED_ST_REJECTED) {
		s->info.state = CRED_ST_REJECTED;
		msg_strlcpy(s->info.error, res->error, sizeof(s->info.error));
		send_cred(s);
	} else if (res->outcome != UPL_AUTH && res->http_status != 0 &&
	    s->info.state == CRED_ST_REJECTED) {
		s->info.state = CRED_ST_OK;
		s->info.error[0] = '\0';
		send_cred(s);
	}
}

static void
emit_entry(void *arg, const struct msg_upl_entry *e)
{
	(void)arg;
	if (child_send(&c, MSG_UPL_ENTRY, e, sizeof(*e)) != 0)
		fatal("send UPL_ENTRY");
}

static void
emit_mpu(void *arg, const struct msg_upl_mpu *m)
{
	(void)arg;
	if (child_send(&c, MSG_UPL_MPU, m, sizeof(*m)) != 0)
		fatal("send UPL_MPU");
}

static void
emit_progress(const struct msg_upl_progress *p)
{
	/* Best effort: a full channel drops one report, the next one says more. */
	(void)child_send(&c, MSG_UPL_PROGRESS, p, sizeof(*p));
}

static struct upl_remote *
remote_by_vault(const char *vault)
{
	int i;

	for (i = 0; i < nremotes; i++)
		if (strcmp(remotes[i].vault, vault) == 0)
			return &remotes[i];
	return NULL;
}

static void
serve(struct msg *m)
{
	static const struct upl_emit em = { emit_entry, emit_mpu, NULL };
	struct msg_upl_result res;
	struct upl_remote *r;
	const char *vault;

	memset(&res, 0, sizeof(res));
	res.outcome = UPL_FAILED;
	switch (m->hdr.type) {
	case MSG_UPL_PUT:
		res.id = m->u.uput.id;
		vault = m->u.uput.vault;
		break;
	case MSG_UPL_GET:
		res.id = m->u.uget.id;
		vault = m->u.uget.vault;
		break;
	case MSG_UPL_OP:
		res.id = m->u.uop.id;
		vault = m->u.uop.vault;
		break;
	default:
		fatalx("unexpected %s from the parent", msg_type_name(m->hdr.type));
	}
	if (m->hdr.type == MSG_UPL_PUT)
		progress_begin(m->u.uput.id, m->u.uput.size, emit_progress);
	if ((r = remote_by_vault(vault)) == NULL)
		upl_seterr(&res, UPL_FAILED, "vault %s has no remote here", vault);
	else if (r->kind == UPL_KIND_DIR) {
		if (m->hdr.type == MSG_UPL_PUT)
			dirr_put(r, &m->u.uput, m->fd, &res);
		else if (m->hdr.type == MSG_UPL_GET)
			dirr_get(r, &m->u.uget, m->fd, &res);
		else
			dirr_op(r, &m->u.uop, &em, &res);
	} else {
		const struct creds *cr = creds_for(r);

		if (m->hdr.type == MSG_UPL_PUT)
			s3r_put(r, cr, &m->u.uput, m->fd, &em, &res);
		else if (m->hdr.type == MSG_UPL_GET)
			s3r_get(r, cr, &m->u.uget, m->fd, &res);
		else
			s3r_op(r, cr, &m->u.uop, &em, &res);
		judge_creds(r, &res);
	}
	progress_end();
	if (m->fd >= 0)
		close(m->fd);
	if (child_send(&c, MSG_UPL_RESULT, &res, sizeof(res)) != 0)
		fatal("send UPL_RESULT");
	/* Addresses are pinned at exec: a remote that keeps failing gets a fresh start. */
	if (r != NULL && r->net_failures >= NET_FAILURES_REEXEC) {
		log_info("%s: %u network failures in a row; restarting to resolve %s again",
		    r->vault, r->net_failures, "the endpoint");
		exit(EXIT_REEXEC);
	}
}

static void
read_channel(void)
{
	struct msg m;

	if (!child_read(&c, &m))
		return;
	serve(&m);
}

static void
wipe_all(void)
{
	int i;

	for (i = 0; i < nslots; i++)
		creds_free(&slots[i].creds);
}

/*
 * Before the sandbox: the configuration the parent sends on the channel
 * (credentials first, since remotes name their slot), the credential files
 * read, the dir: remotes' fds checked, the endpoints resolved.
 */
static void
setup(void)
{
	struct s3_remote_cfg s3cfg[UPL_MAX_REMOTES];
	struct msg m;
	char err[256];
	int i, have_s3 = 0;

	for (;;) {
		if (child_recv(&c, &m, 10000, err, sizeof(err)) != 0)
			fatalx("configuration from the parent: %s", err);
		if (m.hdr.type == MSG_UPL_CRED) {
			if (nslots == MAX_CREDS || m.u.ucred.slot != (uint32_t)nslots)
				fatalx("configuration: credentials slot %u out of order",
				    m.u.ucred.slot);
			memset(&slots[nslots].info, 0, sizeof(slots[nslots].info));
			slots[nslots].info.source = m.u.ucred.source;
			msg_strlcpy(slots[nslots].info.name, m.u.ucred.name,
			    sizeof(slots[nslots].info.name));
			msg_strlcpy(slots[nslots].info.path, m.u.ucred.path,
			    sizeof(slots[nslots].info.path));
			load_slot(&slots[nslots++]);
		} else if (m.hdr.type == MSG_UPL_REMOTE) {
			struct upl_remote *r = &remotes[nremotes];
			struct stat st;

			if (nremotes == UPL_MAX_REMOTES ||
			    remote_from_msg(&m.u.uremote, r, &s3cfg[nremotes]) != 0)
				fatalx("configuration: bad remote for vault %s", m.u.uremote.vault);
			if (remote_by_vault(r->vault) != NULL)
				fatalx("configuration: two remotes for vault %s", r->vault);
			if (r->kind == UPL_KIND_DIR) {
				if (fstat(r->dirfd, &st) != 0 || !S_ISDIR(st.st_mode))
					fatalx("%s: fd %d is not a directory", r->vault, r->dirfd);
				if (c.pd.ndirfds == (int)(sizeof(c.pd.dirfds) / sizeof(c.pd.dirfds[0])))
					fatalx("too many dir: remotes");
				c.pd.dirfds[c.pd.ndirfds++] = r->dirfd;
			} else
				have_s3 = 1;
			nremotes++;
		} else if (m.hdr.type == MSG_UPL_CONF_END) {
			if (m.u.uconfend.ncreds != (uint32_t)nslots ||
			    m.u.uconfend.nremotes != (uint32_t)nremotes)
				fatalx("configuration: %d credentials and %d remotes received, "
				    "%u and %u announced", nslots, nremotes, m.u.uconfend.ncreds,
				    m.u.uconfend.nremotes);
			upl_multipart_threshold = m.u.uconfend.multipart_threshold;
			break;
		} else
			fatalx("configuration: unexpected %s from the parent",
			    msg_type_name(m.hdr.type));
	}
	if (have_s3 && s3_global_init(NULL, err, sizeof(err)) != 0)
		fatalx("%s", err);
	for (i = 0; i < nremotes; i++) {
		struct upl_remote *r = &remotes[i];

		if (r->kind != UPL_KIND_S3)
			continue;
		if ((r->s3 = s3_remote_new(&s3cfg[i], err, sizeof(err))) == NULL)
			snprintf(r->s3_err, sizeof(r->s3_err), "%s", err);
	}
}

int
main(int argc, char **argv)
{
	char err[256];
	int i;

	if (child_begin(&c, ROLE_UPLOADER, &uploader_policy, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "vaultsync-uploader: %s\n", err);
		exit(64);
	}
	atexit(wipe_all);
	setup();
	if (child_sandbox(&c, err, sizeof(err)) != 0)
		fatal_code(CHILD_EXIT_SANDBOX, "sandbox: %s", err);
	if (child_hello(&c, err, sizeof(err)) != 0)
		fatalx("%s", err);
	for (i = 0; i < nslots; i++) {
		struct msg_cred_info *in = &slots[i].info;

		if (in->state == CRED_ST_OK)
			log_info("credentials %s loaded (key ...%s)", in->path, in->key_hint);
		else
			log_warn("credentials %s: %s", in->path, in->error);
		send_cred(&slots[i]);
	}
	for (i = 0; i < nremotes; i++)
		if (remotes[i].kind == UPL_KIND_S3 && remotes[i].s3 == NULL)
			log_warn("vault %s: %s", remotes[i].vault, remotes[i].s3_err);

	for (;;) {
		struct pollfd pfd = { CHILD_FD_CHAN, POLLIN, 0 };

		if (poll(&pfd, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		read_channel();
	}
}
