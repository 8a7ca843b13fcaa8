# postern: the two commands of the README, and the rest.
#   make run     install what is missing, build, configure on first use, serve
#   make check   install what is missing, build, run every test
# Other targets: deps build asan fuzz bench clean.

# Debian 12 packages (DESIGN.md, Dependencies). scripts/deps.sh installs
# without Recommends: what a test needs from a Recommends is named here too.
PACKAGES := build-essential cmake pkg-config openssl \
	libevent-dev libssl-dev libsqlite3-dev libpq-dev libgmime-3.0-dev \
	libc-ares-dev libcrypt-dev libinih-dev zlib1g-dev libjansson-dev \
	libcurl4-openssl-dev \
	libcmocka-dev python3-pytest
# DMARC's Public Suffix List ([dmarc] psl_file), read when the server starts.
PACKAGES += publicsuffix
# Fuzzing (make fuzz, CI): clang with libFuzzer.
PACKAGES += clang libclang-rt-14-dev
# Every program an integration test starts: the clients (swaks speaks TLS
# through Net::SSLeay), DNS and DKIM for outbound delivery, file systems
# on loop devices, system users for the run-as tests (useradd). A missing
# one fails the test (tests/skip-allowlist.txt).
PACKAGES += isync offlineimap3 mutt tmux curl swaks libnet-ssleay-perl \
	fetchmail getmail6 dnsmasq-base python3-dnspython python3-spf python3-cryptography python3-dkim python3-prometheus-client e2fsprogs util-linux mount \
	passwd
# A real IMAP/POP3 source for the migration tests (test_migrate.py starts a
# private instance on loopback; the bench uses its LMTP too).
PACKAGES += dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd
# Pigeonhole's sieve-test, the reference of the Sieve differential test
# (test_sieve_differential.py).
PACKAGES += dovecot-sieve
# The ACME server the certificate tests run privately (test_acme.py).
PACKAGES += pebble
# The milter the milter tests run privately (test_smtp_milter.py).
PACKAGES += rspamd

BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_BENCH ?= build/bench
JOBS ?= $(shell nproc)
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)
# As root, postern lives where a system service lives; otherwise in run/.
ifeq ($(IS_ROOT),yes)
CONFIG ?= /etc/postern/postern.conf
DATA ?= /var/lib/postern
else
CONFIG ?= $(CURDIR)/run/postern.conf
DATA ?= $(CURDIR)/run/data
endif
DOMAIN ?= example.test

.PHONY: all deps build run check asan fuzz bench clean

all: build

deps:
	@bash scripts/deps.sh $(PACKAGES)

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@if [ ! -f "$(CONFIG)" ]; then \
		if [ "$(IS_ROOT)" = yes ] && ! id postern >/dev/null 2>&1; then \
			useradd --system --home-dir /nonexistent --no-create-home \
				--shell /usr/sbin/nologin postern; \
		fi; \
		$(BUILD)/postern quickstart $(DOMAIN) --config "$(CONFIG)" \
			--data-dir "$(DATA)" || exit 1; \
	fi
	$(BUILD)/postern serve -c "$(CONFIG)"

# Then one line per integration test file: passed, skipped, failed.
check: build
	@rm -rf $(BUILD)/test-summary
	@rc=0; ctest --test-dir $(BUILD) --output-on-failure || rc=$$?; \
		bash scripts/test-summary.sh $(BUILD); exit $$rc

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
		-DPOSTERN_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
	@rm -rf $(BUILD_ASAN)/test-summary
	@rc=0; ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(BUILD_ASAN) --output-on-failure || rc=$$?; \
		bash scripts/test-summary.sh $(BUILD_ASAN); exit $$rc

fuzz: deps
	bash fuzz/build.sh

# postern (Release) side by side with a private Postfix + Dovecot on
# loopback; writes bench/RESULTS.md. Options: BENCH_ARGS="--runs 5 ...".
bench: deps
	@bash bench/deps.sh
	@cmake -S . -B $(BUILD_BENCH) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_BENCH) -j $(JOBS) --target postern
	@$(MAKE) -C bench OUT=$(abspath $(BUILD_BENCH))
	/usr/bin/python3 bench/bench.py --postern $(BUILD_BENCH)/postern \
		--bin-dir $(BUILD_BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_BENCH) build-fuzz
