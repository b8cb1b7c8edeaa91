#!/bin/bash
# make check: unit tests (normal and ASan/UBSan builds), fuzz smoke runs, then
# the integration suite against both builds, and the bounded torture suite.
# Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh tests/users.sh
passed=0 failed=0
PYTEST=(/usr/bin/python3 -m pytest -q -p no:cacheprovider)
[ -f ../shared/DESIGN.md ] && export VS_DESIGN_MD=$PWD/../shared/DESIGN.md

count_cmocka() {	# $1 = output file
	local p f
	p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
	f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
}

count_pytest() {	# $1 = output file, $2 = exit code
	local line p f e
	line=$(grep -E '^=*.*(passed|failed|error).* in [0-9.]+s' "$1" | tail -1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
	e=$(grep -oE '[0-9]+ error' <<<"$line" | grep -oE '[0-9]+')
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
	# A run that crashed before its summary still counts as a failure.
	if [ "$2" != 0 ] && [ -z "$f$e" ]; then failed=$((failed + 1)); fi
}

log=$(mktemp -d)
# The S3 servers and any container of tests/systemd are stopped however the
# run ends; INT/TERM/HUP exit through EXIT.
trap 'for r in "$log"/systemd/run-*; do [ -d "$r" ] && tests/systemd/host.sh stop "$r"; done
      for d in "$log"/s3-*; do [ -d "$d" ] && tests/s3/rgw-stop.sh "$d"; done; rm -rf "$log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

for b in build build-asan; do
	echo "== unit tests ($b)"
	for t in "$b"/tests/test_*; do
		[ -x "$t" ] || continue
		out=$log/$(basename "$t").$b
		if ASAN_OPTIONS=detect_leaks=1 "$t" >"$out" 2>&1; then rc=0; else rc=$?; fi
		count_cmocka "$out"
		if [ $rc != 0 ]; then
			cat "$out"
			grep -q 'FAILED  \]' "$out" || failed=$((failed + 1))
		else
			echo "$(basename "$t"): $(grep -E 'PASSED' "$out" | tail -1)"
		fi
	done
done

echo "== fuzz smoke runs"
for f in build-fuzz/fuzz_*; do
	name=${f#build-fuzz/fuzz_}
	corpus=$log/corpus-$name
	mkdir -p "$corpus"
	cp -r tests/fuzz/corpus/"$name"/. "$corpus"/ 2>/dev/null || true
	# A fresh copy of the seeds: the run adds to it, never to the tree.
	# A crashing input lands in build-fuzz/ (ignored), not in the tree.
	if "$f" -max_total_time="${VS_FUZZ_SECONDS:-15}" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=build-fuzz/"$name"- "$corpus" >"$log/fuzz-$name" 2>&1; then
		passed=$((passed + 1))
		echo "fuzz_$name: $(grep -E '^Done [0-9]+ runs' "$log/fuzz-$name")"
	else
		failed=$((failed + 1))
		tail -40 "$log/fuzz-$name"
	fi
done

# The integration suite runs in shards side by side: most of a test's time
# is waiting out deadlines, timers and retries, so on two cores four shards
# take about a third of the time of one run after the other: the tests
# marked slow (mostly asleep) in two, the others on the normal build in one
# and on the sanitizer build in one (which leaves the slow ones out: their
# time is waiting, not code the normal pass does not run).  Five shards by
# hash alone were too many at once: tests then waited out their own
# deadlines.  Each shard has its own throwaway Ceph RGW on 127.0.0.1 (the s3
# fixture in tests/integration/s3server.py), since some tests stop and start
# theirs.
# The RGWs start one after the other: each picks a free port as it starts.
# If one does not start, the tests that need it fail with the reason rather
# than being skipped.
shards=("build slow 0/2" "build slow 1/2" "build fast 0/1" "build-asan fast 0/1")
echo "== S3 test servers (Ceph RGW), one per shard"
for i in "${!shards[@]}"; do
	t0=$SECONDS
	if tests/s3/rgw-start.sh "$log/s3-$i" >"$log/rgw-start-$i" 2>&1; then
		echo "shard $i: radosgw on $(sed -n 's/^VS_S3_ENDPOINT=//p' "$log/s3-$i/s3.env")," \
		    "started in $((SECONDS - t0)) s"
	else
		cat "$log/rgw-start-$i"
	fi
done

echo "== integration tests: ${#shards[@]} shards side by side"
t0=$SECONDS
for i in "${!shards[@]}"; do
	read -r b speed shard <<<"${shards[$i]}"
	sel=(-m "slow and not alone")
	[ "$speed" = fast ] && sel=(-m "not slow and not alone")
	(
		if [ -f "$log/s3-$i/s3.env" ]; then
			set -a
			# shellcheck source=/dev/null
			. "$log/s3-$i/s3.env"
			set +a
		else
			VS_S3_START_ERROR=$(tail -n 60 "$log/rgw-start-$i")
			export VS_S3_START_ERROR
		fi
		VS_BUILD=$PWD/$b VS_SHARD=$shard "${PYTEST[@]}" "${sel[@]}" tests/integration \
		    >"$log/pytest.$i" 2>&1
		echo $? >"$log/rc.$i"
	) &
done
wait
for i in "${!shards[@]}"; do
	echo "== integration tests (${shards[$i]})"
	cat "$log/pytest.$i"
	count_pytest "$log/pytest.$i" "$(cat "$log/rc.$i" 2>/dev/null || echo 1)"
done
echo "(integration shards took $((SECONDS - t0)) s)"

# From here on the tests use the first shard's S3 server.
if [ -f "$log/s3-0/s3.env" ]; then
	set -a
	# shellcheck source=/dev/null
	. "$log/s3-0/s3.env"
	set +a
fi
# Tests that change a host-wide setting (an inotify sysctl: the watch limit,
# the queue length) run by themselves: beside the shards, another test's
# daemon would meet the lowered limit and fall back to polling or overflow.
echo "== integration tests changing host-wide settings, alone (build)"
out=$log/pytest.alone
rc=0
VS_BUILD=$PWD/build "${PYTEST[@]}" -m alone tests/integration >"$out" 2>&1 || rc=$?
cat "$out"
count_pytest "$out" "$rc"

# The package that make deb builds from this tree, installed and run under a
# real systemd: Debian 12 containers whose root is built once and kept in
# /var/cache/vaultsync-tests.  Once per run, on the first shard's S3 server.
echo "== the Debian package under systemd (tests/systemd)"
t0=$SECONDS
out=$log/pytest.systemd
VS_SYSTEMD_RUNDIR=$log/systemd "${PYTEST[@]}" tests/systemd 2>&1 | tee "$out"
count_pytest "$out" "${PIPESTATUS[0]}"
echo "(the systemd tests took $((SECONDS - t0)) s)"

# The bounded torture suite (make torture runs the long form), on the normal
# build: its scenarios are bounded by time, so under the sanitizers they
# would only do less in the same minutes.  The RGW is this run's own, so the
# suite may stop and start it.
echo "== torture suite, bounded (build)"
out=$log/torture.build
VS_BUILD=$PWD/build VS_TORTURE_SCALE=bounded VS_TORTURE_RGW_STOPPABLE=1 \
	"${PYTEST[@]}" tests/torture 2>&1 | tee "$out"
count_pytest "$out" "${PIPESTATUS[0]}"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
