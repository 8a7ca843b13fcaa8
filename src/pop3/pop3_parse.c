/*
 * pop3_parse: POP3 command lines (RFC 1939 §3, RFC 2449 §4).
 */
#include "pop3/pop3_int.h"

#include <string.h>

int
pop3_line_parse(const char *line, size_t len, struct pop3_line *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	while (n < len && n <= POP3_KEYWORD_MAX &&
	    ((line[n] >= 'A' && line[n] <= 'Z') ||
	    (line[n] >= 'a' && line[n] <= 'z')))
		n++;
	if (n == 0 || n > POP3_KEYWORD_MAX || (n < len && line[n] != ' '))
		return -1;
	for (size_t i = 0; i < n; i++)
		out->keyword[i] = (char)(line[i] & ~0x20);
	if (n < len) {
		out->arg = line + n + 1;
		out->arg_len = len - n - 1;
	}
	return 0;
}
