#!/usr/bin/env bash
# Install what swafs needs to build, test, fuzz, demo and benchmark, with
# apt-get (clang-14 and libclang-rt-14-dev: libFuzzer for make fuzz).
# Only missing packages are installed, so a second run costs one dpkg query.
set -eu

pkgs=(
	build-essential pkg-config
	fuse3 libfuse3-dev libxxhash-dev liblz4-dev libarchive-dev libcriterion-dev libsystemd-dev
	attr acl rsync fio python3 sqlite3 tar coreutils util-linux
	btrfs-progs groff-base man-db systemd
	clang-14 libclang-rt-14-dev
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
