/* Private to daemon.c and admin.c. */
#ifndef SLUICE_DAEMON_INT_H
#define SLUICE_DAEMON_INT_H

struct daemon;
struct http_server;

/* Hands the admin server to the daemon, which frees it in daemon_free(). */
void daemon_set_admin_(struct daemon *d, struct http_server *admin);

#endif
