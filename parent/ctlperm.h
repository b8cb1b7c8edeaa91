/*
 * Who may run which control command (DESIGN §2): root and the daemon's own
 * user everything; a vault's Owner the commands on that vault; anyone else
 * the socket let in (ControlGroup) status and version only.
 */
#ifndef VS_CTLPERM_H
#define VS_CTLPERM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* 0 when uid may run cmd (on vault, "" for none); else -1 and why names the rule. */
int ctlperm_check(uid_t uid, uint32_t cmd, const char *vault, char *why, size_t len);

/* 1 if the peer on fd may connect (uc: its credentials, filled in); 0 if not. */
struct ucred;
int ctlperm_peer_allowed(int fd, struct ucred *uc);

#endif
