#!/bin/bash
# Builds Dovecot's imaptest (github.com/dovecot/imaptest, main branch) in
# DIR against Debian 12's dovecot-dev (Dovecot 2.3.19) for local runs
# against postern (tests/IMAPTEST.md). imaptest's main branch follows the
# Dovecot 2.4 API; the edits below put back the 2.3 calls it needs. The
# profile mode and ssl_ca_file are left unusable; test scripts and the
# benchmark mode work. Never called by make check; imaptest is not
# vendored into this repository.
#
#   apt-get install -y dovecot-dev autoconf automake libtool pkg-config
#   git clone <imaptest> /tmp/imaptest-src
#   bench/imaptest-build.sh /tmp/imaptest-src
#   -> /tmp/imaptest-src/src/imaptest (run with LD_LIBRARY_PATH=/usr/lib/dovecot)
set -euo pipefail
dir=${1:?usage: $0 IMAPTEST_SOURCE_DIR}
cd "$dir"

if ! grep -q compat23.h src/test-parser.c; then
	cat > src/compat23.h <<'EOF'
/* Local shims: imaptest's main branch against Dovecot 2.3 (postern's
   bench/imaptest-build.sh). */
#ifndef COMPAT23_H
#define COMPAT23_H
#include "lib.h"
#include "strfuncs.h"
#include "settings-parser.h"
#undef str_begins
static inline bool compat_str_begins(const char *s, const char *p,
				     const char **suffix_r)
{
	size_t n = strlen(p);
	if (strncmp(s, p, n) != 0)
		return FALSE;
	*suffix_r = s + n;
	return TRUE;
}
#define str_begins(s, p, r) compat_str_begins(s, p, r)
static inline bool compat_str_begins_icase(const char *s, const char *p,
					   const char **suffix_r)
{
	size_t n = strlen(p);
	if (strncasecmp(s, p, n) != 0)
		return FALSE;
	*suffix_r = s + n;
	return TRUE;
}
#define str_begins_icase(s, p, r) compat_str_begins_icase(s, p, r)
#define str_begins_with(s, p) (strncmp((s), (p), strlen(p)) == 0)
#define str_parse_get_interval(s, r, e) settings_get_time(s, r, e)
#define str_parse_get_interval_msecs(s, r, e) settings_get_time_msecs(s, r, e)
#endif
EOF
	sed -i 's/#include "str-parse.h"/#include "compat23.h"/' \
		src/profile-parse.c src/test-parser.c
	for f in $(grep -l 'str_begins\|str_parse_get' src/*.c); do
		grep -q compat23.h "$f" ||
			sed -i '0,/#include "lib.h"/s//#include "lib.h"\n#include "compat23.h"/' "$f"
	done
	sed -i 's/io_stream_create_ssl_client(ssl_ctx, conf.host, NULL, 0,/io_stream_create_ssl_client(ssl_ctx, conf.host, NULL,/' src/client.c
	sed -i 's/imap_parser_create(\(.*\));/imap_parser_create(\1, NULL);/' \
		src/commands.c src/imap-client.c src/test-parser.c
	sed -i 's/imap_append_astring(\(.*\), 0);/imap_append_astring(\1);/' src/profile.c
	sed -i 's/imap_append_string(dest, src, 0);/imap_append_string(dest, src);/' src/test-exec.c
	sed -i 's/^\t\.name = "profile_client",$//; s/^\t\.name = "profile_user",$//' src/profile-parse.c
	sed -i 's/settings_parser_get_set(/settings_parser_get(/; s/settings_parser_unref(/settings_parser_deinit(/' src/profile-parse.c
	python3 - <<'EOF'
import re
def edit(path, pairs):
    s = open(path).read()
    for old, new in pairs:
        if old not in s:
            raise SystemExit("%s: expected text not found: %r" % (path, old[:60]))
        s = s.replace(old, new)
    open(path, "w").write(s)

edit("src/profile.c", [(
    '''	const struct var_expand_params params = {
		.table = (const struct var_expand_table[]) {
			{ .key = "username_idx", .value = num, },
			VAR_EXPAND_TABLE_END
		},
		.providers = NULL,
	};''',
    '''	const struct var_expand_table table[] = {
		{ '\\0', num, "username_idx" },
		{ '\\0', NULL, NULL }
	};'''), (
    '''user_profile->username_format,
			       &params, &error)''',
    '''user_profile->username_format,
			       table, &error)''')])
edit("src/user.c", [(
    '''		const struct var_expand_params params = {
		       .table = (const struct var_expand_table[]) {
				{ .key = "client_idx", .value = dec2str(client->idx) },
				VAR_EXPAND_TABLE_END
			},
			.providers = NULL,
		};''',
    '''		const struct var_expand_table table[] = {
			{ '\\0', dec2str(client->idx), "client_idx" },
			{ '\\0', NULL, NULL }
		};'''), (
    'var_expand(str, conf.mailbox, &params, &error)',
    'var_expand(str, conf.mailbox, table, &error)')])
s = open("src/imaptest.c").read()
a = s.index('\t\t\tconst char *output, *error;\n\t\t\tif (settings_parse_read_file')
b = s.index('\t\t\tconf.ssl_set.skip_crl_check = TRUE;')
s = s[:a] + '\t\t\ti_fatal("ssl_ca_file: not in this Dovecot 2.3 build");\n' + s[b:]
open("src/imaptest.c", "w").write(s)
s = open("src/Makefile.am").read()
s = s.replace("-DSTATIC_OPENSSL=1", "")
s = re.sub(r"\t\$\(LIBDOVECOT_OPENSSL\) \\\n", "", s)
s = re.sub(r" \\\n\t\$\(LIBDOVECOT_OPENSSL_DEPS\)\n", "\n", s)
open("src/Makefile.am", "w").write(s)
EOF
fi
./autogen.sh >/dev/null
./configure --with-dovecot=/usr/lib/dovecot >/dev/null
nice make -j2 >/dev/null
echo "built $dir/src/imaptest (run with LD_LIBRARY_PATH=/usr/lib/dovecot)"
