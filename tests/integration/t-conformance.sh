#!/usr/bin/env bash
# Passthrough conformance: conformance.py runs the same system calls (as
# root, then as uid 65534 with a supplementary group) in a plain directory
# and through a swafs mount (allow_other) of a sibling directory on the same
# filesystem, and diffs the results record by record, then the trees
# (plain vs mount, mount vs BACKING). After unmounting, BACKING must still
# equal the plain tree. Run twice: with the default options, and with no
# kernel caching and the smallest descriptor cache (timeout=0,fd_cache=16),
# where the daemon must look objects up again and reopen them all the time.
. "$(dirname "$0")/lib.sh"

bad=0 runs=0
for opts in allow_other allow_other,timeout=0,fd_cache=16; do
	D=$WORK/${opts//[,=]/_}
	P=$D/plain B=$D/backing M=$D/mnt
	mkdir -p "$P" "$B" "$M"
	chmod 755 "$D"
	log "options: $opts"
	runs=$((runs + 1)) ok=1
	swafs_mount "$B" "$M" "$opts"
	if ! "$PYTHON" "$IT_DIR/conformance.py" "$P" "$M" "$B" --dump "$D/log"; then
		log "FAILED with -o $opts: the mount does not behave like a plain directory (see above)"
		ok=0
	fi
	pid_alive "$SWAFS_PID" || fail "the daemon died during the conformance run (-o $opts)"
	swafs_umount "$M"
	manifest "$P" >"$D/plain.manifest"
	manifest "$B" >"$D/backing.manifest"
	if ! diff -u "$D/plain.manifest" "$D/backing.manifest" >"$D/manifest.diff"; then
		head -n 40 "$D/manifest.diff" >&2
		log "FAILED with -o $opts: after unmounting, BACKING differs from the plain tree"
		ok=0
	fi
	[ "$ok" = 1 ] || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] || fail "$bad of $runs conformance runs found differences"
log "ok"
