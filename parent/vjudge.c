/*
 * The worker side of the restore drill's judgement (vjudge.h).  It runs on
 * a copy of what it needs and reports through the job's completion.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "vjudge.h"

static void
run(struct job *job)
{
	struct vjudge *j = (struct vjudge *)job;
	struct stat st;
	char err[256];

	if (fstat(j->obj_fd, &st) != 0) {
		j->cmp = VJ_ERROR;
		snprintf(j->err, sizeof(j->err), "fstat of the download: %s", strerror(errno));
		snprintf(j->scan, sizeof(j->scan), "%s", j->err);
		return;
	}
	j->bytes = (uint64_t)st.st_size;
	if (decoder_scan(&j->dec, j->obj_fd, &j->wellformed, j->scan, sizeof(j->scan), err,
	    sizeof(err)) == 0)
		j->scanned = 1;
	else
		snprintf(j->scan, sizeof(j->scan), "its structure could not be checked: %s", err);
	if (!j->compare)
		j->cmp = VJ_NOT_COMPARED;
	else if (j->bytes != j->local_size)
		j->cmp = VJ_SIZE;
	else
		switch (store_same_bytes(j->obj_fd, j->local_fd, j->bytes, &j->at)) {
		case 0:
			j->cmp = VJ_SAME;
			break;
		case 1:
			j->cmp = VJ_DIFFER;
			break;
		default:
			j->cmp = VJ_ERROR;
			snprintf(j->err, sizeof(j->err), "reading for the comparison failed");
			break;
		}
}

static void
finished(struct job *job)
{
	struct vjudge *j = (struct vjudge *)job;

	j->done(j);
}

int
vjudge_start(struct vjudge *j)
{
	j->job.run = run;
	j->job.done = finished;
	return job_start(&j->job);
}
