#!/bin/bash
# on_full=fail-writes (DESIGN.md 8): with a store too small for the
# overwrites that follow a checkpoint, the writes that need a capture fail
# with ENOSPC and change nothing; writes to blocks already captured still
# succeed; the live file holds exactly the writes that returned; the
# checkpoint stays valid and its view reads the T bytes, all of them; a
# store-full event names the policy.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt V=$WORK/view
mkdir -p "$B" "$M" "$V"
swafs_mount "$B" "$M" "store=$WORK,store_mem=1M,store_max=1M,block_size=64K,on_full=fail-writes,events=$WORK/events"
head -c $((32 << 20)) /dev/urandom >"$WORK/orig"
cp "$WORK/orig" "$M/f"
sync
swactl checkpoint "$M" --name full --keep >/dev/null

# overwrite every 64 KiB block with new random bytes; keep the expected
# live image: the original with each write that returned applied
"$PYTHON" - "$M/f" "$WORK/orig" "$WORK/expect" <<'EOF' || fail "writer checks failed"
import errno, os, sys
path, orig, expect = sys.argv[1:]
img = bytearray(open(orig, 'rb').read())
fd = os.open(path, os.O_WRONLY)
ok = refused = 0
first_ok = None
for i in range(len(img) // 65536):
    data = os.urandom(65536)
    try:
        os.pwrite(fd, data, i * 65536)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            print('block %d: %s, expected ENOSPC or success' % (i, e))
            sys.exit(1)
        refused += 1
        continue
    img[i * 65536:(i + 1) * 65536] = data
    ok += 1
    first_ok = i if first_ok is None else first_ok
print('writes: %d returned, %d refused with ENOSPC' % (ok, refused))
if not ok or not refused:
    print('expected some writes to succeed and later ones to be refused')
    sys.exit(1)
# a block captured before the store filled costs nothing to write again
data = os.urandom(65536)
os.pwrite(fd, data, first_ok * 65536)
img[first_ok * 65536:(first_ok + 1) * 65536] = data
os.close(fd)
open(expect, 'wb').write(img)
EOF
cmp "$M/f" "$WORK/expect" || fail "the live file is not exactly the writes that returned"
ckpt_json "$M" | grep -q '"name":"full".*"valid":true' ||
	fail "the checkpoint is not valid after refused writes: $(ckpt_json "$M")"
grep '"event":"store-full"' "$WORK/events" | grep -q '"policy":"fail-writes"' ||
	fail "no store-full event with the policy"
# status says the store is full and the checkpoint still active
"$SWACTL" status "$M" full --json | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)[0]
assert r["state"] == "active" and r["reason"] is None, r
assert r["on_full"] == "fail-writes", r
assert r["store_used_bytes"] > 0 and r["store_max_bytes"] > 0, r' ||
	fail "status does not show the fail-writes store: $("$SWACTL" status "$M" full)"
view_mount "$M" full "$V"
cmp "$V/f" "$WORK/orig" || fail "the view does not read the T bytes"
view_umount "$V"
swactl release "$M" full
log ok
