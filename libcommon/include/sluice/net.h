/* Small address helpers shared by every listener and client. */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stddef.h>

/* Splits "host:port", "[v6]:port" or ":port" (host "0.0.0.0") into <host>
 * (<hostlen> bytes) and *<port>. Returns 0, or -1 if malformed or the port is
 * outside [0, 65535]. */
int net_split_hostport(const char *addr, char *host, size_t hostlen, int *port);

/* The local port a socket is bound to, or 0. */
int net_local_port(int fd);

#endif
