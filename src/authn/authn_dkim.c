/*
 * authn_dkim: DKIM verification (RFC 6376, RFC 8463 ed25519-sha256).
 */
#include "authn/authn_int.h"

const char *
authn_dkim_status_name(enum authn_dkim_status r)
{
	switch (r) {
	case AUTHN_DKIM_NONE:
		return "none";
	case AUTHN_DKIM_PASS:
		return "pass";
	case AUTHN_DKIM_FAIL:
		return "fail";
	case AUTHN_DKIM_NEUTRAL:
		return "neutral";
	case AUTHN_DKIM_POLICY:
		return "policy";
	case AUTHN_DKIM_TEMPERROR:
		return "temperror";
	case AUTHN_DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}
