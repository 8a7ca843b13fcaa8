#!/usr/bin/env bash
# Proves that scripts/check-layers.sh can fail: on a copy of src/ it passes,
# then each planted include below must make it fail naming that file.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r src "$tmp/src"
bash scripts/check-layers.sh "$tmp/src" >/dev/null

failures=0
# FILE is a path under src/, or a folder: its first .c file.
expect_refused() {
	local file=$1 include=$2 out
	if [ -d "$tmp/src/$file" ]; then
		file=$(cd "$tmp/src" && ls "$file"/*.c | head -n 1)
	fi
	cp "$tmp/src/$file" "$tmp/saved"
	printf '#include %s\n' "$include" >>"$tmp/src/$file"
	if out=$(bash scripts/check-layers.sh "$tmp/src" 2>&1); then
		echo "FAIL: $file with #include $include passed the check"
		failures=$((failures + 1))
	elif [[ $out != *"$tmp/src/$file:"* ]]; then
		echo "FAIL: $file with #include $include: no line names it:"
		echo "$out"
		failures=$((failures + 1))
	fi
	cp "$tmp/saved" "$tmp/src/$file"
}

expect_refused store/store.c '<sqlite3.h>'
expect_refused smtp '<sqlite3.h>'
expect_refused queue '<openssl/evp.h>'
expect_refused net '<openssl/ssl.h>'
expect_refused auth/auth.c '<openssl/sha.h>'
expect_refused imap '<gmime/gmime.h>'
expect_refused smtp '"imap/imap.h"'
expect_refused queue '"smtp/smtp.h"'
expect_refused pop3 '"queue/queue.h"'
expect_refused net '"store/store.h"'
expect_refused authn '"store/store.h"'
expect_refused authn '"smtp/smtp.h"'
expect_refused smtp '"authn/authn_int.h"'
expect_refused lib '"net/net.h"'
expect_refused store/store.c '"auth/auth.h"'
expect_refused auth/auth.c '"mime/mime.h"'
expect_refused smtp '"store/store_int.h"'
expect_refused imap '"../store/store.h"'
expect_refused cli '"store/store_sqlite.h"'
expect_refused net/net.h '"smtp/smtp.h"'

[ "$failures" -eq 0 ] || exit 1
echo "check-layers refuses every planted violation"
