/*
 * pop3: POP3 server sessions for the pop3 listeners (110 with STLS, 995
 * with implicit TLS). Sessions run on their connection's worker thread.
 */
#ifndef POSTERN_POP3_H
#define POSTERN_POP3_H

#include "net/net.h"

extern const struct net_session_ops pop3_session_ops;

#endif
