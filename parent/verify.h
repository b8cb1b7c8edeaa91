/*
 * The restore drill (vaultsyncctl verify, VerifyInterval): the uploader
 * fetches the remote latest and the newest history copy, and the parent
 * compares them with what it encrypted here.  The daemon holds no key, so
 * the drill proves that the remote holds exactly the bytes pushed, not that
 * they decrypt; a difference is an alarm, never a reason to write anything.
 */
#ifndef VS_VERIFY_H
#define VS_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct vault_rt;
struct msg_snap_vault;

/* vaultsyncctl verify: the answer goes through ctl_reply when the drill ends. */
int verify_request(struct vault_rt *v, int client, uint32_t gen, char *err, size_t errlen);
/* After startup and every reload: (re)arm each vault's VerifyInterval timer. */
void verify_start(void);
int verify_healthy(const struct vault_rt *v);
void verify_status(const struct vault_rt *v, struct msg_snap_vault *sv);

#endif
