/*
 * vaultsync-watcher: turns the inotify stream of the vaults into debounced
 * "something changed under watch descriptor N" messages.  It never sees file
 * contents and cannot open anything; the parent owns the watches and adds
 * new ones for the directories reported here.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "child.h"
#include "log.h"

#define MAX_PENDING	1024	/* distinct wds per window; beyond that, report overflow */

struct pending {
	int32_t wd;
	uint32_t mask;
	uint32_t count;
};

static struct child c;
static struct pending pend[MAX_PENDING];
static size_t npend;
static int pend_overflow;
static uint64_t debounce_ms = 500;
static uint64_t window_start, last_event;

static void
note(int32_t wd, uint32_t mask)
{
	size_t i;

	for (i = 0; i < npend; i++)
		if (pend[i].wd == wd) {
			pend[i].mask |= mask;
			pend[i].count++;
			return;
		}
	if (npend == MAX_PENDING) {
		pend_overflow = 1;
		return;
	}
	pend[npend++] = (struct pending){ wd, mask, 1 };
}

static void
send_or_die(uint32_t type, const void *p, size_t len)
{
	if (child_send(&c, type, p, len) != 0)
		fatal("send %s", msg_type_name(type));
}

static void
flush(void)
{
	size_t i;

	if (pend_overflow) {
		struct msg_watch_overflow o = { 0, 0 };

		send_or_die(MSG_WATCH_OVERFLOW, &o, sizeof(o));
	}
	for (i = 0; i < npend; i++) {
		struct msg_watch_change m;

		memset(&m, 0, sizeof(m));
		m.wd = pend[i].wd;
		m.mask = pend[i].mask;
		m.count = pend[i].count;
		send_or_die(MSG_WATCH_CHANGE, &m, sizeof(m));
	}
	npend = 0;
	pend_overflow = 0;
	window_start = 0;
}

static void
read_events(int ifd)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	char *p;

	n = read(ifd, buf, sizeof(buf));
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		fatal("read inotify");
	}
	if (n == 0)
		fatalx("inotify fd closed");
	for (p = buf; p < buf + n; ) {
		struct inotify_event *ev = (struct inotify_event *)p;

		if ((size_t)(buf + n - p) < sizeof(*ev) ||
		    (size_t)(buf + n - p) < sizeof(*ev) + ev->len)
			fatalx("short inotify event");
		p += sizeof(*ev) + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			pend_overflow = 1;
		} else {
			if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
			    ev->len > 0) {
				struct msg_watch_newdir d;

				/* Sent at once, so the parent's watch lands before files do. */
				memset(&d, 0, sizeof(d));
				d.wd = ev->wd;
				msg_strlcpy(d.name, ev->name, sizeof(d.name));
				send_or_die(MSG_WATCH_NEWDIR, &d, sizeof(d));
			}
			if (ev->wd >= 0)
				note(ev->wd, ev->mask);
		}
		last_event = mono_ms();
		if (window_start == 0)
			window_start = last_event;
	}
}

static void
read_channel(void)
{
	struct msg m;

	if (!child_read(&c, &m))
		return;
	switch (m.hdr.type) {
	case MSG_WATCHER_CONFIG:
		debounce_ms = m.u.wcfg.debounce_ms;
		log_debug("debounce %llu ms", (unsigned long long)debounce_ms);
		break;
	default:
		fatalx("unexpected %s from parent", msg_type_name(m.hdr.type));
	}
}

/* Trailing-edge debounce, with a cap so a steady stream still flushes. */
static int
poll_timeout(void)
{
	uint64_t now, due, cap;

	if (window_start == 0)
		return -1;
	now = mono_ms();
	due = last_event + debounce_ms;
	cap = window_start + (debounce_ms * 4 > 2000 ? debounce_ms * 4 : 2000);
	if (cap < due)
		due = cap;
	return due <= now ? 0 : (int)(due - now);
}

int
main(int argc, char **argv)
{
	char err[256];
	struct pollfd pfd[2];
	int ifd = CHILD_FD_JOB;

	if (child_begin(&c, ROLE_WATCHER, &watcher_policy, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "vaultsync-watcher: %s\n", err);
		exit(64);
	}
	if (child_sandbox(&c, err, sizeof(err)) != 0)
		fatal_code(CHILD_EXIT_SANDBOX, "sandbox: %s", err);
	if (child_hello(&c, err, sizeof(err)) != 0)
		fatalx("%s", err);
	log_debug("sandboxed, watching fd %d", ifd);

	pfd[0] = (struct pollfd){ CHILD_FD_CHAN, POLLIN, 0 };
	pfd[1] = (struct pollfd){ ifd, POLLIN, 0 };
	for (;;) {
		int t = poll_timeout(), rv;

		if (t == 0) {
			flush();
			continue;
		}
		rv = poll(pfd, 2, t);
		if (rv == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[0].revents)
			read_channel();
		if (pfd[1].revents & POLLIN)
			read_events(ifd);
		else if (pfd[1].revents)
			fatalx("inotify fd error");
	}
}
