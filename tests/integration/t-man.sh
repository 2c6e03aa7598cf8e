#!/usr/bin/env bash
# The manual pages tell the truth about --help: fs/swafs.8 and tools/swactl.8
# format without a groff warning, every -o option of `swafs --help` is in
# swafs.8, and every command and --option of `swactl --help` is in swactl.8.
. "$(dirname "$0")/lib.sh"

SWACTL=${SWACTL:-$ROOT/bin/swactl}
SWAFS_MAN=$ROOT/fs/swafs.8
SWACTL_MAN=$ROOT/tools/swactl.8

for page in "$SWAFS_MAN" "$SWACTL_MAN"; do
	[ -f "$page" ] || fail "$page is missing"
	warn=$(groff -man -ww -z "$page" 2>&1) ||
		fail "$page does not format: $warn"
	[ -z "$warn" ] || fail "$page: groff warns: $warn"
done

# the page's text as a reader sees it, hyphens plain
plain() { groff -man -Tutf8 -P-cbou "$1" 2>/dev/null | sed 's/‐/-/g'; }
plain "$SWAFS_MAN" >"$WORK/swafs.txt"
plain "$SWACTL_MAN" >"$WORK/swactl.txt"

"$SWAFS" --help >"$WORK/swafs.help"
opts=$(grep -oE -- '-o [a-z_]+' "$WORK/swafs.help" | sort -u)
[ "$(printf '%s\n' "$opts" | wc -l)" -ge 15 ] ||
	fail "swafs --help lists too few -o options: $opts"
for o in $opts; do
	[ "$o" = "-o" ] && continue
	grep -qF -- "-o $o" "$WORK/swafs.txt" || fail "swafs.8 lacks '-o $o'"
done
grep -q 'swactl(8)' "$WORK/swafs.help" || fail "swafs --help no longer names swactl(8)"

"$SWACTL" --help >"$WORK/swactl.help"
words=$(grep -oE -- '--[a-z][a-z-]+' "$WORK/swactl.help" | sort -u)
[ "$(printf '%s\n' "$words" | wc -l)" -ge 12 ] ||
	fail "swactl --help lists too few --options: $words"
for w in $words; do
	grep -qF -- "$w" "$WORK/swactl.txt" || fail "swactl.8 lacks '$w'"
done
for c in checkpoint mount release list status history events \
	"sync start" "sync end" "sync list"; do
	grep -q "^ *swactl $c\|^ *$c " "$WORK/swactl.txt" ||
		fail "swactl.8 has no entry for '$c'"
done
for v in $(grep -oE '^[A-Z_]+=' "$WORK/swactl.help" | tr -d =); do
	grep -q "$v" "$WORK/swactl.txt" || fail "swactl.8 lacks $v"
done
log "both pages format cleanly and cover --help"
