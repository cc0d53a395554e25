/* SPDX-License-Identifier: MIT */
/* Coordinator frame codec (internal): the 12-byte header and every frame's
 * payload. Decoders return views into the caller's bytes and never
 * allocate; encoders write into caller buffers. docs/coord-protocol.md is
 * the specification. */
#ifndef SLUICE_COORD_FRAME_H
#define SLUICE_COORD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/coord.h"

#define COORD_HDR_LEN 12
/* Largest payload of any frame other than DATA and BCAST_DATA. */
#define COORD_MAX_CONTROL 2048
#define COORD_PING_LEN 8

enum coord_frame_type {
    CF_HELLO = 1,
    CF_WELCOME = 2,
    CF_ERROR = 3,
    CF_OPEN = 4,
    CF_ACCEPT = 5,
    CF_REFUSE = 6,
    CF_DATA = 7,
    CF_BCAST_DATA = 8,
    CF_CREDIT = 9,
    CF_LAG = 10,
    CF_CLOSE = 11,
    CF_RESET = 12,
    CF_PING = 13,
    CF_PONG = 14,
    CF_MAX = 14,
};

/* Attribute tags of OPEN and ACCEPT. */
enum coord_attr_tag {
    CA_FINGERPRINT = 1,   /* 32 bytes: SHA-256 of the other side's certificate */
    CA_TURN_USERNAME = 2, /* 1..255 bytes */
    CA_TURN_PASSWORD = 3, /* 1..255 bytes */
    CA_TURN_TTL = 4,      /* u32 seconds */
    CA_TURN_URI = 5,      /* 1..255 bytes, up to 4 times */
    CA_WAIT_MS = 6,       /* u32: how long a WAIT open may be held */
};

typedef struct coord_hdr {
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint32_t stream;
    uint32_t len;
} coord_hdr;

/* A length-prefixed string inside a frame (not NUL-terminated). */
typedef struct coord_str {
    const char *p;
    size_t len;
} coord_str;

typedef struct coord_hello {
    uint16_t version;
    coord_str name;
} coord_hello;

typedef struct coord_welcome {
    uint16_t version;
    uint32_t max_message;
    uint32_t window;
    uint32_t idle_timeout_ms;
} coord_welcome;

/* ERROR, REFUSE and RESET. */
typedef struct coord_error {
    uint16_t code;
    coord_str reason;
} coord_error;

typedef struct coord_attrs {
    const uint8_t *fingerprint; /* 32 bytes or NULL */
    coord_str turn_username, turn_password;
    uint32_t turn_ttl_s;
    bool has_turn_ttl;
    coord_str turn_uris[SLUICE_COORD_TURN_URIS_MAX];
    size_t n_turn_uris;
    uint32_t wait_ms;
    bool has_wait;
} coord_attrs;

typedef struct coord_open {
    uint8_t kind;
    uint8_t flags;
    coord_str name;  /* target / channel (client->coordinator); opener (coordinator->client) */
    coord_str label;
    coord_attrs attrs;
} coord_open;

typedef struct coord_bcast {
    coord_str sender;
    const uint8_t *data;
    size_t len;
} coord_bcast;

/* Header. parse: SLUICE_ERR_TRUNCATED under 12 bytes, else 0 (no rule
 * checked). check: the rules that do not depend on state — a known type,
 * zero flags and reserved bits, stream 0 exactly for the connection-level
 * frames, the payload limit of the type (DATA: max_message; BCAST_DATA:
 * 1 + 63 + max_message; others COORD_MAX_CONTROL). Returns 0 or
 * SLUICE_ERR_MALFORMED with *why set to a static explanation and *code to
 * the wire code (SLUICE_COORD_E_TOO_BIG for a message over the limit, else
 * SLUICE_COORD_E_PROTOCOL). */
int coord_hdr_parse(const uint8_t *p, size_t n, coord_hdr *h);
int coord_hdr_check(const coord_hdr *h, uint32_t max_message, const char **why, int *code);
void coord_hdr_write(uint8_t p[COORD_HDR_LEN], uint8_t type, uint32_t stream, uint32_t len);
/* Name of a frame type ("OPEN"), "?" when unknown. */
const char *coord_frame_name(uint8_t type);

/* Payload decoders: 0, SLUICE_ERR_TRUNCATED (the payload ends inside a
 * field) or SLUICE_ERR_MALFORMED (trailing bytes, bad values). String
 * syntax (names, labels) is checked by the caller, which knows which rule
 * applies. */
int coord_dec_hello(const uint8_t *p, size_t n, coord_hello *out);
int coord_dec_welcome(const uint8_t *p, size_t n, coord_welcome *out);
int coord_dec_error(const uint8_t *p, size_t n, coord_error *out);
int coord_dec_open(const uint8_t *p, size_t n, coord_open *out);
int coord_dec_accept(const uint8_t *p, size_t n, coord_attrs *out);
int coord_dec_bcast(const uint8_t *p, size_t n, coord_bcast *out);
/* ERROR/REFUSE/RESET with the reason copied as by coord_copy_reason. */
int coord_dec_error_text(const uint8_t *p, size_t n, int *code, char *reason, size_t cap);
/* CREDIT and LAG: a u32 of at least 1. */
int coord_dec_u32(const uint8_t *p, size_t n, uint32_t *out);

/* Payload encoders: the length written, or SLUICE_ERR_NOSPACE /
 * SLUICE_ERR_INVALID (a string too long for its field). */
int coord_enc_hello(uint8_t *p, size_t cap, const char *name);
int coord_enc_welcome(uint8_t *p, size_t cap, const coord_welcome *w);
int coord_enc_error(uint8_t *p, size_t cap, uint16_t code, const char *reason);
int coord_enc_open(uint8_t *p, size_t cap, uint8_t kind, uint8_t flags, const char *name,
                   const char *label, const coord_attrs *attrs);
int coord_enc_attrs(uint8_t *p, size_t cap, const coord_attrs *attrs);
int coord_enc_u32(uint8_t *p, size_t cap, uint32_t v);
/* BCAST_DATA's sender prefix (1 + sender length bytes). */
int coord_enc_bcast_prefix(uint8_t *p, size_t cap, const char *sender);

/* Syntax rules (docs/coord-protocol.md "Names"). */
bool coord_name_ok(const char *p, size_t len);
bool coord_channel_ok(const char *p, size_t len);
bool coord_label_ok(const char *p, size_t len);
/* Copy a reason into dst (cap >= 1) NUL-terminated, control characters
 * replaced with '?'. */
void coord_copy_reason(char *dst, size_t cap, const char *src, size_t len);

#endif
