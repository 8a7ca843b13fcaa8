#!/usr/bin/env bash
# Checks the #include lines of src/ against the layer table of
# ../shared/STYLE.md and DESIGN.md (Layout, Dependencies). The CMake build
# gives each folder an include path of the layers it may use; this catches
# what an include path cannot:
#   - <sqlite3.h> outside src/store/store_sqlite*, libpq outside
#     src/store/store_pg*, <gmime/...> outside src/mime;
#   - <openssl/...> outside its owners, src/net/tls*.c,
#     src/auth/auth_crypto*.c and src/authn/authn_crypto*.c (DKIM
#     verification) (<event2/bufferevent_ssl.h> in src/net only);
#   - a folder including a layer it may not use, in particular a protocol
#     (smtp, imap, pop3, queue, http) including another protocol's headers;
#   - another folder's internal headers: only its public header X/X.h
#     (any header of lib) may be included from outside folder X;
#   - relative includes ("../x.h") that step around the include path.
# Prints each violation as FILE:LINE: what; exits 1 if there is any.
#	bash scripts/check-layers.sh [SRC_DIR]	(default: src)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-src}

declare -A may_use=(
	[lib]="lib"
	[net]="lib net"
	[mime]="lib mime"
	[sieve]="lib mime sieve"
	[store]="lib mime store"
	[auth]="lib store auth"
	[archive]="lib mime store auth archive"
	[authn]="lib authn"
	[milter]="lib milter"
	[smtp]="lib net mime store auth authn milter smtp"
	[queue]="lib net mime store auth authn queue"
	[imap]="lib net mime store auth imap"
	[pop3]="lib net mime store auth pop3"
	[http]="lib net mime store auth http"
	[migrate]="lib net mime store auth migrate"
	[acme]="lib net mime store acme"
	[cli]="lib net mime sieve store auth archive authn milter smtp queue imap pop3 http migrate acme cli"
	[main]="cli"
)
protocols=" smtp queue imap pop3 http "

problems=0
problem() {
	local where=$1
	shift
	echo "$where: $*" >&2
	problems=$((problems + 1))
}

# True if the path (relative to the repository) matches a glob.
is_owner() {
	local file=$1 pattern
	shift
	for pattern in "$@"; do
		# shellcheck disable=SC2053
		[[ $file == $pattern ]] && return 0
	done
	return 1
}

while IFS= read -r file; do
	rel=${file#"$src"/}
	if [[ $rel == */* ]]; then
		folder=${rel%%/*}
	else
		folder=${rel%.c}
	fi
	if [[ -z ${may_use[$folder]+x} ]]; then
		problem "$file" "folder $folder is not in the layer table" \
		    "(scripts/check-layers.sh, ../shared/STYLE.md)"
		continue
	fi
	allowed=" ${may_use[$folder]} "
	while IFS=: read -r n line; do
		[[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] ||
		    continue
		kind=${BASH_REMATCH[1]}
		header=${BASH_REMATCH[2]}
		where="$file:$n"
		if [[ $header == *..* ]]; then
			problem "$where" "relative include \"$header\": name the" \
			    "header from src/ (folder/header.h)"
			continue
		fi
		if [[ $kind == "<" ]]; then
			case $header in
			sqlite3.h | sqlite3ext.h)
				is_owner "$rel" "store/store_sqlite*" ||
				    problem "$where" "<$header> outside" \
				    "src/store/store_sqlite* (only the SQLite backend" \
				    "speaks SQL)" ;;
			libpq-fe.h | libpq/* | postgresql/*)
				is_owner "$rel" "store/store_pg*" ||
				    problem "$where" "<$header> outside" \
				    "src/store/store_pg*" ;;
			openssl/*)
				is_owner "$rel" "net/tls*.c" "auth/auth_crypto*.c" \
				    "authn/authn_crypto*.c" ||
				    problem "$where" "<$header> outside the owners of" \
				    "OpenSSL (src/net/tls*.c, src/auth/auth_crypto*.c," \
				    "src/authn/authn_crypto*.c;" \
				    "DESIGN.md Dependencies): ask them" ;;
			event2/bufferevent_ssl.h)
				[[ $folder == net ]] ||
				    problem "$where" "<$header> outside src/net" ;;
			gmime/*)
				[[ $folder == mime ]] ||
				    problem "$where" "<$header> outside src/mime" ;;
			esac
			continue
		fi
		[[ $header == */* ]] || {
			problem "$where" "\"$header\": name the header with its" \
			    "folder (\"$folder/$header\")"
			continue
		}
		target=${header%%/*}
		name=${header#*/}
		if [[ $allowed != *" $target "* ]]; then
			if [[ $protocols == *" $folder "* &&
			    $protocols == *" $target "* ]]; then
				problem "$where" "protocol $folder includes $header:" \
				    "protocols never include each other (share code" \
				    "through a lower layer)"
			else
				problem "$where" "$folder includes $header, but" \
				    "$folder may use only:${may_use[$folder]/$folder/}" \
				    "(../shared/STYLE.md layer table)"
			fi
			continue
		fi
		if [[ $target != "$folder" && $target != lib &&
		    $name != "$target.h" ]]; then
			problem "$where" "$header is internal to src/$target:" \
			    "include its public header $target/$target.h"
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$file")
done < <(find "$src" -name '*.[ch]' | sort)

if [ "$problems" -gt 0 ]; then
	echo "check-layers: $problems include(s) break the layer rules" >&2
	exit 1
fi
echo "check-layers: every include in $src/ follows the layer rules"
