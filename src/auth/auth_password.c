/*
 * auth_password: crypt(3) hashes through libcrypt (yescrypt for new
 * passwords; SHA-512-crypt, SHA-256-crypt, bcrypt and yescrypt checked, so
 * that hashes from Dovecot or shadow files can be imported) and SCRAM
 * secrets (RFC 5803). Thread-safe: crypt_rn keeps its state on our stack.
 */
#include "auth/auth_int.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/util.h"


static bool
is_known_scheme(const char *hash)
{
	static const char *const prefixes[] = {
		"$y$", "$6$", "$5$", "$2b$", "$2y$", "$2a$",
	};

	for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
		if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	}
	return false;
}

char *
auth_password_hash(const char *password)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *hash = NULL;

	/* Count 0: libcrypt's default cost for yescrypt. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)) != NULL &&
	    crypt_rn(password, setting, cd, sizeof(*cd)) != NULL &&
	    cd->output[0] != '*')
		hash = xstrdup(cd->output);
	secret_wipe(cd, sizeof(*cd));
	free(cd);
	return hash;
}

bool
is_auth_password_ok(const char *password, const char *hash)
{
	struct crypt_data *cd;
	bool ok = false;

	if (hash == NULL || !is_known_scheme(hash))
		return false;
	cd = xcalloc(1, sizeof(*cd));
	if (crypt_rn(password, hash, cd, sizeof(*cd)) != NULL &&
	    cd->output[0] != '*')
		ok = is_equal_const_time(cd->output, strlen(cd->output), hash,
		    strlen(hash));
	secret_wipe(cd, sizeof(*cd));
	free(cd);
	return ok;
}

char *
auth_scram_secret(const char *password)
{
	unsigned char salt[AUTH_SCRAM_SALT_LEN], salted[AUTH_SHA256_LEN];
	unsigned char client_key[AUTH_SHA256_LEN], stored[AUTH_SHA256_LEN];
	unsigned char server_key[AUTH_SHA256_LEN];
	char *salt64, *stored64, *server64, *secret;

	auth_random(salt, sizeof(salt));
	/* RFC 5802 §3: SaltedPassword, ClientKey, StoredKey, ServerKey. */
	auth_pbkdf2_sha256(password, salt, sizeof(salt), AUTH_SCRAM_ITERATIONS,
	    salted);
	auth_hmac_sha256(salted, sizeof(salted), "Client Key", 10,
	    client_key);
	auth_sha256(client_key, sizeof(client_key), stored);
	auth_hmac_sha256(salted, sizeof(salted), "Server Key", 10,
	    server_key);
	salt64 = base64_encode(salt, sizeof(salt), false);
	stored64 = base64_encode(stored, sizeof(stored), false);
	server64 = base64_encode(server_key, sizeof(server_key), false);
	/* RFC 5803 §3. */
	secret = xasprintf("SCRAM-SHA-256$%u:%s$%s:%s", AUTH_SCRAM_ITERATIONS,
	    salt64, stored64, server64);
	secret_wipe(salted, sizeof(salted));
	secret_wipe(client_key, sizeof(client_key));
	free(salt64);
	free(stored64);
	free(server64);
	return secret;
}
