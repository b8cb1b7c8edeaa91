#!/bin/sh
# A throwaway Debian 12 host with systemd as PID 1, booted in a container on
# this machine, for the tests of the package and its units (test_systemd.py):
# Type=notify, the watchdog, LoadCredential, sysusers, tmpfiles, hardening
# directives, user units, dpkg's maintainer scripts.
#
#   host.sh rootfs DIR [PKG...]   build a minimal bookworm root in DIR, with
#                                 PKG... besides systemd (a minute or so)
#   host.sh boot DIR RUN [ARGS..] boot DIR, read-only: every write goes to a
#                                 tmpfs overlay that goes with the container,
#                                 so one root serves every boot; RUN holds the
#                                 pid and the console log; ARGS go to nspawn.
#                                 Prints the container's PID 1 once it is up.
#   host.sh exec RUN CMD...       run CMD in all the container's namespaces
#   host.sh stop RUN              power it off and wait for the container
#
# Needs root, systemd-container and mmdebstrap, and this machine's apt
# sources.  PID 1 here is not systemd, so nspawn runs with --register=no
# --keep-unit (no machined, no host bus): use exec, not machinectl.  The boot
# logs harmless "Failed to create symlink /sys/fs/cgroup/..." lines.
set -eu
cmd=${1:?usage: host.sh rootfs|boot|exec|stop DIR|RUN ...}
shift

leader() {	# the container's PID 1: the child of our systemd-nspawn
	[ -s "$1/nspawn.pid" ] || { echo "host.sh: $1: not booted" >&2; exit 1; }
	p=$(cat "$1/nspawn.pid")
	awk '{print $1}' "/proc/$p/task/$p/children" 2>/dev/null
}

case $cmd in
rootfs)
	dir=${1:?DIR}
	shift
	# The first Debian mirror this machine uses, deb822 or one-line style.
	src=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -m 1 '/debian/*$' || true)
	[ -n "$src" ] || src=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null || true)
	# man-db: systemd-analyze verify looks up the units' Documentation= pages.
	pkgs="systemd,systemd-sysv,dbus,libpam-systemd,dbus-user-session,procps,iproute2,man-db"
	for p in "$@"; do pkgs="$pkgs,$p"; done
	# apt's timers would take the dpkg lock from under a test.
	mmdebstrap --quiet --variant=minbase --include="$pkgs" \
		--customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer' \
		bookworm "$dir" ${src:+"$src"}
	;;
boot)
	dir=${1:?DIR}
	run=${2:?RUN}
	shift 2
	mkdir -p "$run"
	# nspawn's own seccomp filter answers EPERM to what it does not know,
	# Landlock among them; the children of a daemon with a dir: remote, and
	# those of the user daemon, need it.
	setsid systemd-nspawn -q --register=no --keep-unit -D "$dir" --volatile=overlay \
		--system-call-filter='landlock_create_ruleset landlock_add_rule landlock_restrict_self' \
		--boot "$@" </dev/null >"$run/console.log" 2>&1 &
	echo $! >"$run/nspawn.pid"
	i=0
	while [ $i -lt 120 ]; do
		l=$(leader "$run" || true)
		if [ -n "$l" ]; then
			s=$(nsenter -t "$l" -a systemctl is-system-running 2>/dev/null || true)
			case $s in running|degraded) echo "$l"; exit 0 ;; esac
		fi
		kill -0 "$(cat "$run/nspawn.pid")" 2>/dev/null || break
		i=$((i + 1))
		sleep 0.5
	done
	echo "host.sh: $dir did not boot; see $run/console.log" >&2
	exit 1
	;;
exec)
	run=${1:?RUN}
	shift
	l=$(leader "$run")
	exec nsenter -t "$l" -a "$@"
	;;
stop)
	run=${1:?RUN}
	[ -s "$run/nspawn.pid" ] || exit 0
	l=$(leader "$run" || true)
	[ -n "$l" ] && nsenter -t "$l" -a systemctl poweroff >/dev/null 2>&1 || true
	p=$(cat "$run/nspawn.pid")
	i=0
	while kill -0 "$p" 2>/dev/null && [ $i -lt 60 ]; do i=$((i + 1)); sleep 0.5; done
	if kill -0 "$p" 2>/dev/null; then
		kill "$p"
		sleep 1
	fi
	rm -f "$run/nspawn.pid"
	;;
*)
	echo "host.sh: unknown command $cmd" >&2
	exit 2
	;;
esac
