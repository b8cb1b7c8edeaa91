#!/bin/sh
# make run: a demo vault syncing to a dir: remote, supervised by the daemon
# built in this tree.  As root the vault is a tmpfs the daemon mounts;
# otherwise it lives in /dev/shm (a vault never touches a disk).  Each user
# has a demo directory of their own, /tmp/vaultsync-demo-UID (or
# $VAULTSYNC_DEMO_DIR), so that one user's demo never meets another's.  The
# demo passphrase is in a file there: a demo only.
#
# The daemon logs to a file in that directory, so that what to try next is
# the last thing on the screen.  The script then waits until Ctrl-C, which
# stops the daemon.  With VAULTSYNC_DEMO_DETACH=1 it returns instead and
# leaves the daemon running (for scripts and tests; `vaultsyncctl stop`, as
# the text says, ends it).
set -eu
B=$1
uid=$(id -u)
D=${VAULTSYNC_DEMO_DIR:-/tmp/vaultsync-demo-$uid}

# A directory of ours: /tmp and /dev/shm are shared, and a name in them can
# be taken by someone else first.
own_dir() {
	mkdir -p "$1"
	if [ -L "$1" ] || [ "$(stat -c %u "$1")" != "$uid" ]; then
		echo "make run: $1 is not a directory of yours (uid $uid): remove it," \
		    "or name another with VAULTSYNC_DEMO_DIR" >&2
		exit 1
	fi
	chmod "$2" "$1"
}

mode=""
own_dir "$D" 755
if [ "$uid" = 0 ]; then
	sh "$(dirname "$0")/users.sh"
	VAULT=$D/vault
	MOUNT="Mount yes
	MountSize 16M"
	# The daemon creates the remote directory for the unprivileged uploader.
	[ -d "$D/remote" ] && chown -R _vaultsync:_vaultsync "$D/remote"
else
	mode="--user"
	own_dir "/dev/shm/vaultsync-demo-$uid" 700
	VAULT=/dev/shm/vaultsync-demo-$uid/vault
	MOUNT="Mount no"
	mkdir -p "$VAULT"
	chmod 700 "$VAULT"
fi
[ -f "$D/passphrase" ] ||
	(umask 077 && echo "demo passphrase $(od -An -N6 -tx1 /dev/urandom | tr -d ' ')" \
	    >"$D/passphrase")
chmod 600 "$D/passphrase"
cat >"$D/vaultsyncd.conf" <<CONF
# Demo configuration written by make run.
RuntimeDir $D/run
StateDir $D/state
LogFormat pretty
WatcherDebounce 500ms

Vault demo
	Path $VAULT
	$MOUNT
	Remote dir:$D/remote
	HistoryInterval 1m
	HistoryKeep 5
CONF
C="$B/vaultsyncctl -s $D/run/ctl.sock"
LOG=$D/vaultsyncd.log

answers() {
	rc=0
	$C status >/dev/null 2>&1 || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 1 ]
}
if answers; then
	echo "make run: the demo daemon runs already: $C stop ends it" >&2
	exit 1
fi

# Its own session: Ctrl-C reaches this script, which stops the daemon
# gracefully (a final save and push), not the children behind its back.
echo "vaultsync demo: starting the daemon (its log: $LOG)"
setsid "$B/vaultsyncd-dev" $mode -d -f "$D/vaultsyncd.conf" >>"$LOG" 2>&1 </dev/null &
pid=$!
fail() {
	echo "make run: $1; the end of the daemon's log ($LOG):" >&2
	tail -n 20 "$LOG" >&2
	kill -TERM "$pid" 2>/dev/null || true
	exit 1
}
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
for _ in $(seq 150); do
	answers && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
answers || fail "the daemon did not start"

# Create the vault the first time, unlock it later.
if [ -f "$D/state/demo/identity.age" ]; then
	# Left unlocked by a run that ended without a lock: the daemon adopted it.
	if $C status demo 2>/dev/null | grep -q "^vault demo: locked,"; then
		$C unlock demo --passphrase-file "$D/passphrase" || fail "unlock failed"
	fi
else
	$C init demo --passphrase-file "$D/passphrase" || fail "init failed"
	mkdir -p "$VAULT/ssh"
	echo "not a real key" >"$VAULT/ssh/id_demo"
fi

if [ "${VAULTSYNC_DEMO_DETACH:-}" = 1 ]; then
	stop="The daemon runs on in the background: $C stop"
else
	stop="Stop with Ctrl-C."
fi
cat <<MSG

vaultsync demo: vault $VAULT -> dir:$D/remote (passphrase in $D/passphrase)
Try, in another terminal:
  echo hello > $VAULT/hello  # saved and pushed in about a second
  $C status
  $C status --json
  $C status --ui  # the status page: open the URL it prints
  ls -R $D/remote
  $C history demo
  $C lock demo; $C unlock demo --passphrase-file $D/passphrase
  curl -s \$(sed -n 's/.*"url":"\\([^"]*\\)".*/\\1/p' $D/run/daemon.json)v1/healthz
  kill -9 \$(pgrep -f vaultsync-watcher)  # restarted within a second
  tail -f $LOG  # what the daemon does
  $C stop
$stop
MSG
[ "${VAULTSYNC_DEMO_DETACH:-}" = 1 ] && exit 0
# wait returns early when a signal is trapped: wait until the daemon is gone.
while kill -0 "$pid" 2>/dev/null; do
	wait "$pid" || true
done
