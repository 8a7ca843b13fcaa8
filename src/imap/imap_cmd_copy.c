/* imap_cmd_copy: not written yet; answers BAD. */
#include "imap/imap_int.h"

void
imap_cmd_copy(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	imap_done(s, "BAD", "Command not implemented yet");
}

void
imap_cmd_expunge(struct imap_session *s, const struct imap_cmd *cmd)
{
	(void)cmd;
	imap_done(s, "BAD", "Command not implemented yet");
}

