/*
 * migrate: copying an account from another IMAP or POP3 server into the
 * store (postern migrate, issue 23). A blocking client (sockets with
 * timeouts, TLS through src/net) on the caller's thread; what was copied
 * is remembered in the store's migration map, so that a run can be
 * repeated until the cut-over and copies only what changed.
 */
#ifndef POSTERN_MIGRATE_H
#define POSTERN_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#endif
