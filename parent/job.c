/*
 * Long vault operations (save, unlock, lock, init) run on a worker thread so
 * that the event loop keeps supervising children and answering the control
 * socket.  A job owns copies of everything it needs; the main thread sees its
 * result only in the completion callback, run from the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "job.h"
#include "log.h"
#include "vaultsyncd.h"

static int efd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct job *finished;
static int running;

static void
completions(int fd, uint32_t events, void *arg)
{
	uint64_t n;
	struct job *list, *j;

	(void)events;
	(void)arg;
	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&mu);
	list = finished;
	finished = NULL;
	pthread_mutex_unlock(&mu);
	while ((j = list) != NULL) {
		list = j->next;
		running--;
		j->done(j);
	}
}

void
jobs_init(void)
{
	if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		fatal("eventfd");
	if (ev_add(efd, completions, NULL) != 0)
		fatal("ev_add eventfd");
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	uint64_t one = 1;

	j->run(j);
	pthread_mutex_lock(&mu);
	j->next = finished;
	finished = j;
	pthread_mutex_unlock(&mu);
	(void)!write(efd, &one, sizeof(one));
	return NULL;
}

int
job_start(struct job *j)
{
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* Workers never take signals: the loop's signalfd must see them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &a, worker, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	running++;
	return 0;
}

int
jobs_running(void)
{
	return running;
}
