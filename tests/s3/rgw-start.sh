#!/bin/bash
# The S3 server of the integration tests: a throwaway single-node Ceph
# cluster (one mon, one OSD on memstore, so data lives in RAM, no mgr) and
# radosgw with the beast frontend, every listener on 127.0.0.1, everything
# in DIR, no systemd.  See /work/shared/S3-TEST-SERVER.md for why RGW.
#
#   rgw-start.sh DIR                start it all; DIR must not exist (or be empty)
#   rgw-start.sh --restart-rgw DIR  start radosgw again, same port and data,
#                                   after rgw-stop.sh --rgw-only DIR
#
# Writes DIR/s3.env, shell-sourceable VS_S3_* lines: endpoint, region,
# bucket, two key pairs of one S3 user, port, DIR.  Each daemon's output
# goes to DIR/log/NAME.out, its log to DIR/log/*.log, its pid to
# DIR/NAME.pid.  On failure it stops what it started, prints the error and
# the tail of the relevant logs, keeps DIR for a look and exits 1:
# rgw-stop.sh DIR cleans up in every case.
#
# Environment: VS_S3_BUCKET (default vaultsync-test), VS_S3_MEMSTORE_BYTES
# (the OSD's capacity, default 3 GiB).
set -Eeuo pipefail
exec 3>&2	# our own messages; the commands' stderr goes to DIR/log/setup.err

REGION=us-east-1	# RGW takes any region in the SigV4 scope; this is AWS's default
PORTS_RGW=17000		# radosgw and mon ports are picked from PORT..PORT+499
PORTS_MON=17500
WAIT=120		# seconds allowed for each readiness wait

usage() { echo "usage: $0 [--restart-rgw] DIR" >&2; exit 2; }
restart=0
[ "${1:-}" = --restart-rgw ] && { restart=1; shift; }
[ $# = 1 ] || usage
case $1 in
	*[!A-Za-z0-9._/-]*) echo "rgw-start: DIR may use only [A-Za-z0-9._/-]: $1" >&2; exit 2 ;;
esac
[ $restart = 1 ] || mkdir -p "$1"
D=$(cd "$1" && pwd -P)	# rgw-stop.sh finds our daemons by this spelling
CONF=$D/ceph.conf
started=()	# pid files of the daemons this run started, for fail()
stage=setup	# the daemon being brought up: whose log to show on failure

alive() {	# $1 = pid: running, not a zombie (PID 1 may reap orphans late)
	[ -r "/proc/$1/stat" ] && [ "$(cut -d')' -f2 "/proc/$1/stat" | cut -c2)" != Z ]
}

# True if nothing is bound to 127.0.0.1:$1.  Binding with SO_REUSEADDR,
# as the daemons do, ignores TIME_WAIT leftovers (radosgw's own, on restart).
port_free() {
	python3 - "$1" 2>/dev/null <<-'PY'
	import socket, sys
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("127.0.0.1", int(sys.argv[1])))
	PY
}

pick_port() {	# $1 = base: a free port in base..base+499, from a random start
	local i p
	for i in $(seq 0 49); do
		p=$(($1 + (RANDOM + i * 7) % 500))
		port_free "$p" && { echo "$p"; return 0; }
	done
	echo "rgw-start: no free port in $1-$(($1 + 499))" >&3
	return 1
}

# Random, but shaped like real keys: AWS-style 20-character ids, 40-character secrets.
rand() {	# $1 = tr class, $2 = length
	local s
	s=$(head -c 2048 /dev/urandom | LC_ALL=C tr -dc "$1")
	echo "${s:0:$2}"
}

# $1 = name; the rest is the command.  Foreground mode (-f) keeps each
# daemon our child with a pid we know; stdin closed, output to a file.
start_daemon() {
	local name=$1
	shift
	"$@" </dev/null >>"$D/log/$name.out" 2>&1 3>&- &
	echo $! >"$D/$name.pid"
	started+=("$D/$name.pid")
}

show_logs() {	# the tail of what the failing stage wrote
	local f logs
	case $stage in
	mon | osd) logs=("$D/log/$stage".*) ;;
	rgw) logs=("$D/log/rgw.out" "$D/log/client.rgw.a.log") ;;
	*) logs=("$D/log/client.admin.log") ;;	# ceph and radosgw-admin
	esac
	for f in "$D/log/setup.err" "${logs[@]}"; do
		[ -s "$f" ] || continue
		echo "--- tail of $f"
		tail -n 25 "$f"
	done
}

stop_started() {
	local i f pid
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		f=${started[i]}
		pid=$(cat "$f" 2>/dev/null) || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	started=()
}

fail() {
	[ "$BASHPID" = $$ ] || exit 1	# in a $(...): the caller fails in turn
	trap - ERR INT TERM HUP
	local d
	# A command that failed because a daemon had died: name the daemon.
	d=$(dead_daemon) && { stage=$d; set -- "$d exited; $*"; }
	echo "rgw-start: $* (stage $stage; logs in $D/log)" >&3
	show_logs >&3 2>&1
	stop_started
	exit 1
}
trap 'fail "command failed: $BASH_COMMAND"' ERR
trap 'fail "interrupted"' INT TERM HUP

dead_daemon() {	# prints the first of our daemons that is no longer running
	local d pid
	for d in mon osd rgw; do
		pid=$(cat "$D/$d.pid" 2>/dev/null) || continue
		alive "$pid" || { echo "$d"; return 0; }
	done
	return 1
}

# $1 = what, the rest = a test: wait until it holds, failing early if one
# of our daemons died on the way.
wait_until() {
	local what=$1 n d
	shift
	for ((n = 0; n < WAIT * 4; n++)); do
		"$@" && return 0
		dead_daemon >/dev/null && fail "while waiting for $what"
		sleep 0.25
	done
	fail "$what: not within ${WAIT}s"
}

listening() { (exec 4<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
answers_http() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" != 000 ]
}

start_rgw() {
	stage=rgw
	start_daemon rgw radosgw -c "$CONF" -n client.rgw.a -f
	wait_until "radosgw answering on $ENDPOINT" answers_http "$ENDPOINT/"
}

mkdir -p "$D/log"
exec 2>>"$D/log/setup.err"
if [ $restart = 1 ]; then
	[ -f "$D/s3.env" ] ||
		{ echo "rgw-start: no $D/s3.env: start the server first" >&3; exit 1; }
	PORT=$(sed -n 's/^VS_S3_PORT=//p' "$D/s3.env")
	ENDPOINT=http://127.0.0.1:$PORT
	pid=$(cat "$D/rgw.pid" 2>/dev/null) && alive "$pid" &&
		{ echo "rgw-start: radosgw already running (pid $pid)" >&3; exit 1; }
	port_free "$PORT" || fail "port $PORT is taken"
	start_rgw
	exit 0
fi

[ "$(ls -A "$D")" = log ] ||
	{ echo "rgw-start: $D is not empty; rgw-stop.sh $D first" >&3; exit 1; }
chmod 700 "$D"
touch "$D/.vs-s3"	# rgw-stop.sh removes only directories carrying this mark
mkdir -p "$D"/{run,crash,mon/ceph-a,osd/ceph-0,rgw}

BUCKET=${VS_S3_BUCKET:-vaultsync-test}
PORT=$(pick_port $PORTS_RGW)
MON_PORT=$(pick_port $PORTS_MON)
ENDPOINT=http://127.0.0.1:$PORT
FSID=$(uuidgen)

# Single node, size-1 pools, no autoscaler (it lives in the mgr), no
# warnings about any of it; the messenger's own ports come from its default
# range (it skips taken ones).  The mon commits a map change 0.1 s after it
# is asked, not 1 s: radosgw's first start makes some 20 of them (pools),
# and the whole start drops from 16 s to 3 s.  GC runs every 30 s, not
# hourly: memstore frees the tails of deleted or overwritten objects only then.
cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon initial members = a
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
ms bind ipv6 = false
ms bind msgr1 = false
keyring = $D/keyring
run dir = $D/run
crash dir = $D/crash
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
pid file =
mon data = $D/mon/\$cluster-\$id
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.1
osd data = $D/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${VS_S3_MEMSTORE_BYTES:-3221225472}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0

[osd]
keyring = $D/osd/ceph-\$id/keyring

[client.rgw.a]
keyring = $D/rgw/keyring
rgw data = $D/rgw
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw enable usage log = false
rgw thread pool size = 64
rgw gc obj min wait = 30
rgw gc processor period = 30
CONF

# cephx keys: the mon imports every key of its mkfs keyring, so the admin
# and radosgw keys exist from the start and need no round trip later.
stage=mon
ceph-authtool -C "$D/keyring" -n mon. --gen-key --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" -n client.admin --gen-key --cap mon 'allow *' \
    --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool -C "$D/rgw/keyring" -n client.rgw.a --gen-key \
    --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
ceph-authtool "$D/keyring" --import-keyring "$D/rgw/keyring" >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" --keyring "$D/keyring" 2>>"$D/log/mon.out"
start_daemon mon ceph-mon -c "$CONF" -i a -f
wait_until "ceph-mon listening on port $MON_PORT" listening "$MON_PORT"

# "osd new" also waits for the mon to form its quorum of one.
stage=osd
OSD_UUID=$(uuidgen)
OSD_KEY=$(ceph-authtool --gen-print-key)
echo "{\"cephx_secret\": \"$OSD_KEY\"}" >"$D/osd/new.json"
OSD_ID=$(ceph -c "$CONF" --connect-timeout $WAIT osd new "$OSD_UUID" -i "$D/osd/new.json")
[ "$OSD_ID" = 0 ] || fail "expected OSD id 0, got '$OSD_ID'"
ceph-authtool -C "$D/osd/ceph-0/keyring" -n osd.0 --add-key "$OSD_KEY" >/dev/null
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/osd.out" 2>&1
start_daemon osd ceph-osd -c "$CONF" -i 0 -f

# radosgw waits for the OSD by itself, and listens once its zone is set up.
start_rgw

stage=setup
ACCESS=VSTK$(rand A-Z0-9 16)
SECRET=$(rand A-Za-z0-9 40)
ACCESS2=VSTK$(rand A-Z0-9 16)
SECRET2=$(rand A-Za-z0-9 40)
# A third key with a short id, as MinIO's default and other S3-compatible
# servers issue them: the daemon must take such ids as they are.
ACCESS3=minioadmin
SECRET3=$(rand A-Za-z0-9 40)
radosgw-admin -c "$CONF" user create --uid=vstest --display-name="vaultsync tests" \
    --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
# A second key of the same user: same bucket, independent credentials.
radosgw-admin -c "$CONF" key create --uid=vstest --key-type=s3 \
    --access-key="$ACCESS2" --secret-key="$SECRET2" >/dev/null
radosgw-admin -c "$CONF" key create --uid=vstest --key-type=s3 \
    --access-key="$ACCESS3" --secret-key="$SECRET3" >/dev/null
# With a stock client, so a region or signing mismatch shows up here.
# The first bucket creates the index and data pools: a few seconds.
env -i PATH=/usr/bin:/bin HOME="$D" AWS_CONFIG_FILE=/dev/null \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID="$ACCESS" \
    AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=$REGION \
    /usr/bin/aws --endpoint-url "$ENDPOINT" s3api create-bucket --bucket "$BUCKET" >/dev/null

cat >"$D/s3.env.tmp" <<ENV
# written by tests/s3/rgw-start.sh; stop with tests/s3/rgw-stop.sh $D
VS_S3_ENDPOINT=$ENDPOINT
VS_S3_REGION=$REGION
VS_S3_BUCKET=$BUCKET
VS_S3_ACCESS_KEY=$ACCESS
VS_S3_SECRET_KEY=$SECRET
VS_S3_ACCESS_KEY2=$ACCESS2
VS_S3_SECRET_KEY2=$SECRET2
VS_S3_ACCESS_KEY3=$ACCESS3
VS_S3_SECRET_KEY3=$SECRET3
VS_S3_PORT=$PORT
VS_S3_DIR=$D
ENV
mv "$D/s3.env.tmp" "$D/s3.env"
echo "$ENDPOINT"
