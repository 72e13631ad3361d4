/* Base64 without padding, in the standard alphabet (password hashes, PHC
 * strings) or the URL-safe one (JWT segments, stream keys, session ids).
 * Pure functions over bytes. */
#ifndef SLUICE_API_B64_H
#define SLUICE_API_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode <n> bytes, without the NUL. */
#define B64_ENCODED_LEN(n) (((n) * 4 + 2) / 3)

/* Encodes <len> bytes of <src> into <dst> (<dstlen> bytes, room for the NUL
 * included). Returns the length written, or -1 if <dst> is too small. */
int b64_encode(const uint8_t *src, size_t len, char *dst, size_t dstlen, bool url);

/* Decodes the <len> characters at <src> into <dst> (<dstlen> bytes). Refuses
 * padding, characters outside the alphabet, a length that no encoding has
 * (len % 4 == 1) and non-zero trailing bits, so every byte string has exactly
 * one accepted encoding. Returns the decoded length, or -1. */
int b64_decode(const char *src, size_t len, uint8_t *dst, size_t dstlen, bool url);

#endif
