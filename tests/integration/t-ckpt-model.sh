#!/bin/bash
# Randomized model test (ckpt_model.py): random operations on the live tree
# and identically on a plain model directory; a checkpoint at a random
# moment; more operations interleaved with partial reads of the view; at
# the end the view equals the image recorded at T and the live tree equals
# the model. Three runs, seeds SEED, SEED+1, SEED+2 (SEED random unless
# given); block size, retain mode and scope follow from each seed: odd
# seeds take the checkpoint with random --path scopes and also rename,
# remove and replace the scope roots and their ancestors after T. Reproduce with
# SEED=<printed seed>, or one run with SEEDS=<seed>. MODEL_OPS (default 1000)
# sets the number of operations after T.
#
# CKPT_SELFTEST=1 records the image one operation too early: must fail.
. "$(dirname "$0")/ckpt-lib.sh"

SEED=${SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
SEEDS=${SEEDS:-"$SEED $((SEED + 1)) $((SEED + 2))"}
log "seeds: $SEEDS (reproduce with SEEDS=\"$SEEDS\")"
BSIZES=(4K 16K 64K 1M)
sel=()
[ "${CKPT_SELFTEST:-0}" = 1 ] && sel=(--selftest)

failed=
for s in $SEEDS; do
	bs=${BSIZES[$((s % 4))]}
	retain=saved
	[ $((s % 3)) -eq 2 ] && retain=all
	scoped=()
	[ $((s % 2)) -eq 1 ] && scoped=(--scoped)
	R=$WORK/run$s
	mkdir -p "$R/backing" "$R/mnt" "$R/model" "$R/view" "$R/store"
	swafs_mount "$R/backing" "$R/mnt" "events=$R/events,store=$R/store,block_size=$bs,store_mem=8M"
	_CKPT_VIEWS+=("$R/view")
	log "seed $s: block_size=$bs retain=$retain ${scoped[*]}"
	if ! "$PYTHON" "$IT_DIR/ckpt_model.py" --mnt "$R/mnt" --shadow "$R/model" \
		--view "$R/view" --work "$R" --seed "$s" --swactl "$SWACTL" \
		--retain "$retain" --ops "${MODEL_OPS:-1000}" "${scoped[@]}" "${sel[@]}" \
		>"$R/out" 2>&1; then
		cat "$R/out" >&2
		failed="$failed $s"
	else
		tail -n 1 "$R/out" >&2
	fi
	if is_fuse_mount "$R/view"; then view_umount "$R/view"; fi
	if grep -q '"event":"integrity-error"' "$R/events"; then
		log "seed $s: integrity-error events: $(grep integrity-error "$R/events" | head -3)"
		case "$failed " in *" $s "*) ;; *) failed="$failed $s" ;; esac
	fi
	swafs_umount "$R/mnt"
done
[ -z "$failed" ] || fail "model test failed for seed(s)$failed (block size: ${BSIZES[*]} by seed % 4; retain all when seed % 3 == 2; --path scopes when odd); reproduce with SEEDS=\"$failed\""
log "ok"
