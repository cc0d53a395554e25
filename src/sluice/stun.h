/* SPDX-License-Identifier: MIT */
/* sluice STUN codec (RFC 8489, RFC 5389 compatible): a zero-copy message
 * view with validation, typed attribute access, a writer into caller
 * buffers, and MESSAGE-INTEGRITY(-SHA256)/FINGERPRINT with cached keys. */
#ifndef SLUICE_STUN_H
#define SLUICE_STUN_H

#include "sluice/addr.h"
#include "sluice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_STUN_MAGIC_COOKIE 0x2112A442u
#define SLUICE_STUN_HEADER_LEN 20
#define SLUICE_STUN_TXID_LEN 12
/* Largest message the codec accepts: header + 16-bit attribute length. */
#define SLUICE_STUN_MAX_MSG_LEN (SLUICE_STUN_HEADER_LEN + 65532)

/* Methods (RFC 8489 §18.2, RFC 8656 §17, RFC 6062 §6.1). */
enum {
    SLUICE_STUN_BINDING = 0x001,
    SLUICE_STUN_ALLOCATE = 0x003,
    SLUICE_STUN_REFRESH = 0x004,
    SLUICE_STUN_SEND = 0x006,
    SLUICE_STUN_DATA = 0x007,
    SLUICE_STUN_CREATE_PERMISSION = 0x008,
    SLUICE_STUN_CHANNEL_BIND = 0x009,
    SLUICE_STUN_CONNECT = 0x00A,
    SLUICE_STUN_CONNECTION_BIND = 0x00B,
    SLUICE_STUN_CONNECTION_ATTEMPT = 0x00C,
};

/* Classes (RFC 8489 §5). */
typedef enum {
    SLUICE_STUN_REQUEST = 0,
    SLUICE_STUN_INDICATION = 1,
    SLUICE_STUN_SUCCESS = 2,
    SLUICE_STUN_ERROR = 3,
} sluice_stun_class;

/* Attribute types. */
enum {
    /* RFC 8489 §18.3 */
    SLUICE_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
    SLUICE_STUN_ATTR_CHANGE_REQUEST = 0x0003, /* RFC 5780 */
    SLUICE_STUN_ATTR_USERNAME = 0x0006,
    SLUICE_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
    SLUICE_STUN_ATTR_ERROR_CODE = 0x0009,
    SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
    SLUICE_STUN_ATTR_CHANNEL_NUMBER = 0x000C,     /* RFC 8656 */
    SLUICE_STUN_ATTR_LIFETIME = 0x000D,           /* RFC 8656 */
    SLUICE_STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,   /* RFC 8656 */
    SLUICE_STUN_ATTR_DATA = 0x0013,               /* RFC 8656 */
    SLUICE_STUN_ATTR_REALM = 0x0014,
    SLUICE_STUN_ATTR_NONCE = 0x0015,
    SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,/* RFC 8656 */
    SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017, /* RFC 8656 */
    SLUICE_STUN_ATTR_EVEN_PORT = 0x0018,          /* RFC 8656 */
    SLUICE_STUN_ATTR_REQUESTED_TRANSPORT = 0x0019,/* RFC 8656 */
    SLUICE_STUN_ATTR_DONT_FRAGMENT = 0x001A,      /* RFC 8656 */
    SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    SLUICE_STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,
    SLUICE_STUN_ATTR_USERHASH = 0x001E,
    SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
    SLUICE_STUN_ATTR_RESERVATION_TOKEN = 0x0022,  /* RFC 8656 */
    SLUICE_STUN_ATTR_PRIORITY = 0x0024,           /* RFC 8445 */
    SLUICE_STUN_ATTR_USE_CANDIDATE = 0x0025,      /* RFC 8445 */
    SLUICE_STUN_ATTR_PADDING = 0x0026,            /* RFC 5780 */
    SLUICE_STUN_ATTR_RESPONSE_PORT = 0x0027,      /* RFC 5780 */
    SLUICE_STUN_ATTR_CONNECTION_ID = 0x002A,      /* RFC 6062 */
    /* comprehension-optional */
    SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000, /* RFC 8656 */
    SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE = 0x8001, /* RFC 8656 */
    SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002,
    SLUICE_STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,
    SLUICE_STUN_ATTR_ICMP = 0x8004,               /* RFC 8656 */
    SLUICE_STUN_ATTR_SOFTWARE = 0x8022,
    SLUICE_STUN_ATTR_ALTERNATE_SERVER = 0x8023,
    SLUICE_STUN_ATTR_CACHE_TIMEOUT = 0x8027,      /* RFC 5780 */
    SLUICE_STUN_ATTR_FINGERPRINT = 0x8028,
    SLUICE_STUN_ATTR_ICE_CONTROLLED = 0x8029,     /* RFC 8445 */
    SLUICE_STUN_ATTR_ICE_CONTROLLING = 0x802A,    /* RFC 8445 */
    SLUICE_STUN_ATTR_RESPONSE_ORIGIN = 0x802B,    /* RFC 5780 */
    SLUICE_STUN_ATTR_OTHER_ADDRESS = 0x802C,      /* RFC 5780 */
};

/* Error codes on the wire (RFC 8489 §14.8, RFC 8656 §18, RFC 8445 §7.3.1.1). */
enum {
    SLUICE_STUN_ERR_TRY_ALTERNATE = 300,
    SLUICE_STUN_ERR_BAD_REQUEST = 400,
    SLUICE_STUN_ERR_UNAUTHORIZED = 401,
    SLUICE_STUN_ERR_FORBIDDEN = 403,
    SLUICE_STUN_ERR_MOBILITY_FORBIDDEN = 405,
    SLUICE_STUN_ERR_UNKNOWN_ATTRIBUTE = 420,
    SLUICE_STUN_ERR_ALLOCATION_MISMATCH = 437,
    SLUICE_STUN_ERR_STALE_NONCE = 438,
    SLUICE_STUN_ERR_ADDRESS_FAMILY = 440,
    SLUICE_STUN_ERR_WRONG_CREDENTIALS = 441,
    SLUICE_STUN_ERR_UNSUPPORTED_TRANSPORT = 442,
    SLUICE_STUN_ERR_PEER_ADDRESS_FAMILY = 443,
    SLUICE_STUN_ERR_CONNECTION_EXISTS = 446,
    SLUICE_STUN_ERR_CONNECTION_TIMEOUT = 447,
    SLUICE_STUN_ERR_ALLOCATION_QUOTA = 486,
    SLUICE_STUN_ERR_ROLE_CONFLICT = 487,
    SLUICE_STUN_ERR_SERVER_ERROR = 500,
    SLUICE_STUN_ERR_INSUFFICIENT_CAPACITY = 508,
};

/* PASSWORD-ALGORITHM values (RFC 8489 §18.5). */
enum {
    SLUICE_STUN_PWALG_MD5 = 0x0001,
    SLUICE_STUN_PWALG_SHA256 = 0x0002,
};

/* Security feature bits in a nonce cookie (RFC 8489 §9.2, §18.1); bit 0 of
 * the 24-bit set is its most significant bit. */
#define SLUICE_STUN_NONCE_COOKIE "obMatJos2"
#define SLUICE_STUN_NONCE_COOKIE_LEN 13 /* "obMatJos2" + 4 base64 characters */
enum {
    SLUICE_STUN_FEATURE_PASSWORD_ALGORITHMS = 1u << 23,
    SLUICE_STUN_FEATURE_USERNAME_ANONYMITY = 1u << 22,
};

/* REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY values (RFC 8656 §18.8). */
enum {
    SLUICE_STUN_FAMILY_IPV4 = 0x01,
    SLUICE_STUN_FAMILY_IPV6 = 0x02,
};

/* Limits on variable-length attributes (RFC 8489 §14). */
#define SLUICE_STUN_MAX_USERNAME 513 /* bytes, "MUST contain a UTF-8 string of less than 513 bytes" */
#define SLUICE_STUN_MAX_TEXT 763     /* REALM, NONCE, SOFTWARE, reason: 127 chars, when decoding */
#define SLUICE_STUN_MAX_TEXT_ENCODE 509 /* ... and when encoding (RFC 8489 §14.8-§14.10, §14.14) */
#define SLUICE_STUN_MAX_UNKNOWN 16   /* unknown comprehension-required types reported */

static inline uint16_t sluice_stun_type(uint16_t method, sluice_stun_class cls)
{
    /* RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0 */
    return (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
                      (((unsigned)cls & 1u) << 4) | (((unsigned)cls & 2u) << 7));
}
static inline uint16_t sluice_stun_type_method(uint16_t type)
{
    return (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
static inline sluice_stun_class sluice_stun_type_class(uint16_t type)
{
    return (sluice_stun_class)(((type >> 4) & 1u) | ((type >> 7) & 2u));
}

/* ------------------------------------------------------------------------ */
/* Parsing */

/* A validated view of a STUN message inside the caller's buffer. Valid only
 * as long as that buffer is; the view never owns or copies bytes. */
typedef struct sluice_stun_msg {
    const uint8_t *data;
    size_t len;         /* 20 + message length */
    uint16_t type;      /* raw message type */
    uint16_t method;
    sluice_stun_class cls;
    /* Offsets (from data) of attribute headers, 0 when absent. */
    uint32_t integrity_off;    /* MESSAGE-INTEGRITY */
    uint32_t integrity256_off; /* MESSAGE-INTEGRITY-SHA256 */
    uint32_t fingerprint_off;  /* FINGERPRINT (already verified by the parser) */
    /* End of the attributes that count: attributes after MESSAGE-INTEGRITY
     * other than MESSAGE-INTEGRITY-SHA256/FINGERPRINT are ignored
     * (RFC 8489 §14.5), so lookups stop here. */
    uint32_t attrs_end;
    /* Unknown comprehension-required attributes (type < 0x8000) in order of
     * appearance, for a 420 response (RFC 8489 §6.3.1, §14.9). n_unknown
     * counts them all; at most SLUICE_STUN_MAX_UNKNOWN are listed. */
    uint16_t n_unknown;
    uint16_t unknown[SLUICE_STUN_MAX_UNKNOWN];
} sluice_stun_msg;

/* Quick test (first byte, cookie, length) for demultiplexing (RFC 7983):
 * true if data may be a STUN message. */
SLUICE_API bool sluice_stun_is_stun(const uint8_t *data, size_t len);

/* For stream transports: how long the STUN message starting at data is.
 * Returns the total length (>= 20), 0 when fewer than 20 bytes are
 * available, or SLUICE_ERR_NOT_STUN / SLUICE_ERR_MALFORMED. */
SLUICE_API int sluice_stun_frame_length(const uint8_t *data, size_t len);

/* Parse and validate one datagram: header bits, magic cookie, length (a
 * multiple of 4, equal to len - 20), every attribute inside the message,
 * MESSAGE-INTEGRITY/-SHA256 sizes and order, FINGERPRINT last and correct.
 * Never allocates, never reads outside data[0..len).
 * Returns 0, SLUICE_ERR_TRUNCATED (fewer bytes than the header or an
 * attribute says), SLUICE_ERR_NOT_STUN (top bits or cookie),
 * SLUICE_ERR_MALFORMED, or SLUICE_ERR_FINGERPRINT. */
SLUICE_API int sluice_stun_parse(sluice_stun_msg *m, const uint8_t *data, size_t len);

static inline const uint8_t *sluice_stun_txid(const sluice_stun_msg *m)
{
    return m->data + 8;
}

/* One attribute: type, value length (without padding) and value view. */
typedef struct sluice_stun_attr {
    uint16_t type;
    uint16_t len;
    const uint8_t *value;
} sluice_stun_attr;

/* Iteration over the attributes that count (see attrs_end), in order,
 * including duplicates. */
typedef struct sluice_stun_attr_iter {
    const sluice_stun_msg *m;
    uint32_t off;
} sluice_stun_attr_iter;
SLUICE_API void sluice_stun_attr_iter_init(sluice_stun_attr_iter *it, const sluice_stun_msg *m);
SLUICE_API bool sluice_stun_attr_next(sluice_stun_attr_iter *it, sluice_stun_attr *a);

/* First attribute of a type (RFC 8489 §14: later duplicates are ignored).
 * Returns 0 or SLUICE_ERR_NOT_FOUND. */
SLUICE_API int sluice_stun_find(const sluice_stun_msg *m, uint16_t type, sluice_stun_attr *a);
SLUICE_API bool sluice_stun_has(const sluice_stun_msg *m, uint16_t type);

/* Typed getters. Each returns 0, SLUICE_ERR_NOT_FOUND when the attribute
 * is absent, or SLUICE_ERR_MALFORMED when its value breaks its format. */

/* MAPPED-ADDRESS, ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS. */
SLUICE_API int sluice_stun_get_address(const sluice_stun_msg *m, uint16_t type, sluice_addr *out);
/* XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS. */
SLUICE_API int sluice_stun_get_xor_address(const sluice_stun_msg *m, uint16_t type,
                                           sluice_addr *out);
/* Decoders for one attribute found by iteration (several XOR-PEER-ADDRESS,
 * two XOR-RELAYED-ADDRESS in a dual allocation). */
SLUICE_API int sluice_stun_decode_address(const sluice_stun_attr *a, sluice_addr *out);
SLUICE_API int sluice_stun_decode_xor_address(const sluice_stun_msg *m, const sluice_stun_attr *a,
                                              sluice_addr *out);

/* 32-bit values: PRIORITY, LIFETIME, CHANGE-REQUEST, CACHE-TIMEOUT,
 * CONNECTION-ID (value must be exactly 4 bytes). */
SLUICE_API int sluice_stun_get_u32(const sluice_stun_msg *m, uint16_t type, uint32_t *out);
/* 64-bit values: ICE-CONTROLLING, ICE-CONTROLLED, RESERVATION-TOKEN. */
SLUICE_API int sluice_stun_get_u64(const sluice_stun_msg *m, uint16_t type, uint64_t *out);
/* Byte strings: USERNAME, USERHASH (32), REALM, NONCE, SOFTWARE, DATA,
 * ALTERNATE-DOMAIN, PADDING. Length limits of RFC 8489 §14 are checked. */
SLUICE_API int sluice_stun_get_bytes(const sluice_stun_msg *m, uint16_t type,
                                     const uint8_t **value, size_t *len);
/* ERROR-CODE: code 300..699; reason is a view (not NUL-terminated). */
SLUICE_API int sluice_stun_get_error_code(const sluice_stun_msg *m, int *code,
                                          const char **reason, size_t *reason_len);
/* UNKNOWN-ATTRIBUTES: writes up to max types, returns the total count. */
SLUICE_API int sluice_stun_get_unknown_attributes(const sluice_stun_msg *m, uint16_t *types,
                                                  size_t max);
/* CHANNEL-NUMBER (RFC 8656 §14.1): the 16-bit number; RFFU ignored. */
SLUICE_API int sluice_stun_get_channel_number(const sluice_stun_msg *m, uint16_t *channel);
/* REQUESTED-TRANSPORT: IANA protocol number (17 UDP, 6 TCP). */
SLUICE_API int sluice_stun_get_requested_transport(const sluice_stun_msg *m, uint8_t *protocol);
/* REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: SLUICE_STUN_FAMILY_*. */
SLUICE_API int sluice_stun_get_address_family(const sluice_stun_msg *m, uint16_t type,
                                              uint8_t *family);
/* ADDRESS-ERROR-CODE (RFC 8656 §18.12). */
SLUICE_API int sluice_stun_get_address_error_code(const sluice_stun_msg *m, uint8_t *family,
                                                  int *code, const char **reason,
                                                  size_t *reason_len);
/* EVEN-PORT: *reserve is the R bit. */
SLUICE_API int sluice_stun_get_even_port(const sluice_stun_msg *m, bool *reserve);
/* ICMP (RFC 8656 §18.13). */
SLUICE_API int sluice_stun_get_icmp(const sluice_stun_msg *m, uint8_t *icmp_type,
                                    uint8_t *icmp_code, uint32_t *error_data);
/* PASSWORD-ALGORITHM: the algorithm number; params view may be empty. */
SLUICE_API int sluice_stun_get_password_algorithm(const sluice_stun_msg *m, uint16_t *alg);
/* PASSWORD-ALGORITHMS: up to max algorithm numbers, returns the count. */
SLUICE_API int sluice_stun_get_password_algorithms(const sluice_stun_msg *m, uint16_t *algs,
                                                   size_t max);

/* Nonce cookie (RFC 8489 §9.2): if nonce starts with "obMatJos2" and four
 * base64 characters, *features gets the 24-bit set and true is returned. */
SLUICE_API bool sluice_stun_nonce_features(const uint8_t *nonce, size_t len, uint32_t *features);
/* Write "obMatJos2" + base64(features) (13 bytes) to out[13]. */
SLUICE_API void sluice_stun_nonce_cookie(uint32_t features, char out[SLUICE_STUN_NONCE_COOKIE_LEN]);

/* ------------------------------------------------------------------------ */
/* Keys and integrity */

/* An HMAC key with its inner/outer SHA-1 and SHA-256 states precomputed, so
 * checking or signing many messages with one credential never re-keys. A
 * plain value (no pointers, no heap): copy it freely. */
typedef struct sluice_stun_key {
    _Alignas(16) uint8_t opaque[464];
} sluice_stun_key;

/* Short-term credential (RFC 8489 §9.1.1): key = password. Passwords are
 * taken as already-prepared UTF-8 (OpaqueString is the caller's job).
 * Returns 0, SLUICE_ERR_INVALID or SLUICE_ERR_CRYPTO. */
SLUICE_API int sluice_stun_key_short_term(sluice_stun_key *key, const char *password, size_t len);
/* Long-term credential (RFC 8489 §9.2.2): key = MD5 or SHA-256 of
 * "username:realm:password" per alg (SLUICE_STUN_PWALG_*). */
SLUICE_API int sluice_stun_key_long_term(sluice_stun_key *key, uint16_t alg, const char *username,
                                         size_t ulen, const char *realm, size_t rlen,
                                         const char *password, size_t plen);
/* An HMAC key given directly (e.g. derived elsewhere). */
SLUICE_API int sluice_stun_key_raw(sluice_stun_key *key, const uint8_t *k, size_t len);
/* Wipe a key. */
SLUICE_API void sluice_stun_key_clear(sluice_stun_key *key);

/* USERHASH = SHA-256(username ":" realm) (RFC 8489 §14.4). */
SLUICE_API int sluice_stun_userhash(uint8_t out[32], const char *username, size_t ulen,
                                    const char *realm, size_t rlen);

/* Verify MESSAGE-INTEGRITY-SHA256 when present, else MESSAGE-INTEGRITY
 * (RFC 8489 §9.1.3, §9.2.4), in constant time. Returns 0,
 * SLUICE_ERR_NOT_FOUND (neither attribute), or SLUICE_ERR_INTEGRITY. */
SLUICE_API int sluice_stun_check_integrity(const sluice_stun_msg *m, const sluice_stun_key *key);
SLUICE_API int sluice_stun_check_integrity_sha1(const sluice_stun_msg *m,
                                                const sluice_stun_key *key);
SLUICE_API int sluice_stun_check_integrity_sha256(const sluice_stun_msg *m,
                                                  const sluice_stun_key *key);

/* CRC-32 (ISO-HDLC, as FINGERPRINT uses) of data; seed 0 to start. */
SLUICE_API uint32_t sluice_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Writing */

/* Encodes into a caller buffer. Errors are sticky: after the first failure
 * every call returns the same code and writes nothing, so a sequence of
 * puts can be checked once at the end. */
typedef struct sluice_stun_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
    uint8_t sealed; /* 1 after MESSAGE-INTEGRITY, 2 after -SHA256, 3 after FINGERPRINT */
} sluice_stun_writer;

/* Start a message. txid NULL: zeros (set it later with memcpy at buf + 8).
 * Returns 0 or SLUICE_ERR_NOSPACE/INVALID. */
SLUICE_API int sluice_stun_writer_init(sluice_stun_writer *w, uint8_t *buf, size_t cap,
                                       uint16_t type, const uint8_t txid[SLUICE_STUN_TXID_LEN]);
/* Start a message that copies type, transaction ID and all attributes that
 * count from a parsed message up to (not including) MESSAGE-INTEGRITY. */
SLUICE_API int sluice_stun_writer_init_copy(sluice_stun_writer *w, uint8_t *buf, size_t cap,
                                            const sluice_stun_msg *m);
/* Length so far, or the sticky error. */
static inline int sluice_stun_writer_result(const sluice_stun_writer *w)
{
    return w->err ? w->err : (int)w->len;
}

/* Any attribute (padding added). Returns 0 or the sticky error. Adding a
 * regular attribute after MESSAGE-INTEGRITY/FINGERPRINT is SLUICE_ERR_STATE. */
SLUICE_API int sluice_stun_put(sluice_stun_writer *w, uint16_t type, const void *value, size_t len);
SLUICE_API int sluice_stun_put_empty(sluice_stun_writer *w, uint16_t type);
SLUICE_API int sluice_stun_put_u32(sluice_stun_writer *w, uint16_t type, uint32_t v);
SLUICE_API int sluice_stun_put_u64(sluice_stun_writer *w, uint16_t type, uint64_t v);
SLUICE_API int sluice_stun_put_address(sluice_stun_writer *w, uint16_t type, const sluice_addr *a);
SLUICE_API int sluice_stun_put_xor_address(sluice_stun_writer *w, uint16_t type,
                                           const sluice_addr *a);
/* USERNAME (< 513 bytes), REALM/NONCE/SOFTWARE/ALTERNATE-DOMAIN (<= 509 bytes) are checked. */
SLUICE_API int sluice_stun_put_string(sluice_stun_writer *w, uint16_t type, const char *s,
                                      size_t len);
/* ERROR-CODE; reason NULL: the standard phrase for the code. */
SLUICE_API int sluice_stun_put_error_code(sluice_stun_writer *w, int code, const char *reason);
SLUICE_API int sluice_stun_put_unknown_attributes(sluice_stun_writer *w, const uint16_t *types,
                                                  size_t n);
SLUICE_API int sluice_stun_put_channel_number(sluice_stun_writer *w, uint16_t channel);
SLUICE_API int sluice_stun_put_requested_transport(sluice_stun_writer *w, uint8_t protocol);
SLUICE_API int sluice_stun_put_address_family(sluice_stun_writer *w, uint16_t type,
                                              uint8_t family);
SLUICE_API int sluice_stun_put_address_error_code(sluice_stun_writer *w, uint8_t family, int code,
                                                  const char *reason);
SLUICE_API int sluice_stun_put_even_port(sluice_stun_writer *w, bool reserve);
SLUICE_API int sluice_stun_put_icmp(sluice_stun_writer *w, uint8_t icmp_type, uint8_t icmp_code,
                                    uint32_t error_data);
SLUICE_API int sluice_stun_put_password_algorithm(sluice_stun_writer *w, uint16_t alg);
SLUICE_API int sluice_stun_put_password_algorithms(sluice_stun_writer *w, const uint16_t *algs,
                                                   size_t n);
/* MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5). */
SLUICE_API int sluice_stun_put_integrity(sluice_stun_writer *w, const sluice_stun_key *key);
/* MESSAGE-INTEGRITY-SHA256 (full 32 bytes, RFC 8489 §14.6). */
SLUICE_API int sluice_stun_put_integrity_sha256(sluice_stun_writer *w, const sluice_stun_key *key);
/* FINGERPRINT (RFC 8489 §14.7); must be last. */
SLUICE_API int sluice_stun_put_fingerprint(sluice_stun_writer *w);

/* ------------------------------------------------------------------------ */
/* Names */
SLUICE_API const char *sluice_stun_method_name(uint16_t method);
SLUICE_API const char *sluice_stun_class_name(sluice_stun_class cls);
SLUICE_API const char *sluice_stun_attr_name(uint16_t type);
/* Standard reason phrase for a wire error code ("Unauthorized", ...). */
SLUICE_API const char *sluice_stun_error_reason(int code);
/* True if this codec understands the attribute type. */
SLUICE_API bool sluice_stun_attr_known(uint16_t type);

#ifdef __cplusplus
}
#endif
#endif
