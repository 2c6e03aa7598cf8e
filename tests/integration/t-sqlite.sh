#!/bin/bash
# A real database under load (DESIGN.md 6): SQLite in WAL mode on the live
# tree, 4 writer processes moving amounts between accounts (the sum stays
# constant), each transaction also adding a ledger row.  With the writers
# holding the shared lock on MNT/.swafs/txn from BEGIN to after COMMIT, a
# checkpoint with --boundary-wait taken mid-load gives a database (copied
# out of the view with cp) that opens, passes integrity_check, keeps the
# sum, and holds exactly the transactions that ended before T.  Without
# the boundary wait (writers not locking), the copy must still open
# cleanly and pass (crash consistency), holding between the transactions
# that ended and those that started before T.
. "$(dirname "$0")/ckpt-lib.sh"

BANK=$IT_DIR/sqlite_bank.py
B=$WORK/b M=$WORK/m V=$WORK/v
mkdir -p "$B" "$M"
swafs_mount "$B" "$M" "store=$WORK,events=$WORK/ev"

# run_variant NAME BOUNDARY(1|0)
run_variant() {
	local name=$1 boundary=$2 k pids=() logs=() t_ns out rc lockopt=()
	mkdir -p "$M/$name" "$WORK/$name"
	"$PYTHON" "$BANK" init "$M/$name/bank.db" || fail "$name: init failed"
	[ "$boundary" = 1 ] && lockopt=(--txn "$M")
	for k in 1 2 3 4; do
		"$PYTHON" "$BANK" write "$M/$name/bank.db" "$WORK/$name/log$k" \
			"$WORK/$name/stop" --seed "$k" "${lockopt[@]}" &
		pids+=($!)
		ckpt_helper "$!"
		logs+=("$WORK/$name/log$k")
	done
	sleep 1
	for k in 1 2 3 4; do
		wait_until 30 test -s "$WORK/$name/log$k" ||
			fail "$name: writer $k has not committed"
	done
	if [ "$boundary" = 1 ]; then
		ckpt_take "$M" "$name" --keep --boundary-wait 30
	else
		ckpt_take "$M" "$name" --keep
	fi
	sleep 1.5
	touch "$WORK/$name/stop"
	for k in "${pids[@]}"; do wait "$k" || fail "$name: a writer failed"; done
	t_ns=$(ckpt_field "$M" "$name" t_ns)
	view_mount "$M" "$name" "$V"
	mkdir "$WORK/$name/copy"
	cp "$V/$name/bank.db" "$V/$name/bank.db-wal" "$WORK/$name/copy/" ||
		fail "$name: cp out of the view failed"
	view_umount "$V"
	opt=()
	[ "$boundary" = 1 ] && opt=(--boundary)
	rc=0
	out=$("$PYTHON" "$BANK" check "$WORK/$name/copy/bank.db" "$t_ns" \
		"${logs[@]}" "${opt[@]}" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "$name: the database copied out of the view is wrong: $out"
	log "$name: $out"
	[[ $out =~ started_before_T=([0-9]+)\ logged=([0-9]+) ]] &&
		[ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ] ||
		fail "$name: T was not taken mid-load: $out"
	# the live database is fine too
	"$PYTHON" "$BANK" check "$M/$name/bank.db" "$(now_ns)" "${logs[@]}" \
		--boundary >/dev/null || fail "$name: the live database is wrong"
}

run_variant txn 1
run_variant plain 0
log ok
