#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "log.h"

/*
 * Sanitizer builds: children get an empty environment, so ASAN_OPTIONS cannot
 * reach them.  LeakSanitizer's exit-time scan needs clone and ptrace, which
 * their seccomp filters (rightly) forbid; leaks are checked by the unit tests.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif
#endif

int
child_lift_fd(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 16);
}

static int
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int
child_begin(struct child *c, uint32_t role, const struct sb_policy *policy,
    int argc, char **argv, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->self = msg_role_peer(role);
	log_init(msg_role_name(role), LF_TEXT, LL_INFO);
	if (!is_socket(CHILD_FD_CHAN) || !is_socket(CHILD_FD_LOG)) {
		snprintf(err, errlen, "fds 3 and 4 are not sockets: "
		    "this program is started by vaultsyncd, not by hand");
		return -1;
	}
	log_set_channel(CHILD_FD_LOG, c->self);
	if (privdrop_parse_args(argc, argv, &c->pd, &c->debug, err, errlen) != 0)
		return -1;
	if (c->debug)
		log_set_level(LL_DEBUG);
	c->pd.policy = policy;
	c->pd.log_fd = CHILD_FD_LOG;
	c->pd.self_peer = c->self;
	return 0;
}

int
child_sandbox(struct child *c, char *err, size_t errlen)
{
	return privdrop_apply(&c->pd, err, errlen);
}

int
child_send(struct child *c, uint32_t type, const void *payload, size_t len)
{
	return msg_send(CHILD_FD_CHAN, c->self, type, ++c->seq, payload, len, -1);
}

int
child_recv(struct child *c, struct msg *m, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd pfd = { CHILD_FD_CHAN, POLLIN, 0 };
	const char *why;
	int rv;

	(void)c;
	do {
		rv = poll(&pfd, 1, timeout_ms);
	} while (rv == -1 && errno == EINTR);
	if (rv != 1) {
		snprintf(err, errlen, "nothing from the parent in %d s", timeout_ms / 1000);
		return -1;
	}
	rv = msg_recv(CHILD_FD_CHAN, PEER_PARENT, m, &why);
	if (rv != MSG_OK) {
		snprintf(err, errlen, "%s", rv == MSG_VIOLATION ? why : rv == MSG_EOF ?
		    "the parent closed the channel" : strerror(errno));
		return -1;
	}
	return 0;
}

int
child_read(struct child *c, struct msg *m)
{
	const char *why;
	int rv;

	(void)c;
	rv = msg_recv(CHILD_FD_CHAN, PEER_PARENT, m, &why);
	if (rv == MSG_EOF)
		exit(0);	/* the parent is gone, or is stopping us */
	if (rv == MSG_ERR) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		fatal("channel");
	}
	if (rv == MSG_VIOLATION)
		fatalx("bad message from parent: %s", why);
	return 1;
}

int
child_hello(struct child *c, char *err, size_t errlen)
{
	struct msg_hello h;
	struct msg m;
	char why[128];

	msg_hello_init(&h, c->role);
	if (child_send(c, MSG_HELLO, &h, sizeof(h)) != 0) {
		snprintf(err, errlen, "send hello: %s", strerror(errno));
		return -1;
	}
	if (child_recv(c, &m, 10000, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "no hello from the parent: %s", why);
		return -1;
	}
	if (m.hdr.type != MSG_HELLO) {
		snprintf(err, errlen, "bad hello from the parent: %s", msg_type_name(m.hdr.type));
		return -1;
	}
	if (m.u.hello.proto != VS_PROTO_VERSION) {
		snprintf(err, errlen, "parent speaks protocol %u, this program %u: "
		    "restart vaultsyncd after an upgrade", m.u.hello.proto, VS_PROTO_VERSION);
		return -1;
	}
	return 0;
}
