#!/bin/bash
# Descriptors kept in reserve (issue 17 item 3): a user opening one file of
# the live tree 19,966 times (the daemon has 20,000 descriptors) gets
# EMFILE after its share alone, while root, the mount's owner and other
# users still open, list and cat, and checkpoints still capture.  On
# root's mount (allow_other, default share) and on a mount owned by uid
# 65534 (user_opens=300; the owner is never charged).
. "$(dirname "$0")/sec-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store R=$WORK/rep
mkdir -p "$B" "$M" "$S" "$R"
chmod 1777 "$R"
for k in 1 2 3; do echo "file $k" >"$B/f$k"; done
chmod 666 "$B"/f*

# hog UID N [FILE]: open FILE (default $M/f1) N times as UID and hold
# them; its "COUNT ERRNO" line in $R/hog.UID once done
hog() {
	rm -f "$R/hog.$1"
	as_bg "$1" "$SYSPY" -c '
import errno, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
fds, err = [], "none"
for _ in range(int(sys.argv[2])):
    try:
        fds.append(os.open(sys.argv[1], os.O_RDONLY))
    except OSError as e:
        err = errno.errorcode[e.errno]
        break
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write("%d %s\n" % (len(fds), err))
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
time.sleep(600)' "${3:-$M/f1}" "$2" "$R/hog.$1"
	HOG_PID=$SEC_PID
	wait_until 120 test -e "$R/hog.$1" || fail "uid $1 did not finish its opens"
	read -r HOG_N HOG_ERR <"$R/hog.$1"
	log "uid $1 held $HOG_N opens, then $HOG_ERR"
}

# works WHO: as WHO (a uid, or root), cat, ls and hold 50 opens at once
works() {
	local run=()
	[ "$1" = root ] || run=(as "$1")
	assert_eq "cat as $1" "file 2" "$("${run[@]}" cat "$M/f2" 2>&1)"
	assert_eq "ls as $1" "f1 f2 f3" "$("${run[@]}" ls "$M" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
	"${run[@]}" "$SYSPY" -c '
import os, sys
fds = [os.open(sys.argv[1], os.O_RDONLY) for _ in range(50)]' "$M/f3" ||
		fail "$1 cannot hold 50 opens"
}

# ---- 1. root's mount, default share ------------------------------------------------
swafs_mount "$B" "$M" "allow_other,store=$S"
hog "$TU1_UID" 19966
works root
works "$TU2_UID"
works "$NOBODY_UID"
[ "$HOG_ERR" = EMFILE ] || fail "uid $TU1_UID: $HOG_N opens, then $HOG_ERR, expected EMFILE"
[ "$HOG_N" -le 5000 ] || fail "uid $TU1_UID held $HOG_N of the daemon's descriptors"
swactl checkpoint "$M" --name c1 --keep >/dev/null || fail "checkpoint while uid $TU1_UID holds its share"
view_mount "$M" c1 "$WORK/v1"
# a view's open files cost the daemon descriptors too
HOG1=$HOG_PID
hog "$TU2_UID" 19966 "$WORK/v1/f1"
works root
works "$NOBODY_UID"
[ "$HOG_ERR" = EMFILE ] && [ "$HOG_N" -le 5000 ] ||
	fail "uid $TU2_UID's opens in a view: $HOG_N, then $HOG_ERR"
stop_helper "$HOG_PID"
echo changed >"$M/f2"	# a capture, while uid $TU1_UID holds its share
assert_eq "f2 at T in the view" "file 2" "$(cat "$WORK/v1/f2")"
view_umount "$WORK/v1"
swactl release "$M" c1 >/dev/null
stop_helper "$HOG1"
echo "file 2" >"$M/f2"
wait_until 10 works "$TU1_UID" || fail "uid $TU1_UID cannot open after closing its files"
swafs_umount "$M"

# ---- 2. a mount owned by uid 65534, user_opens=300 ---------------------------------
chown "$NOBODY_UID:$NOBODY_GID" "$B"
SWAFS=$SWAFS_NOBODY swafs_mount "$B" "$M" "allow_other,store=$S,user_opens=300"
hog "$TU2_UID" 19966
assert_eq "uid $TU2_UID's opens on the user's mount" "300 EMFILE" "$HOG_N $HOG_ERR"
works "$NOBODY_UID"
works root
works "$TU1_UID"
stop_helper "$HOG_PID"
hog "$NOBODY_UID" 2000
assert_eq "the owner's opens (never charged)" "2000 none" "$HOG_N $HOG_ERR"
stop_helper "$HOG_PID"
swafs_umount "$M"

# a bad value is refused with one line
rc=0
"$SWAFS" "$B" "$M" -f -o user_opens=0 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "invalid option 'user_opens=0'" "$WORK/err" ||
	fail "user_opens=0: exit $rc: $(cat "$WORK/err")"
log ok
