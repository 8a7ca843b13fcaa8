#!/bin/bash
# Builds every libFuzzer harness fuzz/fuzz_*.c into build-fuzz/, each linked
# with src/lib/*.c under AddressSanitizer and UBSan. A harness that does not
# build is named, the others are still built, and the exit status is 1.
# Seed corpora are committed in fuzz/corpus/NAME/; fuzz/ci.sh runs them.
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev) and the
# pkg-config files of inih and libevent.
#
#	bash fuzz/build.sh
#	mkdir -p build-fuzz/corpus && cp -r fuzz/corpus/fuzz_config build-fuzz/corpus/
#	build-fuzz/fuzz_config -max_total_time=60 \
#	    -dict=fuzz/fuzz_config.dict build-fuzz/corpus/fuzz_config
set -euo pipefail

cd "$(dirname "$0")/.."

CC=${CC:-clang}
OUT=${OUT:-build-fuzz}
CFLAGS=(-std=c17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra
	-Wno-unused-parameter
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
# A harness that fails to build is named and the others are still built;
# the exit status is non-zero if any failed.
failed=()
for src in "${sources[@]}"; do
	name=$(basename "$src" .c)
	read -r -a extra <<<"$(sed -n 's/.*fuzz-sources: *//p' "$src" | tr '\n' ' ')"
	pkgs=$(sed -n 's/.*fuzz-packages: *//p' "$src" | tr '\n' ' ')
	plibs=()
	if [ -n "$pkgs" ]; then
		if ! flags=$(pkg-config --cflags --libs $pkgs); then
			echo "FAILED to build $name: pkg-config $pkgs" >&2
			failed+=("$name")
			continue
		fi
		read -r -a plibs <<<"$flags"
	fi
	if "$CC" "${CFLAGS[@]}" "$src" src/lib/*.c ${extra[@]+"${extra[@]}"} \
	    "${LIBS[@]}" ${plibs[@]+"${plibs[@]}"} -o "$OUT/$name"; then
		echo "built $OUT/$name"
	else
		echo "FAILED to build $name" >&2
		failed+=("$name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz/build.sh: failed: ${failed[*]}" >&2
	exit 1
fi
