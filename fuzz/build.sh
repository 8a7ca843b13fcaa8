#!/bin/bash
# Builds every libFuzzer harness fuzz/fuzz_*.c into build-fuzz/, each linked
# with src/lib/*.c under AddressSanitizer and UBSan, and writes seed corpora
# (build-fuzz/corpus/NAME/) and a dictionary for the config harness.
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev) and the
# pkg-config files of inih and libevent.
#
#	bash fuzz/build.sh
#	build-fuzz/fuzz_config -max_total_time=60 \
#	    -dict=build-fuzz/fuzz_config.dict build-fuzz/corpus/fuzz_config
set -euo pipefail

cd "$(dirname "$0")/.."

CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
CFLAGS=(-std=c17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -Isrc)
read -r -a LIBS <<<"$(pkg-config --cflags --libs inih libevent)"

# A harness names what it needs beyond src/lib in comment lines:
#	fuzz-sources: src/smtp/smtp_data.c src/smtp/smtp_address.c
#	fuzz-packages: gmime-3.0
# With arguments, only the named harnesses: bash fuzz/build.sh fuzz_smtp
mkdir -p "$OUT"
sources=(fuzz/fuzz_*.c)
[ $# -gt 0 ] && sources=("${@/#/fuzz/}") && sources=("${sources[@]/%/.c}")
for src in "${sources[@]}"; do
	name=$(basename "$src" .c)
	read -r -a extra <<<"$(sed -n 's/.*fuzz-sources: *//p' "$src" | tr '\n' ' ')"
	pkgs=$(sed -n 's/.*fuzz-packages: *//p' "$src" | tr '\n' ' ')
	read -r -a plibs <<<"$( [ -n "$pkgs" ] && pkg-config --cflags --libs $pkgs)"
	"$CC" "${CFLAGS[@]}" "$src" src/lib/*.c ${extra[@]+"${extra[@]}"} \
	    "${LIBS[@]}" ${plibs[@]+"${plibs[@]}"} -o "$OUT/$name"
	mkdir -p "$OUT/corpus/$name"
	echo "built $OUT/$name"
done

# Seeds: starting points only; libFuzzer adds what it finds to the same
# directory, so existing files are left alone.
seed() {
	local file=$OUT/corpus/$1/$2

	[ -e "$file" ] || printf '%b' "$3" >"$file"
}

if [ -d "$OUT/corpus/fuzz_config" ]; then
	seed fuzz_config minimal '[server]\ndata_dir = /var/lib/postern\n[certificate main]\ncert = /c.pem\nkey = /k.pem\n'
	seed fuzz_config full '; every key\n[server]\nhostname = mx.example.org\ndata_dir = /srv/postern\nuser = postern\nworkers = 4\nlog_level = debug\nsyslog = yes\nallow_plaintext_auth = no\n[limits]\nmax_connections = 500\nmax_connections_per_ip = 5\nline_length = 8k\nmessage_size = 25M\nrecipients = 50\nimap_literal_max = 1G\nimap_literal_max_preauth = 16k\n[timeouts]\nsmtp = 5m\nimap = 1h\npop3 = 90s\ntls_handshake = 15\nshutdown_grace = 0\n[listener mx]\naddress = 192.0.2.1\nport = 25 ; comment\nprotocol = smtp\ntls = starttls\n[listener imaps]\naddress = ::1\nport = 993\nprotocol = imap\ntls = implicit\n[certificate main]\ncert = /etc/postern/main.crt\nkey = /etc/postern/main.key\n'
	seed fuzz_config listeners '[server]\r\ndata_dir = /d\r\n[listener a]\r\nport = 0\r\nprotocol = http\r\n[listener b]\r\nport = 0\r\nprotocol = pop3\r\ntls = none\r\n'
	seed fuzz_config bad '[server]\ndata_dir = rel\noops\n[listener x]\nport = 70000\n'
fi
if [ -d "$OUT/corpus/fuzz_line_reader" ]; then
	seed fuzz_line_reader smtp '\x10\x05EHLO a\r\nMAIL FROM:<a@b>\r\n\r\nDATA\r\n'
	seed fuzz_line_reader overlong '\x08\x000123456789\r\nok\nxxxxxxxxxxxxxxxxxxxxxxxxx'
	seed fuzz_line_reader bare_lf '\x03\x07a\nbb\n\n\r\ncc\r\r\n'
fi

cat >"$OUT/fuzz_config.dict" <<'EOF'
"[server]"
"[limits]"
"[timeouts]"
"[listener "
"[certificate "
"]"
" = "
"\x0a"
"\x0d\x0a"
";"
"#"
"hostname"
"data_dir"
"user"
"workers"
"log_level"
"syslog"
"allow_plaintext_auth"
"max_connections"
"max_connections_per_ip"
"line_length"
"message_size"
"recipients"
"imap_literal_max"
"imap_literal_max_preauth"
"smtp"
"imap"
"pop3"
"tls_handshake"
"shutdown_grace"
"address"
"port"
"protocol"
"tls"
"cert"
"key"
"submission"
"http"
"none"
"starttls"
"implicit"
"yes"
"off"
"0.0.0.0"
"::1"
"65535"
"64k"
"50M"
"1G"
"30s"
"5m"
"1h"
"1d"
"\xef\xbb\xbf"
EOF
echo "wrote $OUT/fuzz_config.dict and seeds under $OUT/corpus/"
