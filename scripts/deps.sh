#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are missing.
# Prints what it does, and a clear message when it cannot.
set -euo pipefail

missing=()
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "postern: installing missing Debian packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "postern: cannot install packages: not root and no sudo." >&2
		echo "postern: as root, run: apt-get install ${missing[*]}" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
	echo "postern: apt-get install failed; refreshing the package lists" >&2
	if ! { $SUDO apt-get update && \
	    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }; then
		echo "postern: cannot install ${missing[*]}." >&2
		echo "postern: check the network and /etc/apt/sources.list," \
		    "then run make again." >&2
		exit 1
	fi
fi
