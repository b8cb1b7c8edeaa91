/*
 * vs-evil: a substitute child for the protocol tests.  Installed by the test
 * harness as build/evil/vaultsync-<role>; it reads what to do from the file
 * "evil-mode" beside it, says HELLO like a real child, then misbehaves.
 * Test-only; never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "msg.h"
#include "sandbox.h"

static uint32_t
role_of(const char *argv0)
{
	const char *b = strrchr(argv0, '/');

	b = b ? b + 1 : argv0;
	if (strcmp(b, "vaultsync-watcher") == 0)
		return ROLE_WATCHER;
	if (strcmp(b, "vaultsync-uploader") == 0)
		return ROLE_UPLOADER;
	return ROLE_STATUSD;
}

static void
read_mode(char *mode, size_t len)
{
	char exe[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n;
	int fd;

	snprintf(mode, len, "malformed");
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/evil-mode", dirname(exe));
	if ((fd = open(path, O_RDONLY)) == -1)
		return;
	n = read(fd, mode, len - 1);
	close(fd);
	mode[n > 0 ? n : 0] = '\0';
	mode[strcspn(mode, "\n")] = '\0';
}

static void
raw_send(const void *buf, size_t len, int fd)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh;
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int))];
	} cbuf;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.space;
		mh.msg_controllen = sizeof(cbuf.space);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	(void)sendmsg(CHILD_FD_CHAN, &mh, MSG_NOSIGNAL);
}

int
main(int argc, char **argv)
{
	struct msg_hello h;
	char mode[64];
	uint32_t role = role_of(argv[0]);
	unsigned self = msg_role_peer(role);

	(void)argc;
	read_mode(mode, sizeof(mode));
	if (strcmp(mode, "hang") == 0)
		signal(SIGTERM, SIG_IGN);
	msg_hello_init(&h, role);
	msg_strlcpy(h.version, "evil", sizeof(h.version));
	if (msg_send(CHILD_FD_CHAN, self, MSG_HELLO, 1, &h, sizeof(h), -1) != 0)
		return 1;
	usleep(200000);		/* let the parent answer and settle */
	if (strcmp(mode, "malformed") == 0) {
		/* A WATCH_CHANGE header claiming 3 payload bytes. */
		struct vs_hdr bad = { MSG_WATCH_CHANGE, 3, 2, 0 };
		char buf[sizeof(bad) + 3] = { 0 };

		memcpy(buf, &bad, sizeof(bad));
		raw_send(buf, sizeof(buf), -1);
	} else if (strcmp(mode, "unpermitted") == 0) {
		struct msg_ctl_result r;
		struct vs_hdr hd = { MSG_CTL_RESULT, sizeof(r), 2, 0 };
		char buf[sizeof(hd) + sizeof(r)];

		memset(&r, 0, sizeof(r));
		memcpy(buf, &hd, sizeof(hd));
		memcpy(buf + sizeof(hd), &r, sizeof(r));
		raw_send(buf, sizeof(buf), -1);
	} else if (strcmp(mode, "trap") == 0) {
		const char *why;

		/* The watcher's own table in TRAP mode, then a call it forbids. */
		if (sandbox_seccomp(&watcher_policy, 1, CHILD_FD_LOG, self, &why) != 0)
			return 1;
		(void)socket(AF_INET, SOCK_STREAM, 0);
	} else if (strcmp(mode, "extrafd") == 0) {
		struct msg_watch_overflow o = { 0, 0 };
		struct vs_hdr hd = { MSG_WATCH_OVERFLOW, sizeof(o), 2, 0 };
		char buf[sizeof(hd) + sizeof(o)];

		memcpy(buf, &hd, sizeof(hd));
		memcpy(buf + sizeof(hd), &o, sizeof(o));
		raw_send(buf, sizeof(buf), 0);
	}
	/* "hang" and everything after the bad message: wait to be killed. */
	for (;;)
		pause();
}
