#!/usr/bin/env bash
# Installs what `make bench` needs besides postern's own build packages:
# Postfix (for smtp-source and the reference MTA) and Dovecot (the reference
# IMAP/POP3/LMTP server), plus sqlite3 to count postern's store.
#
# The packages' system services must not be enabled or started: the bench
# runs private instances on loopback high ports. A policy-rc.d that refuses
# every start is put in place for the install (and removed afterwards if it
# was not there before); any instance that started anyway is stopped.
set -euo pipefail

PKGS=(postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd sqlite3)

missing=()
for pkg in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "bench: installing ${missing[*]} needs root:" >&2
	echo "bench:   sudo bash bench/deps.sh" >&2
	exit 1
fi

echo "bench: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it should be configured; we configure our own instance.
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections

POLICY=/usr/sbin/policy-rc.d
ours_policy=no
if [[ ! -e $POLICY ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	ours_policy=yes
fi
cleanup() {
	[[ $ours_policy == yes ]] && rm -f "$POLICY"
	return 0
}
trap cleanup EXIT

if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Services that started despite the policy (systemd hosts ignore it for
# units started by the package's postinst) are stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	systemctl disable --now postfix.service dovecot.service \
		>/dev/null 2>&1 || true
fi
# The system Postfix and Dovecot, if running, use the default config dirs.
postfix -c /etc/postfix status >/dev/null 2>&1 &&
	postfix -c /etc/postfix stop >/dev/null 2>&1 || true
[[ -e /run/dovecot/master.pid ]] &&
	doveadm -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1 || true
exit 0
