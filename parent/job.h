#ifndef VS_JOB_H
#define VS_JOB_H

#include <signal.h>

struct job {
	struct job *next;
	void (*run)(struct job *);	/* on the worker thread */
	void (*done)(struct job *);	/* on the main loop, afterwards */
};

void jobs_init(void);
int job_start(struct job *j);
int jobs_running(void);

#endif
