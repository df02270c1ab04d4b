#!/bin/sh
# install-deps.sh - installs everything Trove builds and tests with, from
# Debian's packages.  Safe to run again: apt-get skips what is present.
# `make` runs it by itself when a needed header is missing.
set -eu

PACKAGES="
  build-essential clang pkg-config
  liblz4-dev libzstd-dev libxxhash-dev
  libcmocka-dev libedit-dev scdoc
  libclang-rt-14-dev
  libgdbm-dev libgdbm-compat-dev libdb5.3-dev liblmdb-dev
  libuv1-dev libssl-dev python3-pytest python3-redis redis-tools
  libleveldb-dev librocksdb-dev libkyotocabinet-dev libtkrzw-dev libsqlite3-dev
  gnuplot-nox redis-server
"

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

missing=""
for p in $PACKAGES; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
