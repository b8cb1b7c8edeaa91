/*
 * How the daemon's modules are connected: what the control socket and the
 * child supervisor hand on goes to the modules that answer it, through the
 * tables here, so that neither of them calls up into those modules (which
 * call them back: replies, requests to children).
 */
#include "keep.h"
#include "log.h"
#include "vaultsyncd.h"

/* A vault the configuration no longer names: its waiting requests are answered. */
static void
dropped(struct vault_rt *v)
{
	ctlq_drop(v, "removed from the configuration");
	keep_drop(v);
}

/*
 * After a (re)load: the registry follows the configuration (kept vaults keep
 * their slot and state), then every vault is watched afresh.
 */
void
wire_sync_config(void)
{
	vreg_sync(dropped);
	watch_rebuild();
}

/* A child came up: the daemon may be ready, the uploader's queue may go, statusd hears. */
static void
child_up(struct child_proc *c)
{
	daemon_child_ready();
	if (c->role == ROLE_UPLOADER)
		remote_uploader_ready();
	status_push();		/* statusd's first, or one that says a child is back */
	if (c->role == ROLE_STATUSD)
		ticklog_restart();
}

static void
child_down(struct child_proc *c)
{
	(void)c;
	status_push();		/* statusd hears that a child is down */
}

/* Who acts on what the children report. */
const struct children_ops children_wiring = {
	watch_on_change, watch_on_newdir, watch_on_overflow, child_up, child_down,
	daemon_child_failed_at_startup,
};

/* Who answers what the control socket lets through. */
const struct ctl_ops ctl_wiring = {
	ctlq_submit, status_send_snapshot, daemon_reload, daemon_shutdown, ctlq_replied,
};
