#!/usr/bin/env bash
# Run each libFuzzer harness for SECS seconds: fuzz.sh SECS HARNESS...
#
# No corpus is kept: each run starts from an empty one in a temporary
# directory (also the harness's $TMPDIR), removed afterwards.  A crash
# leaves its input in build/fuzz/crash-<harness>-* (reproduce: run the
# harness with that file as argument) and makes the script exit 1.
set -u

secs=$1
shift
out=build/fuzz
fail=0
for bin in "$@"; do
	name=${bin##*/}
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/swafs-$name.XXXXXX") || exit 1
	mkdir "$tmp/corpus"
	echo "== $name: ${secs}s"
	rc=0
	TMPDIR=$tmp ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 \
		-print_final_stats=1 -print_pcs=0 -reload=0 \
		-artifact_prefix="$out/crash-$name-" "$tmp/corpus" \
		>"$tmp/log" 2>&1 || rc=$?
	# the progress lines, final coverage and stats (the full log on failure)
	if [ "$rc" -eq 0 ]; then
		grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$tmp/log"
		echo "   corpus: $(find "$tmp/corpus" -type f | wc -l) inputs found"
	else
		cat "$tmp/log"
		echo "FAIL: $name exited $rc; input kept as $out/crash-$name-*" >&2
		fail=1
	fi
	rm -rf -- "$tmp"
done
exit "$fail"
