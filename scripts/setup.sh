#!/usr/bin/env bash
# setup.sh: installs the Debian/Ubuntu packages hug builds against, if any
# are missing (as root, or through sudo). Safe to run again: it does nothing
# when everything is there.
set -euo pipefail
pkgs=(build-essential libopenmpi-dev openmpi-bin libhdf5-dev libcjson-dev libopenblas-dev clang libonig-dev libutf8proc-dev
      protobuf-c-compiler libprotobuf-c-dev
      # hug plot: cairo, and a font for its labels (cairo falls back to a
      # built-in one, but --no-install-recommends may leave none)
      libcairo2-dev fonts-dejavu-core)
# `make fuzz`: clang's libFuzzer and sanitizer runtimes, a package of their
# own on Debian 12 (libclang-rt-14-dev), among clang's dependencies elsewhere.
if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
	pkgs+=(libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
