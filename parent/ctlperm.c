/*
 * The control permission table.  The socket's file mode and the accept-time
 * SO_PEERCRED check (ctlperm_peer_allowed, at the end) decide who may
 * connect; the table decides what each peer may ask.  A vault's Owner is its Owner user (the group grants access to the
 * files in the mounted vault, not control of it).  The Owner is resolved at
 * request time, so a reload that changes it takes effect at once.
 */
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlperm.h"
#include "vaultsyncd.h"

#define P_ADMIN		0x1	/* root and the daemon's own user */
#define P_OWNER		0x2	/* the Owner of the vault named in the request */
#define P_MEMBER	0x4	/* any peer the socket let in (ControlGroup) */

static const unsigned table[CTL_CMD_MAX + 1] = {
	[CTL_STATUS] = P_ADMIN | P_OWNER | P_MEMBER,
	[CTL_VERSION] = P_ADMIN | P_OWNER | P_MEMBER,
	[CTL_RELOAD] = P_ADMIN,
	[CTL_STOP] = P_ADMIN,
	[CTL_INIT] = P_ADMIN | P_OWNER,
	[CTL_UNLOCK] = P_ADMIN | P_OWNER,
	[CTL_LOCK] = P_ADMIN | P_OWNER,
	[CTL_SYNC] = P_ADMIN | P_OWNER,
	[CTL_PUSH] = P_ADMIN | P_OWNER,
	[CTL_PULL] = P_ADMIN | P_OWNER,
	[CTL_HISTORY] = P_ADMIN | P_OWNER,
	/* Reads the archives and reports, like history: the Owner's to ask. */
	[CTL_VERIFY] = P_ADMIN | P_OWNER,
};

static int
is_owner(uid_t uid, const struct cfg_vault *cv)
{
	struct passwd *pw;

	if (D.cfg.mode != CFG_SYSTEM)
		return uid == geteuid();
	if (cv->owner_user[0] == '\0')
		return uid == 0;	/* the default Owner is root */
	return (pw = getpwnam(cv->owner_user)) != NULL && pw->pw_uid == uid;
}

int
ctlperm_check(uid_t uid, uint32_t cmd, const char *vault, char *why, size_t len)
{
	const struct cfg_vault *cv;
	unsigned who;

	if (cmd == 0 || cmd > CTL_CMD_MAX)
		return 0;	/* the dispatcher refuses it as unsupported */
	who = table[cmd];
	if (uid == 0 || uid == geteuid() || (who & P_MEMBER))
		return 0;
	if (who & P_OWNER) {
		/* An unknown vault is for the command itself to report, as to anyone. */
		if ((cv = cfg_vault_find(&D.cfg, vault)) == NULL || is_owner(uid, cv))
			return 0;
		snprintf(why, len, "permission denied: %s of vault %s is for root, the daemon's "
		    "user and the vault's Owner (%s); uid %u is none of them", ctl_cmd_name(cmd),
		    vault, cv->owner_user[0] ? cv->owner_user : "root", (unsigned)uid);
		return -1;
	}
	snprintf(why, len, "permission denied: %s is for root and the daemon's user only; "
	    "uid %u is neither", ctl_cmd_name(cmd), (unsigned)uid);
	return -1;
}

/* Who may connect at all: root, the daemon's own uid, or (system mode) ControlGroup. */
#define MAX_GROUPS	256

static int
peer_in_group(int fd, gid_t primary, gid_t want)
{
	gid_t groups[MAX_GROUPS];
	socklen_t len = sizeof(groups);
	size_t i;

	if (primary == want)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
		return 0;
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == want)
			return 1;
	return 0;
}

int
ctlperm_peer_allowed(int fd, struct ucred *uc)
{
	socklen_t len = sizeof(*uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &len) == -1)
		return 0;
	if (uc->uid == 0 || uc->uid == geteuid())
		return 1;
	return D.cfg.mode == CFG_SYSTEM && D.have_control_gid &&
	    peer_in_group(fd, uc->gid, D.control_gid);
}
