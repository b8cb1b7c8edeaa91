/*
 * vaultsync-uploader: the only process that ever holds S3 credentials.  It
 * opens and parses its credentials files itself while still privileged,
 * then closes its sandbox, and reports to the parent where the credentials
 * came from and when they expire, never what they are.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "creds.h"
#include "log.h"

#define MAX_CREDS	(PRIVDROP_MAX_JOBARGS)

struct cred_slot {
	struct msg_cred_info info;
	struct creds creds;
	int loaded;
};

static struct child c;
static struct cred_slot slots[MAX_CREDS];
static int nslots;

/* -C KIND:NAME=PATH, KIND f (file) or s (systemd credential). */
static int
parse_credarg(const char *arg, struct msg_cred_info *info)
{
	const char *eq;
	size_t nlen;

	memset(info, 0, sizeof(*info));
	if ((arg[0] != 'f' && arg[0] != 's') || arg[1] != ':')
		return -1;
	info->source = arg[0] == 's' ? CRED_SRC_SYSTEMD : CRED_SRC_FILE;
	arg += 2;
	if ((eq = strchr(arg, '=')) == NULL || eq[1] != '/')
		return -1;
	nlen = (size_t)(eq - arg);
	if (nlen >= sizeof(info->name) || strlen(eq + 1) >= sizeof(info->path))
		return -1;
	memcpy(info->name, arg, nlen);
	msg_strlcpy(info->path, eq + 1, sizeof(info->path));
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
read_channel(void)
{
	struct msg m;
	const char *why;
	int rv;

	rv = msg_recv(CHILD_FD_CHAN, PEER_PARENT, &m, &why);
	if (rv == MSG_EOF)
		exit(0);
	if (rv == MSG_ERR) {
		if (errno == EAGAIN)
			return;
		fatal("channel");
	}
	if (rv == MSG_VIOLATION)
		fatalx("bad message from parent: %s", why);
	fatalx("unexpected %s from parent", msg_type_name(m.hdr.type));
}

static void
wipe_all(void)
{
	int i;

	for (i = 0; i < nslots; i++)
		creds_free(&slots[i].creds);
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
	for (i = 0; i < c.pd.njobargs; i++) {
		if (parse_credarg(c.pd.jobargs[i], &slots[nslots].info) != 0) {
			fprintf(stderr, "vaultsync-uploader: bad -C argument\n");
			exit(64);
		}
		load_slot(&slots[nslots++]);
	}
	atexit(wipe_all);
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
		if (child_send(&c, MSG_CRED_INFO, in, sizeof(*in)) != 0)
			fatal("send CRED_INFO");
	}

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
