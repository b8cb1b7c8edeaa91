#!/bin/sh
# make run: a demo vault syncing to a dir: remote, supervised by the daemon
# built in this tree, in the foreground until Ctrl-C.
set -eu
B=$1
D=${VAULTSYNC_DEMO_DIR:-/tmp/vaultsync-demo}
mode=""
if [ "$(id -u)" = 0 ]; then
	sh "$(dirname "$0")/users.sh"
else
	mode="--user"
fi
mkdir -p "$D/vault/ssh" "$D/remote"
chmod 755 "$D"
chmod 700 "$D/vault"
[ -f "$D/vault/ssh/id_demo" ] || echo "not a real key" >"$D/vault/ssh/id_demo"
cat >"$D/vaultsyncd.conf" <<CONF
# Demo configuration written by make run.
RuntimeDir $D/run
StateDir $D/state
LogFormat pretty
WatcherDebounce 500ms

Vault demo
	Path $D/vault
	Mount no
	Remote dir:$D/remote
CONF
cat <<MSG
vaultsync demo: vault $D/vault -> dir:$D/remote
Try, in another terminal:
  $B/vaultsyncctl -s $D/run/ctl.sock status
  $B/vaultsyncctl -s $D/run/ctl.sock status --json
  curl -s \$(sed -n 's/.*"url":"\\([^"]*\\)".*/\\1/p' $D/run/daemon.json)v1/healthz
  kill -9 \$(pgrep -f vaultsync-watcher)      # restarted within a second
  $B/vaultsyncctl -s $D/run/ctl.sock stop
Stop with Ctrl-C.

MSG
exec "$B/vaultsyncd-dev" $mode -d -f "$D/vaultsyncd.conf"
