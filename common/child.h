/*
 * What the three children share before and after their sandbox closes:
 * the fixed fds (channel 3, log 4, job fds from 5), the argument parsing,
 * the privilege drop, and the HELLO exchange that opens every channel.
 */
#ifndef VS_CHILD_H
#define VS_CHILD_H

#include "msg.h"
#include "privdrop.h"

#define CHILD_FD_CHAN	3
#define CHILD_FD_LOG	4
#define CHILD_FD_JOB	5

/* Exit code of a child whose sandbox could not be applied (EX_OSERR). */
#define CHILD_EXIT_SANDBOX	71

struct child {
	uint32_t role;
	unsigned self;		/* PEER_* bit */
	int debug;
	uint32_t seq;
	struct privdrop pd;
};

/*
 * A copy of fd above every fixed slot (close-on-exec), so that the dup2s
 * that put a child's fds in place never collide with each other.
 */
int child_lift_fd(int fd);

/* Parse argv, route logging to the log fd.  -1 with err on bad usage. */
int child_begin(struct child *c, uint32_t role, const struct sb_policy *policy,
    int argc, char **argv, char *err, size_t errlen);
/* Drop privileges and close the sandbox (privdrop_apply). */
int child_sandbox(struct child *c, char *err, size_t errlen);
/* One message from the parent within timeout_ms; -1 with err on silence, EOF or a violation. */
int child_recv(struct child *c, struct msg *m, int timeout_ms, char *err, size_t errlen);
/*
 * The next message from the parent once the channel polled readable: 1 with
 * it in m, 0 if there was none after all.  Exits 0 on EOF; fatal on an error
 * or a protocol violation.
 */
int child_read(struct child *c, struct msg *m);
/* Send HELLO and wait (bounded) for the parent's; check its protocol version. */
int child_hello(struct child *c, char *err, size_t errlen);
/* Send one message on the channel. */
int child_send(struct child *c, uint32_t type, const void *payload, size_t len);

#endif
