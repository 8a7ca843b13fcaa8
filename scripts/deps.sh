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
# Packages that come with a service (Dovecot, for the migration tests) must
# not start it: the tests run their own instances, and a system Dovecot on
# 143/993/110/995 would take the ports the doctor tests bind on loopback
# addresses. A policy-rc.d that refuses every start is in place during the
# install (removed afterwards if it was not there before), as in
# bench/deps.sh; an instance that started anyway is stopped below.
POLICY=/usr/sbin/policy-rc.d
ours_policy=no
if [[ -z $SUDO && ! -e $POLICY ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	ours_policy=yes
	trap '[[ $ours_policy == yes ]] && rm -f "$POLICY"' EXIT
fi
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
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	$SUDO systemctl disable --now dovecot.service >/dev/null 2>&1 || true
fi
if [[ -e /run/dovecot/master.pid ]]; then
	$SUDO doveadm -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1 || true
fi
exit 0
