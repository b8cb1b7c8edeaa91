/*
 * The event loop: one epoll set, one timerfd armed for the nearest of a
 * small fixed set of timers.  Callbacks run to completion; nothing blocks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vaultsyncd.h"

#define MAX_FDS		128
#define MAX_TIMERS	512

struct ev_slot {
	int fd;
	ev_cb cb;
	void *arg;
};

struct timer {
	uint64_t due;
	timer_cb cb;
	void *arg;
	int active;
};

static int epfd = -1, tfd = -1;
static struct ev_slot slots[MAX_FDS];
static struct timer timers[MAX_TIMERS];

static void
timers_fire(int fd, uint32_t events, void *arg)
{
	uint64_t n, now = mono_ms();
	int i;

	(void)events;
	(void)arg;
	(void)!read(fd, &n, sizeof(n));
	for (i = 0; i < MAX_TIMERS; i++) {
		if (timers[i].active && timers[i].due <= now) {
			timers[i].active = 0;
			timers[i].cb(timers[i].arg);
		}
	}
}

static void
timers_arm(void)
{
	struct itimerspec its;
	uint64_t next = 0;
	int i;

	for (i = 0; i < MAX_TIMERS; i++)
		if (timers[i].active && (next == 0 || timers[i].due < next))
			next = timers[i].due;
	memset(&its, 0, sizeof(its));
	if (next != 0) {
		its.it_value.tv_sec = (time_t)(next / 1000);
		its.it_value.tv_nsec = (long)(next % 1000) * 1000000;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == -1)
		fatal("timerfd_settime");
}

void
ev_init(void)
{
	int i;

	for (i = 0; i < MAX_FDS; i++)
		slots[i].fd = -1;
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) == -1)
		fatal("timerfd_create");
	if (ev_add(tfd, timers_fire, NULL) != 0)
		fatal("ev_add timerfd");
}

int
ev_add(int fd, ev_cb cb, void *arg)
{
	struct epoll_event ee;
	int i;

	for (i = 0; i < MAX_FDS; i++)
		if (slots[i].fd == -1)
			break;
	if (i == MAX_FDS) {
		errno = EMFILE;
		return -1;
	}
	memset(&ee, 0, sizeof(ee));
	ee.events = EPOLLIN;
	ee.data.u32 = (uint32_t)i;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ee) == -1)
		return -1;
	slots[i] = (struct ev_slot){ fd, cb, arg };
	return 0;
}

void
ev_del(int fd)
{
	int i;

	for (i = 0; i < MAX_FDS; i++)
		if (slots[i].fd == fd) {
			(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			slots[i].fd = -1;
			slots[i].cb = NULL;
			return;
		}
}

int
timer_add(uint64_t delay_ms, timer_cb cb, void *arg)
{
	int i;

	for (i = 0; i < MAX_TIMERS; i++)
		if (!timers[i].active)
			break;
	if (i == MAX_TIMERS)
		fatalx("out of timers");
	timers[i] = (struct timer){ mono_ms() + delay_ms, cb, arg, 1 };
	timers_arm();
	return i;
}

void
timer_cancel(int id)
{
	if (id >= 0 && id < MAX_TIMERS) {
		timers[id].active = 0;
		timers_arm();
	}
}

void
ev_run_once(void)
{
	struct epoll_event evs[32];
	int n, i;

	n = epoll_wait(epfd, evs, 32, -1);
	if (n == -1) {
		if (errno == EINTR)
			return;
		fatal("epoll_wait");
	}
	for (i = 0; i < n; i++) {
		struct ev_slot *s = &slots[evs[i].data.u32];

		/* A callback earlier in this batch may have removed this fd. */
		if (s->fd != -1 && s->cb != NULL)
			s->cb(s->fd, evs[i].events, s->arg);
	}
	timers_arm();
}
