/*
 * The parent's side of vaultsync-decoder.  Started with posix_spawn (we
 * run on a worker thread of a multithreaded process, where fork would copy
 * other threads' locks), it is trusted with nothing: its HELLO, every
 * message and the byte count of every file are checked, every entry goes
 * through arc_tree's rules as if it came from the tar stream itself, and
 * a decoder that stalls for DEC_IDLE_MS is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "age.h"
#include "agescrypt.h"
#include "child.h"
#include "decode.h"
#include "log.h"
#include "msg.h"
#include "sigchild.h"

/* Silence that means a stuck decoder: scrypt at the work factor cap fits well inside. */
#define DEC_IDLE_MS	120000
#define DEC_BUF		(1u << 20)

struct decoder {
	pid_t pid;
	int chan, logfd, data;
	uint32_t seq;
	int ended;			/* END received */
	struct msg_dec_end end;
	uint64_t left;			/* bytes of the current file still on the pipe */
	int nosplice;			/* the staging filesystem refused splice */
	unsigned char *buf;
	char why[256];			/* the first transport failure */
};

static pid_t
spawn(const struct decode_conf *c, int chan, int logfd, int afd, int idfd, int data)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	char *argv[12], *envp[] = { NULL }, ids[32];
	int fds[5] = { chan, logfd, afd, idfd, data }, slots[5] = { CHILD_FD_CHAN, CHILD_FD_LOG,
	    DEC_FD_ARCHIVE, DEC_FD_IDENTITY, DEC_FD_DATA }, lifted[5], i, n = 0, rc;
	pid_t pid = -1;

	for (i = 0; i < 5; i++)
		lifted[i] = -1;
	for (i = 0; i < 5; i++)
		if ((lifted[i] = child_lift_fd(fds[i])) == -1)
			goto out;
	argv[n++] = (char *)c->bin;
	argv[n++] = "-m";
	argv[n++] = c->system_mode ? "system" : "user";
	if (c->system_mode) {
		snprintf(ids, sizeof(ids), "%u:%u", (unsigned)c->uid, (unsigned)c->gid);
		argv[n++] = "-u";
		argv[n++] = ids;
		argv[n++] = "-c";
		argv[n++] = (char *)c->chroot_dir;
	}
	if (c->debug)
		argv[n++] = "-d";
	if (c->insecure)
		argv[n++] = "-I";
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* Blocked and ignored signals survive exec: give the child a clean slate. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (i = 0; i < 5; i++)
		posix_spawn_file_actions_adddup2(&fa, lifted[i], slots[i]);
	posix_spawn_file_actions_addclosefrom_np(&fa, DEC_FD_DATA + 1);
	rc = posix_spawn(&pid, c->bin, &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = rc;
		pid = -1;
	}
out:
	rc = errno;
	for (i = 0; i < 5; i++)
		if (lifted[i] != -1)
			close(lifted[i]);
	errno = rc;
	return pid;
}

/* Wait for fd to be readable: 1, or 0 on silence for DEC_IDLE_MS. */
static int
wait_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int rv;

	do {
		rv = poll(&p, 1, DEC_IDLE_MS);
	} while (rv == -1 && errno == EINTR);
	return rv > 0;
}

/* The next message from the decoder: 0, or -1 with d->why set. */
static int
recv_one(struct decoder *d, struct msg *m)
{
	const char *why;
	int rv;

	/* Read first, wait only when nothing is there: a poll per entry is a tenth of an unlock's calls. */
	for (;;) {
		rv = msg_recv(d->chan, PEER_DECODER, m, &why);
		if (rv == MSG_OK)
			return 0;
		if (rv == MSG_ERR && errno == EINTR)
			continue;
		if (rv == MSG_ERR && errno == EAGAIN) {
			if (!wait_readable(d->chan)) {
				snprintf(d->why, sizeof(d->why), "the decoder sent nothing for %d s",
				    DEC_IDLE_MS / 1000);
				return -1;
			}
			continue;
		}
		if (rv == MSG_VIOLATION)
			snprintf(d->why, sizeof(d->why), "the decoder broke the protocol: %s", why);
		else
			snprintf(d->why, sizeof(d->why), "the decoder ended without an answer");
		return -1;
	}
}

static struct decoder *
start(const struct decode_conf *c, uint32_t flags, int idfd, int afd, const char *pass,
    size_t passlen, const struct arc_limits *lim, char *err, size_t errlen)
{
	struct msg_dec_start st;
	struct msg_hello h;
	struct decoder *d;
	struct msg m;
	uint64_t huge;
	int chan[2] = { -1, -1 }, logp[2] = { -1, -1 }, data[2] = { -1, -1 }, nul = -1;

	if (passlen >= sizeof(st.pass)) {
		snprintf(err, errlen, "the passphrase is longer than %zu bytes", sizeof(st.pass) - 1);
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->buf = malloc(DEC_BUF)) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->pid = -1;
	d->chan = d->logfd = d->data = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, logp) == -1 ||
	    pipe2(data, O_CLOEXEC) == -1 ||
	    ((afd == -1 || idfd == -1) &&
	    (nul = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)) {
		snprintf(err, errlen, "start the decoder: %s", strerror(errno));
		goto fail;
	}
	/* Big enough for a stream, not a trickle; the default where the limit says no. */
	(void)fcntl(data[0], F_SETPIPE_SZ, 1 << 20);
	d->pid = spawn(c, chan[1], logp[1], afd == -1 ? nul : afd, idfd == -1 ? nul : idfd,
	    data[1]);
	if (d->pid == -1) {
		snprintf(err, errlen, "start %s: %s", c->bin, strerror(errno));
		goto fail;
	}
	close(chan[1]);
	close(logp[1]);
	close(data[1]);
	chan[1] = logp[1] = data[1] = -1;
	if (nul != -1)
		close(nul);
	nul = -1;
	d->chan = chan[0];
	d->logfd = logp[0];
	d->data = data[0];
	if (recv_one(d, &m) != 0 || m.hdr.type != MSG_HELLO ||
	    m.u.hello.role != ROLE_DECODER || m.u.hello.proto != VS_PROTO_VERSION) {
		snprintf(err, errlen, "decoder: %s", d->why[0] != '\0' ? d->why :
		    "no HELLO as a decoder of this protocol version");
		decoder_free(d);
		return NULL;
	}
	msg_hello_init(&h, ROLE_PARENT);
	memset(&st, 0, sizeof(st));
	st.flags = flags;
	st.max_logn = AGE_SCRYPT_LOGN_MAX;
	huge = age_scrypt_huge_free() >> 20;
	st.huge_mib = huge > UINT32_MAX ? UINT32_MAX : (uint32_t)huge;
	if (lim != NULL) {
		st.max_total_bytes = lim->max_total_bytes;
		st.max_entries = lim->max_entries;
	}
	st.passlen = (uint32_t)passlen;
	memcpy(st.pass, pass, passlen);
	if (msg_send(d->chan, PEER_PARENT, MSG_HELLO, ++d->seq, &h, sizeof(h), -1) != 0 ||
	    msg_send(d->chan, PEER_PARENT, MSG_DEC_START, ++d->seq, &st, sizeof(st), -1) != 0) {
		explicit_bzero(&st, sizeof(st));
		snprintf(err, errlen, "decoder: send: %s", strerror(errno));
		decoder_free(d);
		return NULL;
	}
	explicit_bzero(&st, sizeof(st));
	return d;
fail:
	if (nul != -1)
		close(nul);
	for (int i = 0; i < 2; i++) {
		if (chan[i] != -1)
			close(chan[i]);
		if (logp[i] != -1)
			close(logp[i]);
		if (data[i] != -1)
			close(data[i]);
	}
	free(d->buf);
	free(d);
	return NULL;
}

struct decoder *
decoder_start(const struct decode_conf *c, int idfd, int afd, const char *pass, size_t passlen,
    const struct arc_limits *lim, char *err, size_t errlen)
{
	return start(c, afd == -1 ? DEC_F_IDENTITY_ONLY : 0, idfd, afd, pass, passlen, lim, err,
	    errlen);
}

/* An END: remember it; its message is the reason when it is not ok. */
static void
take_end(struct decoder *d, const struct msg *m)
{
	d->ended = 1;
	d->end = m->u.dend;
	arc_printable(d->end.msg, d->end.msg, sizeof(d->end.msg));
}

int
decoder_ready(struct decoder *d, char *err, size_t errlen)
{
	struct msg m;

	if (recv_one(d, &m) != 0) {
		snprintf(err, errlen, "%s", d->why);
		return -1;
	}
	if (m.hdr.type == MSG_DEC_READY)
		return 0;
	if (m.hdr.type == MSG_DEC_END && !m.u.dend.ok) {
		take_end(d, &m);
		snprintf(err, errlen, "%s", d->end.msg);
		return -1;
	}
	snprintf(err, errlen, "the decoder sent %s before READY", msg_type_name(m.hdr.type));
	return -1;
}

/* An arc_data_fn over the pipe: exactly the current file's bytes, never more. */
static ssize_t
pipe_data(void *arg, const void **buf, char *why, size_t whylen)
{
	struct decoder *d = arg;
	size_t want;
	ssize_t n;
	struct msg m;

	if (d->left == 0)
		return 0;
	want = d->left < DEC_BUF ? (size_t)d->left : DEC_BUF;
	for (;;) {
		if (!wait_readable(d->data)) {
			snprintf(why, whylen, "the decoder sent nothing for %d s", DEC_IDLE_MS / 1000);
			return -1;
		}
		n = read(d->data, d->buf, want);
		if (n > 0)
			break;
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		/* Cut off: the decoder closes the pipe before it says why. */
		if (n == 0 && recv_one(d, &m) == 0 && m.hdr.type == MSG_DEC_END && !m.u.dend.ok) {
			take_end(d, &m);
			snprintf(why, whylen, "%s", d->end.msg);
		} else
			snprintf(why, whylen, "the decoder stopped in the middle of a file");
		return -1;
	}
	d->left -= (uint64_t)n;
	*buf = d->buf;
	return n;
}

/*
 * An arc_move_fn over the pipe: the current file's bytes spliced into fd, so
 * that they are copied once (pipe to page cache) and never pass through
 * this process's memory, let alone get looked at.  Never more than the
 * file's size: the tree counts what it was given, as for pipe_data.
 */
static ssize_t
pipe_move(void *arg, int fd, uint64_t max, char *why, size_t whylen)
{
	struct decoder *d = arg;
	const void *buf;
	size_t want;
	ssize_t n;

	if (max > d->left)
		max = d->left;
	want = max < (1u << 30) ? (size_t)max : (1u << 30);
	if (want == 0)
		return 0;
	while (!d->nosplice) {
		n = splice(d->data, NULL, fd, NULL, want, SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->left -= (uint64_t)n;
			return n;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!wait_readable(d->data)) {
				snprintf(why, whylen, "the decoder sent nothing for %d s",
				    DEC_IDLE_MS / 1000);
				return -1;
			}
			continue;
		}
		if (n == -1 && errno == EINVAL) {
			d->nosplice = 1;	/* a filesystem without splice: read and write */
			break;
		}
		if (n == -1) {
			snprintf(why, whylen, "write: %s", strerror(errno));
			return -1;
		}
		return pipe_data(d, &buf, why, whylen);		/* 0: cut off; say why */
	}
	if ((n = pipe_data(d, &buf, why, whylen)) > 0 && arc_write_all(fd, buf, (size_t)n) != 0) {
		snprintf(why, whylen, "write: %s", strerror(errno));
		return -1;
	}
	return n;
}

int
decoder_unpack(struct decoder *d, int dirfd, const struct arc_limits *lim,
    unsigned char sha256[32], struct arc_stats *st, char *err, size_t errlen)
{
	struct arc_entry e;
	struct arc_tree *t;
	struct msg *m;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if ((m = malloc(sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((t = arc_tree_new(dirfd, lim, st, err, errlen)) == NULL) {
		free(m);
		return -1;
	}
	for (;;) {
		if (d->ended)
			break;
		if (recv_one(d, m) != 0) {
			snprintf(err, errlen, "%s", d->why);
			goto out;
		}
		if (m->hdr.type == MSG_DEC_END) {
			take_end(d, m);
			break;
		}
		if (m->hdr.type != MSG_DEC_ENTRY) {
			snprintf(err, errlen, "the decoder sent %s among the entries",
			    msg_type_name(m->hdr.type));
			goto out;
		}
		memset(&e, 0, sizeof(e));
		e.type = m->u.dentry.type == DEC_DIR ? ARC_DIR : m->u.dentry.type == DEC_FILE ?
		    ARC_FILE : ARC_SYMLINK;
		e.perm = (mode_t)m->u.dentry.perm;
		e.has_mtime = m->u.dentry.has_mtime != 0;
		e.mtime.tv_sec = (time_t)m->u.dentry.mtime_sec;
		e.mtime.tv_nsec = (long)m->u.dentry.mtime_nsec;
		e.size = m->u.dentry.size;
		e.name = m->u.dentry.name;
		e.link = m->u.dentry.link;
		d->left = e.type == ARC_FILE ? e.size : 0;
		if (arc_tree_entry_moved(t, &e, pipe_move, d) != 0)
			goto out;
	}
	if (!d->end.ok) {
		snprintf(err, errlen, "%s", d->end.msg);
		goto out;
	}
	if (d->end.stage != DEC_STAGE_ARCHIVE) {
		snprintf(err, errlen, "the decoder ended before the archive");
		goto out;
	}
	if (arc_tree_finish(t) != 0)
		goto out;
	memcpy(sha256, d->end.sha256, 32);
	rc = 0;
out:
	arc_tree_free(t);
	free(m);
	return rc;
}

/* What the decoder logged, under its name: a seccomp kill names the call here. */
static void
drain_log(struct decoder *d)
{
	struct msg m;
	const char *why;
	int budget = 64;

	while (budget-- > 0 && msg_recv(d->logfd, PEER_DECODER, &m, &why) == MSG_OK) {
		if (m.hdr.type != MSG_LOG)
			break;
		if (m.u.log.seccomp_nr >= 0)
			log_error("decoder (pid %d): seccomp stopped system call %d, %s",
			    (int)d->pid, m.u.log.seccomp_nr, m.u.log.msg);
		else if (m.u.log.level <= (uint32_t)log_get_level())
			log_emit((enum log_level)m.u.log.level, "decoder", d->pid, m.u.log.msg);
	}
}

void
decoder_free(struct decoder *d)
{
	int status;

	if (d == NULL)
		return;
	if (d->pid > 0) {
		/* Its work is done or refused: nothing it does from here on matters. */
		(void)sigchild(-1, d->pid, SIGKILL);
		while (waitpid(d->pid, &status, 0) == -1 && errno == EINTR)
			continue;
	}
	if (d->logfd != -1) {
		drain_log(d);
		close(d->logfd);
	}
	if (d->chan != -1)
		close(d->chan);
	if (d->data != -1)
		close(d->data);
	free(d->buf);
	explicit_bzero(d, sizeof(*d));
	free(d);
}

int
decoder_scan(const struct decode_conf *c, int fd, int *wellformed, char *desc, size_t desclen,
    char *err, size_t errlen)
{
	struct decoder *d;
	struct msg m;
	char path[64];
	int rc = -1, ro;

	/*
	 * A description of its own, read-only and at offset 0: the download's
	 * is writable, and a decoder subverted by what it parses must not be
	 * able to make the object match the local archive before the compare.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((ro = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "reopen the object read-only: %s", strerror(errno));
		return -1;
	}
	d = start(c, DEC_F_SCAN, -1, ro, "", 0, NULL, err, errlen);
	close(ro);
	if (d == NULL)
		return -1;
	if (recv_one(d, &m) != 0)
		snprintf(err, errlen, "%s", d->why);
	else if (m.hdr.type != MSG_DEC_END)
		snprintf(err, errlen, "the decoder sent %s to a scan", msg_type_name(m.hdr.type));
	else {
		take_end(d, &m);
		if (d->end.stage == DEC_STAGE_SCAN) {
			*wellformed = d->end.ok != 0;
			snprintf(desc, desclen, "%s", d->end.msg);
			rc = 0;
		} else
			snprintf(err, errlen, "%s", d->end.msg);
	}
	decoder_free(d);
	return rc;
}
