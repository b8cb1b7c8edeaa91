#!/bin/sh
# make run: a demo vault syncing to a dir: remote, supervised by the daemon
# built in this tree, in the foreground until Ctrl-C.  As root the vault is a
# tmpfs the daemon mounts; otherwise it lives in /dev/shm (a vault never
# touches a disk).  The demo passphrase is in a file next to it: a demo only.
set -eu
B=$1
D=${VAULTSYNC_DEMO_DIR:-/tmp/vaultsync-demo}
mode=""
if [ "$(id -u)" = 0 ]; then
	sh "$(dirname "$0")/users.sh"
	VAULT=$D/vault
	MOUNT="Mount yes
	MountSize 16M"
else
	mode="--user"
	VAULT=/dev/shm/vaultsync-demo-$(id -u)/vault
	MOUNT="Mount no"
	mkdir -p "$VAULT"
	chmod 700 "$VAULT"
fi
mkdir -p "$D"
chmod 755 "$D"
# The daemon creates the remote directory for the unprivileged uploader.
if [ "$(id -u)" = 0 ] && [ -d "$D/remote" ]; then
	chown -R _vaultsync:_vaultsync "$D/remote"
fi
[ -f "$D/passphrase" ] || { echo "demo passphrase $(od -An -N6 -tx1 /dev/urandom | tr -d ' ')" >"$D/passphrase"; }
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
cat <<MSG
vaultsync demo: vault $VAULT -> dir:$D/remote (passphrase in $D/passphrase)
Try, in another terminal:
  echo hello > $VAULT/hello                  # saved and pushed in about a second
  $C status
  $C status --json
  $C status --ui        # the status page: open the URL it prints
  ls -R $D/remote
  $C history demo
  $C lock demo; $C unlock demo --passphrase-file $D/passphrase
  curl -s \$(sed -n 's/.*"url":"\\([^"]*\\)".*/\\1/p' $D/run/daemon.json)v1/healthz
  kill -9 \$(pgrep -f vaultsync-watcher)      # restarted within a second
  $C stop
Stop with Ctrl-C.

MSG
# Once the daemon answers: create the vault the first time, unlock it later.
(
	for _ in $(seq 100); do
		$C status >/dev/null 2>&1 && break
		[ $? = 1 ] && break
		sleep 0.1
	done
	if [ -f "$D/state/demo/identity.age" ]; then
		$C unlock demo --passphrase-file "$D/passphrase" || true
	else
		$C init demo --passphrase-file "$D/passphrase" &&
		    mkdir -p "$VAULT/ssh" && echo "not a real key" >"$VAULT/ssh/id_demo"
	fi
) &
exec "$B/vaultsyncd-dev" $mode -d -f "$D/vaultsyncd.conf"
