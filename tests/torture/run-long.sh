#!/bin/bash
# make torture: the long form of the torture suite (about 30 minutes) against
# one build ($1), with a throwaway Ceph RGW of its own (which the suite may
# stop and start).  Ends with pytest's summary and the "torture:" counters.
set -u
cd "$(dirname "$0")/../.."
build=${1:-$PWD/build}
s3dir=$(mktemp -d)
trap 'tests/s3/rgw-stop.sh "$s3dir/rgw" >/dev/null 2>&1; rm -rf "$s3dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if tests/s3/rgw-start.sh "$s3dir/rgw" >"$s3dir/rgw-start.log" 2>&1; then
	set -a
	# shellcheck source=/dev/null
	. "$s3dir/rgw/s3.env"
	set +a
else
	cat "$s3dir/rgw-start.log"
	VS_S3_START_ERROR=$(tail -n 60 "$s3dir/rgw-start.log")
	export VS_S3_START_ERROR
fi
VS_BUILD=$build VS_TORTURE_SCALE=long VS_TORTURE_RGW_STOPPABLE=1 \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider --torture-long tests/torture
