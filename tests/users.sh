#!/bin/sh
# The accounts the daemon and the tests use (packaging creates the first two
# with sysusers.d on a real install): the privsep user, the control group, and
# an ordinary user for the user-mode tests.
set -eu
[ "$(id -u)" = 0 ] || exit 0
getent group vaultsync >/dev/null || groupadd --system vaultsync
getent passwd _vaultsync >/dev/null ||
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
	    --user-group _vaultsync
getent passwd vstest >/dev/null || useradd --create-home --shell /bin/sh vstest
