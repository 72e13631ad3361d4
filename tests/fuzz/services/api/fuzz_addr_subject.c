/* libFuzzer: the subject a client address is throttled as
 * (throttle_addr_subject). The address comes from the connection's peer or,
 * with trust-proxy, from X-Forwarded-For. Whatever the text and the room:
 * <out> is terminated within it; an address gives a canonical subject that
 * fits, names itself when given again and makes a Redis key; anything else
 * is the text as given, cut to fit. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/throttle.h"
#include "../../../../services/api/throttle_redis.h"

/* <s> of <len> bytes is terminated within them. */
static void check_terminated(const char *s, size_t len)
{
    if (memchr(s, '\0', len) == NULL)
        __builtin_trap();
}

/* A parsed subject: an IPv4 address, or an IPv6 /64 with a zero interface
 * identifier, in the form inet_ntop writes. */
static void check_canonical(const char *subject)
{
    char again[THROTTLE_SUBJECT_MAX], addr[THROTTLE_SUBJECT_MAX];
    size_t n = strlen(subject);
    if (n + 1 >= THROTTLE_SUBJECT_MAX)
        __builtin_trap();   /* may have been cut */
    memcpy(addr, subject, n + 1);
    bool v6 = n > 3 && strcmp(subject + n - 3, "/64") == 0;
    if (v6)
        addr[n - 3] = '\0';
    struct in6_addr a6;
    if (v6 ? inet_pton(AF_INET6, addr, &a6) != 1 ||
                 memcmp(&a6.s6_addr[8], "\0\0\0\0\0\0\0\0", 8) != 0
           : inet_pton(AF_INET, addr, &a6) != 1)
        __builtin_trap();
    if (!throttle_addr_subject(addr, again, sizeof(again)) || strcmp(again, subject) != 0)
        __builtin_trap();   /* not stable */
    char key[THROTTLE_REDIS_KEY_MAX];
    if (throttle_redis_key(key, sizeof(key), THROTTLE_REDIS_ADDR, subject) == -1)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    char out[THROTTLE_SUBJECT_MAX], small[8];
    bool parsed = throttle_addr_subject(s, out, sizeof(out));
    check_terminated(out, sizeof(out));
    if (parsed) {
        check_canonical(out);
    } else if (strncmp(out, s, sizeof(out) - 1) != 0) {
        __builtin_trap();   /* not the text as given */
    }
    /* little room: the same verdict, the same text cut shorter */
    if (throttle_addr_subject(s, small, sizeof(small)) != parsed)
        __builtin_trap();
    check_terminated(small, sizeof(small));
    if (strncmp(small, out, sizeof(small) - 1) != 0)
        __builtin_trap();
    free(s);
    return 0;
}
