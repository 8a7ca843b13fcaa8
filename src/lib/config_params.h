/*
 * config_params: every limit and timeout of postern, with its default and
 * the range a configuration may set. One place, so that the defaults, the
 * validation and etc/postern.conf.example cannot disagree.
 */
#ifndef POSTERN_CONFIG_PARAMS_H
#define POSTERN_CONFIG_PARAMS_H

/* X(section, key, field, default, min, max, kind) where kind is COUNT,
 * SIZE (bytes, suffixes k/M/G) or SECONDS (suffixes s/m/h/d). A '-' of
 * the file's section name is '_' here: mta_sts is [mta-sts]. */
#define CONFIG_PARAMS(X)						\
	X(limits, max_connections, max_connections, 1000, 1, 1000000, COUNT) \
	X(limits, max_connections_per_ip, max_connections_per_ip, 20, 1, \
	    100000, COUNT)						\
	X(limits, ipv6_prefix, ipv6_prefix, 64, 32, 128, COUNT)	\
	X(limits, line_length, line_length, 4096, 512, 1048576, SIZE)	\
	X(limits, message_size, message_size, 52428800, 1024,		\
	    2147483647, SIZE)						\
	X(limits, recipients, recipients, 100, 1, 100000, COUNT)	\
	X(limits, imap_literal_max, imap_literal_max, 52428800, 1024,	\
	    2147483647, SIZE)						\
	X(limits, imap_literal_max_preauth, imap_literal_max_preauth, 8192, \
	    256, 1048576, SIZE)						\
	X(limits, imap_literal_spool, imap_literal_spool, 1048576, 4096, \
	    2147483647, SIZE)						\
	X(limits, imap_metadata_size, imap_metadata_size, 65536, 1024, \
	    1048576, SIZE)						\
	X(limits, imap_metadata_entries, imap_metadata_entries, 1000, 1, \
	    1000000, COUNT)						\
	X(limits, imap_metadata_total, imap_metadata_total, 1048576, 1024, \
	    1073741824, SIZE)						\
	X(limits, imap_line_length, imap_line_length, 65536, 8192,	\
	    1048576, SIZE)						\
	X(limits, http_header_size, http_header_size, 8192, 1024, 65536, \
	    SIZE)							\
	X(limits, http_headers, http_headers, 64, 8, 1000, COUNT)	\
	X(limits, http_body_size, http_body_size, 65536, 1024, 1048576, SIZE) \
	X(limits, http_requests, http_requests, 100, 1, 100000, COUNT)	\
	X(timeouts, smtp, smtp_timeout, 300, 1, 86400, SECONDS)		\
	X(timeouts, imap, imap_timeout, 1800, 1, 86400, SECONDS)	\
	X(timeouts, pop3, pop3_timeout, 600, 1, 86400, SECONDS)	\
	X(timeouts, http, http_timeout, 30, 1, 3600, SECONDS)		\
	X(timeouts, http_request, http_request_timeout, 30, 1, 3600, SECONDS) \
	X(timeouts, tls_handshake, tls_handshake_timeout, 30, 1, 3600, SECONDS) \
	X(timeouts, prelogin, prelogin_timeout, 60, 1, 86400, SECONDS)	\
	X(timeouts, login_deadline, login_deadline, 300, 1, 86400, SECONDS) \
	X(timeouts, write_stall, write_stall_timeout, 300, 1, 86400, SECONDS) \
	X(timeouts, shutdown_grace, shutdown_grace, 10, 0, 3600, SECONDS) \
	X(auth, lockout_failures, lockout_failures, 10, 1, 1000, COUNT)	\
	X(auth, lockout_window, lockout_window, 900, 1, 86400, SECONDS)	\
	X(auth, lockout_duration, lockout_duration, 900, 1, 604800, SECONDS) \
	X(auth, lockout_networks, lockout_networks, 5, 1, 16, COUNT)	\
	X(auth, lockout_network_failures, lockout_network_failures, 100, 1, \
	    1000000, COUNT)						\
	X(auth, lockout_ipv4_prefix, lockout_ipv4_prefix, 24, 8, 32, COUNT) \
	X(auth, lockout_ipv6_prefix, lockout_ipv6_prefix, 64, 16, 128, COUNT) \
	X(auth, cache_ttl, auth_cache_ttl, 300, 0, 86400, SECONDS)	\
	X(auth, hash_threads, hash_threads, 2, 1, 64, COUNT)		\
	X(queue, concurrency, queue_concurrency, 20, 0, 1000, COUNT)	\
	X(queue, concurrency_per_domain, queue_concurrency_per_domain, 5, 1, \
	    1000, COUNT)						\
	X(queue, retry_first, queue_retry_first, 300, 1, 86400, SECONDS) \
	X(queue, retry_max, queue_retry_max, 14400, 1, 604800, SECONDS) \
	X(queue, lifetime, queue_lifetime, 432000, 60, 2592000, SECONDS) \
	X(queue, delay_warning, queue_delay_warning, 14400, 0, 2592000,	\
	    SECONDS)							\
	X(queue, poll_interval, queue_poll_interval, 5, 1, 3600, SECONDS) \
	X(queue, timeout, queue_timeout, 300, 1, 3600, SECONDS)	\
	X(queue, resolver_port, queue_resolver_port, 53, 1, 65535, COUNT) \
	X(queue, remote_port, queue_remote_port, 25, 1, 65535, COUNT)	\
	X(mta_sts, max_age, mta_sts_max_age, 604800, 60, 31557600,	\
	    SECONDS)							\
	X(acme, retry_first, acme_retry_first, 600, 1, 86400, SECONDS)	\
	X(acme, retry_max, acme_retry_max, 86400, 1, 604800, SECONDS)	\
	X(spf, threads, spf_threads, 4, 1, 64, COUNT)			\
	X(spf, timeout, spf_timeout, 20, 1, 300, SECONDS)		\
	X(dkim, timeout, dkim_timeout, 10, 1, 300, SECONDS)		\
	X(dmarc, timeout, dmarc_timeout, 20, 1, 300, SECONDS)

#endif
