/*
 * mutf7: modified UTF-7 (RFC 3501 §5.1.3), the mailbox name encoding of
 * IMAP4rev1 clients and of Dovecot's Maildir++ folder names on disk. The
 * store keeps names in UTF-8. Thread-safe; no state.
 */
#ifndef POSTERN_MUTF7_H
#define POSTERN_MUTF7_H

/* Return new strings, or NULL when the input is not valid. */
char *mutf7_encode(const char *utf8);
char *mutf7_decode(const char *mutf7);

#endif
