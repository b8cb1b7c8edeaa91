#!/bin/sh
# Installs the Debian packages vaultsync needs: "build" for make/make run,
# "deb" adds what make deb uses, "test" what make check uses.  As root it installs what is missing;
# otherwise it prints the exact command and fails.
set -eu
what=${1:-build}
# libcmocka-dev: make (all) builds the unit tests too, and make run builds all.
BUILD_PKGS="gcc make pkg-config libc6-dev libcurl4-openssl-dev libssl-dev libseccomp-dev
 libcap-dev libarchive-dev libjansson-dev libmicrohttpd-dev libcmocka-dev"
# python3-jsonschema validates the status API's answers against docs/api/;
# prometheus brings promtool, which checks /metrics; chromium (headless,
# driven over its DevTools protocol with python3-websocket) loads the page.
# mandoc lints the manual pages in packaging/man/.  tests/systemd boots
# Debian 12 containers (mmdebstrap builds their root, systemd-container runs
# them) to install the package that make deb builds, and lints it (lintian).
TEST_PKGS="clang libclang-rt-14-dev python3 python3-pytest age awscli s3cmd jq
 strace util-linux procps passwd curl uuid-runtime radosgw ceph-mon ceph-osd
 python3-jsonschema prometheus chromium python3-websocket mandoc
 mmdebstrap systemd-container lintian"
# make deb: dpkg-buildpackage, the helpers of packaging/debian/rules, and
# build-essential, which every Debian build depends on implicitly.
DEB_PKGS="dpkg-dev debhelper build-essential"
pkgs=$BUILD_PKGS
[ "$what" = deb ] && pkgs="$pkgs $DEB_PKGS"
[ "$what" = test ] && pkgs="$pkgs $DEB_PKGS $TEST_PKGS"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages:$missing" >&2
	echo "install them with: sudo apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Test packages ship services (ceph's, prometheus's): installing one must not
# start it.  Where nothing says so already, a policy-rc.d does for this run.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing </dev/null
