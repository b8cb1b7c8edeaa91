#!/bin/bash
# Stops what tests/s3/rgw-start.sh started in DIR and removes DIR.
#
#   rgw-stop.sh DIR             radosgw, OSD, mon; then rm -rf DIR
#   rgw-stop.sh --rgw-only DIR  radosgw only; DIR and the cluster stay, for
#                               rgw-start.sh --restart-rgw DIR
#
# Safe to run twice, and after a start that failed half way: it acts only
# on the pid files that exist, signals a pid only while it still runs one of
# DIR's daemons (a stale pid file cannot hit an unrelated process), and
# deletes only a directory rgw-start.sh marked as its own.
set -u

rgw_only=0
[ "${1:-}" = --rgw-only ] && { rgw_only=1; shift; }
[ $# = 1 ] || { echo "usage: $0 [--rgw-only] DIR" >&2; exit 2; }
D=$1
[ -d "$D" ] || exit 0
[ -e "$D/.vs-s3" ] || { echo "rgw-stop: $D was not made by rgw-start.sh; left alone" >&2; exit 1; }
D=$(cd "$D" && pwd -P)	# as rgw-start.sh spelled it in the daemons' argv

ours() {	# $1 = pid: alive, not a zombie, and started with DIR's ceph.conf
	[ -r "/proc/$1/stat" ] && [ "$(cut -d')' -f2 "/proc/$1/stat" | cut -c2)" != Z ] &&
		tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF "$D/ceph.conf"
}

stop() {	# $1 = name: TERM, up to 10 s to exit, then KILL
	local pid i
	pid=$(cat "$D/$1.pid" 2>/dev/null) || return 0
	if ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do ours "$pid" || break; sleep 0.1; done
		if ours "$pid"; then
			echo "rgw-stop: $1 (pid $pid) ignored SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null
			for ((i = 0; i < 50; i++)); do ours "$pid" || break; sleep 0.1; done
		fi
	fi
	rm -f "$D/$1.pid"
}

if [ $rgw_only = 1 ]; then
	stop rgw
	exit 0
fi
# Clients before servers: the OSD and the mon shut down quickly when no one
# is waiting on them.
for n in rgw osd mon; do
	stop "$n"
done
rm -rf "$D"
