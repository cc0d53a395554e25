/* SPDX-License-Identifier: MIT */
/* Malformed and borderline STUN messages, one table row per case: the
 * message is built from the row, placed against a guard page, parsed, and
 * the expected parse result (and, for attribute-level faults, the expected
 * getter result) is checked. One TAP test point per row. */
#include <string.h>

#include "sluice/sluice.h"
#include "test.h"

static const char *ex_row = "";
#define EXERCISE_FAIL(what)                                                                        \
    do {                                                                                           \
        t_checks++;                                                                                \
        t_failures++;                                                                              \
        t_case_failed = 1;                                                                         \
        fprintf(stderr, "# %s: broken promise: %s\n", ex_row, what);                               \
    } while (0)

#include "guard.h"
#include "stun_exercise.h"

/* ------------------------------------------------------------------------ */
/* Row format */

enum kind { K_END = 0, K_ATTR, K_FP, K_FP_PLAIN, K_RAW, K_SEQ };

typedef struct aspec {
    enum kind kind;
    uint16_t type;
    int decl;        /* declared length; -1: the real value length */
    const char *hex; /* value (K_ATTR) or raw bytes (K_RAW), as hex */
    size_t fill;     /* K_ATTR: bytes of fill_byte after hex; K_SEQ: count */
    uint8_t fill_byte;
} aspec;

/* clang-format off */
#define HEX(t, h) {K_ATTR, (t), -1, (h), 0, 0}
#define LEN(t, d, h) {K_ATTR, (t), (d), (h), 0, 0}
#define FILL(t, n, b) {K_ATTR, (t), -1, "", (n), (b)}
#define HFILL(t, h, n, b) {K_ATTR, (t), -1, (h), (n), (b)}
#define FP_GOOD {K_FP, SLUICE_STUN_ATTR_FINGERPRINT, 4, NULL, 0, 0}
#define FP_NOXOR {K_FP_PLAIN, SLUICE_STUN_ATTR_FINGERPRINT, 4, NULL, 0, 0}
#define RAW(h) {K_RAW, 0, 0, (h), 0, 0}
/* n empty attributes of types base, base + 1, ... */
#define SEQ(base, n) {K_SEQ, (base), 0, "", (n), 0}
/* clang-format on */

#define MI FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY, 20, 0x5a)
#define MI256 FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 32, 0x5b)

enum check {
    C_NONE = 0,
    C_HAS_NOT,       /* sluice_stun_has(type) is false, find() NOT_FOUND */
    C_HAS,           /* sluice_stun_has(type) is true */
    C_XOR_ADDR,      /* get_xor_address(type) == want; on 0 formats as str */
    C_ADDR,          /* get_address(type) == want; on 0 formats as str */
    C_ERROR_CODE,    /* get_error_code == want; on 0 code == val */
    C_BYTES,         /* get_bytes(type) == want; on 0 length == val (and value starts with str) */
    C_U32,           /* get_u32(type) == want; on 0 value == val */
    C_U64,           /* get_u64(type) == want */
    C_CHANNEL,       /* get_channel_number == want; on 0 == val */
    C_TRANSPORT,     /* get_requested_transport == want; on 0 == val */
    C_EVEN_PORT,     /* get_even_port == want; on 0 reserve == val */
    C_PWALGS,        /* get_password_algorithms == want (count) */
    C_UNKNOWN_ATTRS, /* get_unknown_attributes == want (count) */
    /* integrity_off set == (val & 1), integrity256_off (val & 2), fingerprint_off (val & 4) */
    C_OFFSETS,
};

struct row {
    const char *name;
    uint16_t type;       /* message type; 0: Binding request 0x0001 */
    uint32_t cookie_xor; /* XOR-ed into the magic cookie */
    int len_adjust;      /* added to the header's length field */
    size_t trailing;     /* bytes appended after the message, not counted */
    aspec attrs[8];
    int want; /* sluice_stun_parse result */
    enum check chk;
    uint16_t chk_type;
    int chk_want;
    long long chk_val;
    const char *chk_str;
    bool chk_unknown; /* check m.n_unknown / m.unknown */
    int n_unknown;
    uint16_t unknown[4];
};

#define NOT_STUN SLUICE_ERR_NOT_STUN
#define TRUNC SLUICE_ERR_TRUNCATED
#define BAD SLUICE_ERR_MALFORMED
#define NOTFOUND SLUICE_ERR_NOT_FOUND

#define T_SOFTWARE SLUICE_STUN_ATTR_SOFTWARE
#define T_USERNAME SLUICE_STUN_ATTR_USERNAME
#define T_XMA SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS

/* XOR-MAPPED-ADDRESS 192.0.2.1:32853 as in RFC 5769 §2.2 (IPv4 XOR uses
 * the cookie only, RFC 8489 §14.2). */
#define XMA_V4 "0001a147e112a643"

/* clang-format off */
static const struct row rows[] = {
    /* ---- header (RFC 8489 §5, §6.3) ---- */
    {.name = "empty message (header only) is valid", .want = 0},
    {.name = "top bit set", .type = 0x8001, .want = NOT_STUN},
    {.name = "second bit set", .type = 0x4001, .want = NOT_STUN},
    {.name = "top two bits set", .type = 0xc001, .want = NOT_STUN},
    {.name = "magic cookie off by one bit", .cookie_xor = 0x00000001, .want = NOT_STUN},
    {.name = "magic cookie zero (RFC 3489 client)", .cookie_xor = 0x2112a442, .want = NOT_STUN},
    {.name = "magic cookie byte-swapped", .cookie_xor = 0x2112a442 ^ 0x42a41221, .want = NOT_STUN},
    {.name = "length 2 (not a multiple of 4)", .attrs = {RAW("abcd")}, .want = BAD},
    {.name = "length 6 (not a multiple of 4)", .attrs = {RAW("000600026162")}, .want = BAD},
    {.name = "length claims 4 more than present", .len_adjust = 4,
     .attrs = {HEX(T_SOFTWARE, "61626364")}, .want = TRUNC},
    {.name = "length claims 4 less than present", .len_adjust = -4,
     .attrs = {HEX(T_SOFTWARE, "61626364")}, .want = BAD},
    {.name = "4 trailing bytes after the message", .trailing = 4, .want = BAD},
    {.name = "1 trailing byte after the message", .trailing = 1,
     .attrs = {HEX(T_SOFTWARE, "61626364")}, .want = BAD},
    {.name = "indication class parses", .type = 0x0011, .want = 0},
    {.name = "error response class parses", .type = 0x0111, .want = 0},

    /* ---- attribute framing: the message length is honoured, an attribute
     * that runs past it is MALFORMED (RFC 8489 §14) ---- */
    {.name = "attribute value past message end", .attrs = {LEN(T_SOFTWARE, 8, "61626364")},
     .want = BAD},
    {.name = "attribute value 1 byte past message end", .attrs = {LEN(T_SOFTWARE, 5, "61626364")},
     .want = BAD},
    {.name = "attribute length 0xffff", .attrs = {LEN(T_SOFTWARE, 0xffff, "61626364")},
     .want = BAD},
    {.name = "second attribute past message end",
     .attrs = {HEX(T_SOFTWARE, "61626364"), LEN(T_USERNAME, 12, "6162636465666768")},
     .want = BAD},
    {.name = "zero-length attribute is valid", .attrs = {HEX(T_SOFTWARE, "")}, .want = 0,
     .chk = C_BYTES, .chk_type = T_SOFTWARE, .chk_want = 0, .chk_val = 0},
    {.name = "USE-CANDIDATE (empty) present",
     .attrs = {HEX(SLUICE_STUN_ATTR_USE_CANDIDATE, "")}, .want = 0, .chk = C_HAS,
     .chk_type = SLUICE_STUN_ATTR_USE_CANDIDATE},
    {.name = "non-zero padding is ignored", .attrs = {HEX(T_SOFTWARE, "61")},
     .want = 0, .chk = C_BYTES, .chk_type = T_SOFTWARE, .chk_want = 0, .chk_val = 1,
     .chk_str = "a"},
    {.name = "duplicate attribute: the first counts (RFC 8489 §14)",
     .attrs = {HEX(T_SOFTWARE, "6669727374"), HEX(T_SOFTWARE, "7365636f6e64")}, .want = 0,
     .chk = C_BYTES, .chk_type = T_SOFTWARE, .chk_want = 0, .chk_val = 5, .chk_str = "first"},

    /* ---- MESSAGE-INTEGRITY(-SHA256) sizes (RFC 8489 §14.5, §14.6) ---- */
    {.name = "MESSAGE-INTEGRITY length 20", .attrs = {MI}, .want = 0, .chk = C_OFFSETS,
     .chk_val = 1},
    {.name = "MESSAGE-INTEGRITY length 19",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY, 19, 0x5a)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY length 21",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY, 21, 0x5a)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY length 0",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY, 0, 0x5a)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY length 32",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY, 32, 0x5a)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY-SHA256 length 32", .attrs = {MI256}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 2},
    {.name = "MESSAGE-INTEGRITY-SHA256 length 16 (truncated, allowed)",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 16, 0x5b)}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 2},
    {.name = "MESSAGE-INTEGRITY-SHA256 length 12",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 12, 0x5b)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY-SHA256 length 18",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 18, 0x5b)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY-SHA256 length 36",
     .attrs = {FILL(SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 36, 0x5b)}, .want = BAD},

    /* ---- FINGERPRINT (RFC 8489 §14.7) ---- */
    {.name = "FINGERPRINT correct", .attrs = {HEX(T_SOFTWARE, "61626364"), FP_GOOD}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 4},
    {.name = "FINGERPRINT wrong value", .attrs = {HEX(SLUICE_STUN_ATTR_FINGERPRINT, "00000000")},
     .want = SLUICE_ERR_FINGERPRINT},
    {.name = "FINGERPRINT without the 0x5354554e XOR", .attrs = {FP_NOXOR},
     .want = SLUICE_ERR_FINGERPRINT},
    {.name = "FINGERPRINT not last", .attrs = {FP_GOOD, HEX(T_SOFTWARE, "61626364")},
     .want = BAD},
    {.name = "FINGERPRINT twice", .attrs = {FP_GOOD, FP_GOOD}, .want = BAD},
    {.name = "FINGERPRINT length 8",
     .attrs = {FILL(SLUICE_STUN_ATTR_FINGERPRINT, 8, 0x00)}, .want = BAD},
    {.name = "FINGERPRINT length 0",
     .attrs = {FILL(SLUICE_STUN_ATTR_FINGERPRINT, 0, 0x00)}, .want = BAD},
    {.name = "MESSAGE-INTEGRITY then FINGERPRINT", .attrs = {MI, FP_GOOD}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 1 | 4},
    {.name = "MESSAGE-INTEGRITY, -SHA256, FINGERPRINT", .attrs = {MI, MI256, FP_GOOD},
     .want = 0, .chk = C_OFFSETS, .chk_val = 1 | 2 | 4},

    /* ---- attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5,
     * §14.6), except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT ---- */
    {.name = "SOFTWARE after MESSAGE-INTEGRITY ignored", .attrs = {MI, HEX(T_SOFTWARE, "61")},
     .want = 0, .chk = C_HAS_NOT, .chk_type = T_SOFTWARE},
    {.name = "SOFTWARE after MESSAGE-INTEGRITY, then FINGERPRINT",
     .attrs = {MI, HEX(T_SOFTWARE, "61"), FP_GOOD}, .want = 0, .chk = C_HAS_NOT,
     .chk_type = T_SOFTWARE},
    {.name = "FINGERPRINT kept after an ignored attribute",
     .attrs = {MI, HEX(T_SOFTWARE, "61"), FP_GOOD}, .want = 0, .chk = C_OFFSETS,
     .chk_val = 1 | 4},
    {.name = "SOFTWARE after MESSAGE-INTEGRITY-SHA256 ignored",
     .attrs = {MI256, HEX(T_SOFTWARE, "61")}, .want = 0, .chk = C_HAS_NOT,
     .chk_type = T_SOFTWARE},
    {.name = "MESSAGE-INTEGRITY after -SHA256 ignored", .attrs = {MI256, MI}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 2},
    {.name = "second MESSAGE-INTEGRITY ignored", .attrs = {MI, MI}, .want = 0,
     .chk = C_OFFSETS, .chk_val = 1},
    {.name = "XOR-MAPPED-ADDRESS after MESSAGE-INTEGRITY ignored",
     .attrs = {MI, HEX(T_XMA, XMA_V4)}, .want = 0, .chk = C_XOR_ADDR, .chk_type = T_XMA,
     .chk_want = NOTFOUND},
    {.name = "USERNAME after MESSAGE-INTEGRITY does not replace the first",
     .attrs = {HEX(T_USERNAME, "616c696365"), MI, HEX(T_USERNAME, "6d616c6c6f7279")}, .want = 0,
     .chk = C_BYTES, .chk_type = T_USERNAME, .chk_want = 0, .chk_val = 5, .chk_str = "alice"},
    {.name = "unknown required attribute after MESSAGE-INTEGRITY not reported",
     .attrs = {MI, HEX(0x7ffe, "")}, .want = 0, .chk_unknown = true, .n_unknown = 0},

    /* ---- unknown comprehension-required attributes (RFC 8489 §6.3.1,
     * §14): reported in m.unknown, the parse succeeds ---- */
    {.name = "unknown required attributes reported in order",
     .attrs = {HEX(0x0002, ""), HEX(0x8fff, "00"), HEX(0x7fff, "0102"),
               HEX(SLUICE_STUN_ATTR_PRIORITY, "6e0001ff")},
     .want = 0, .chk_unknown = true, .n_unknown = 2, .unknown = {0x0002, 0x7fff}},
    {.name = "unknown optional attribute not reported", .attrs = {HEX(0xc001, "00000000")},
     .want = 0, .chk_unknown = true, .n_unknown = 0},
    {.name = "known attributes not reported",
     .attrs = {HEX(SLUICE_STUN_ATTR_PRIORITY, "6e0001ff"), HEX(T_XMA, XMA_V4),
               HEX(SLUICE_STUN_ATTR_USE_CANDIDATE, "")},
     .want = 0, .chk_unknown = true, .n_unknown = 0},
    {.name = "20 unknown required attributes: all counted, 16 listed",
     .attrs = {SEQ(0x7f00, 20)}, .want = 0, .chk_unknown = true, .n_unknown = 20,
     .unknown = {0x7f00, 0x7f01, 0x7f02, 0x7f03}},

    /* ---- (XOR-)MAPPED-ADDRESS (RFC 8489 §14.1, §14.2) ---- */
    {.name = "XOR-MAPPED-ADDRESS IPv4", .attrs = {HEX(T_XMA, XMA_V4)}, .want = 0,
     .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = 0, .chk_str = "192.0.2.1:32853"},
    {.name = "XOR-MAPPED-ADDRESS reserved byte set is ignored",
     .attrs = {HEX(T_XMA, "ff01a147e112a643")}, .want = 0, .chk = C_XOR_ADDR, .chk_type = T_XMA,
     .chk_want = 0, .chk_str = "192.0.2.1:32853"},
    {.name = "XOR-MAPPED-ADDRESS family 0x03", .attrs = {HEX(T_XMA, "0003a147e112a643")},
     .want = 0, .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS family 0x00", .attrs = {HEX(T_XMA, "0000a147e112a643")},
     .want = 0, .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS IPv4 with length 12",
     .attrs = {HEX(T_XMA, "0001a147e112a64300000000")}, .want = 0, .chk = C_XOR_ADDR,
     .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS IPv4 with length 20",
     .attrs = {HEX(T_XMA, "0001a147e112a643000000000000000000000000")}, .want = 0,
     .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS IPv6 with length 8", .attrs = {HEX(T_XMA, "0002a147e112a643")},
     .want = 0, .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS length 4", .attrs = {HEX(T_XMA, "0001a147")}, .want = 0,
     .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS length 0", .attrs = {HEX(T_XMA, "")}, .want = 0,
     .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = BAD},
    {.name = "XOR-MAPPED-ADDRESS absent", .attrs = {HEX(T_SOFTWARE, "61")}, .want = 0,
     .chk = C_XOR_ADDR, .chk_type = T_XMA, .chk_want = NOTFOUND},
    {.name = "MAPPED-ADDRESS IPv4",
     .attrs = {HEX(SLUICE_STUN_ATTR_MAPPED_ADDRESS, "000112340a000001")}, .want = 0,
     .chk = C_ADDR, .chk_type = SLUICE_STUN_ATTR_MAPPED_ADDRESS, .chk_want = 0,
     .chk_str = "10.0.0.1:4660"},
    {.name = "MAPPED-ADDRESS IPv6",
     .attrs = {HEX(SLUICE_STUN_ATTR_MAPPED_ADDRESS, "0002005020010db8000000000000000000000001")},
     .want = 0, .chk = C_ADDR, .chk_type = SLUICE_STUN_ATTR_MAPPED_ADDRESS, .chk_want = 0,
     .chk_str = "[2001:db8::1]:80"},
    {.name = "MAPPED-ADDRESS family 0x03",
     .attrs = {HEX(SLUICE_STUN_ATTR_MAPPED_ADDRESS, "000312340a000001")}, .want = 0,
     .chk = C_ADDR, .chk_type = SLUICE_STUN_ATTR_MAPPED_ADDRESS, .chk_want = BAD},
    {.name = "MAPPED-ADDRESS IPv4 with length 7",
     .attrs = {HEX(SLUICE_STUN_ATTR_MAPPED_ADDRESS, "000112340a0000")}, .want = 0,
     .chk = C_ADDR, .chk_type = SLUICE_STUN_ATTR_MAPPED_ADDRESS, .chk_want = BAD},
    {.name = "ALTERNATE-SERVER IPv6 with length 8",
     .attrs = {HEX(SLUICE_STUN_ATTR_ALTERNATE_SERVER, "000212340a000001")}, .want = 0,
     .chk = C_ADDR, .chk_type = SLUICE_STUN_ATTR_ALTERNATE_SERVER, .chk_want = BAD},

    /* ---- ERROR-CODE (RFC 8489 §14.8: class 3..6, number 0..99) ---- */
    {.name = "ERROR-CODE 401 Unauthorized", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000401" "556e617574686f72697a6564")},
     .want = 0, .chk = C_ERROR_CODE, .chk_want = 0, .chk_val = 401},
    {.name = "ERROR-CODE 300, empty reason", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000300")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = 0, .chk_val = 300},
    {.name = "ERROR-CODE 699", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000663")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = 0, .chk_val = 699},
    {.name = "ERROR-CODE class 7", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000714")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = BAD},
    {.name = "ERROR-CODE class 2", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000200")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = BAD},
    {.name = "ERROR-CODE number 100", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "00000464")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = BAD},
    {.name = "ERROR-CODE length 3", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_ERROR_CODE, "000004")}, .want = 0, .chk = C_ERROR_CODE,
     .chk_want = BAD},
    {.name = "ERROR-CODE reason of 763 bytes", .type = 0x0111,
     .attrs = {HFILL(SLUICE_STUN_ATTR_ERROR_CODE, "00000400", 763, 'x')}, .want = 0,
     .chk = C_ERROR_CODE, .chk_want = 0, .chk_val = 400},
    {.name = "ERROR-CODE reason of 764 bytes", .type = 0x0111,
     .attrs = {HFILL(SLUICE_STUN_ATTR_ERROR_CODE, "00000400", 764, 'x')}, .want = 0,
     .chk = C_ERROR_CODE, .chk_want = BAD},

    /* ---- length limits of text attributes (RFC 8489 §14.3, §14.4,
     * §14.9, §14.10, §14.14) ---- */
    {.name = "USERNAME of 512 bytes", .attrs = {FILL(T_USERNAME, 512, 'u')}, .want = 0,
     .chk = C_BYTES, .chk_type = T_USERNAME, .chk_want = 0, .chk_val = 512},
    {.name = "USERNAME of 513 bytes (must be less than 513)",
     .attrs = {FILL(T_USERNAME, 513, 'u')}, .want = 0, .chk = C_BYTES, .chk_type = T_USERNAME,
     .chk_want = BAD},
    {.name = "USERNAME of 514 bytes", .attrs = {FILL(T_USERNAME, 514, 'u')}, .want = 0,
     .chk = C_BYTES, .chk_type = T_USERNAME, .chk_want = BAD},
    {.name = "REALM of 763 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_REALM, 763, 'r')}, .want = 0,
     .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_REALM, .chk_want = 0, .chk_val = 763},
    {.name = "REALM of 764 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_REALM, 764, 'r')}, .want = 0,
     .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_REALM, .chk_want = BAD},
    {.name = "NONCE of 764 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_NONCE, 764, 'n')}, .want = 0,
     .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_NONCE, .chk_want = BAD},
    {.name = "SOFTWARE of 764 bytes", .attrs = {FILL(T_SOFTWARE, 764, 's')}, .want = 0,
     .chk = C_BYTES, .chk_type = T_SOFTWARE, .chk_want = BAD},
    {.name = "USERHASH of 32 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_USERHASH, 32, 0x11)},
     .want = 0, .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_USERHASH, .chk_want = 0,
     .chk_val = 32},
    {.name = "USERHASH of 31 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_USERHASH, 31, 0x11)},
     .want = 0, .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_USERHASH, .chk_want = BAD},
    {.name = "USERHASH of 33 bytes", .attrs = {FILL(SLUICE_STUN_ATTR_USERHASH, 33, 0x11)},
     .want = 0, .chk = C_BYTES, .chk_type = SLUICE_STUN_ATTR_USERHASH, .chk_want = BAD},

    /* ---- fixed-size values ---- */
    {.name = "PRIORITY", .attrs = {HEX(SLUICE_STUN_ATTR_PRIORITY, "6e0001ff")}, .want = 0,
     .chk = C_U32, .chk_type = SLUICE_STUN_ATTR_PRIORITY, .chk_want = 0, .chk_val = 0x6e0001ff},
    {.name = "PRIORITY of 3 bytes", .attrs = {HEX(SLUICE_STUN_ATTR_PRIORITY, "6e0001")},
     .want = 0, .chk = C_U32, .chk_type = SLUICE_STUN_ATTR_PRIORITY, .chk_want = BAD},
    {.name = "PRIORITY of 8 bytes", .attrs = {HEX(SLUICE_STUN_ATTR_PRIORITY, "6e0001ff00000000")},
     .want = 0, .chk = C_U32, .chk_type = SLUICE_STUN_ATTR_PRIORITY, .chk_want = BAD},
    {.name = "LIFETIME 600", .attrs = {HEX(SLUICE_STUN_ATTR_LIFETIME, "00000258")}, .want = 0,
     .chk = C_U32, .chk_type = SLUICE_STUN_ATTR_LIFETIME, .chk_want = 0, .chk_val = 600},
    {.name = "ICE-CONTROLLING of 4 bytes",
     .attrs = {HEX(SLUICE_STUN_ATTR_ICE_CONTROLLING, "932ff9b1")}, .want = 0, .chk = C_U64,
     .chk_type = SLUICE_STUN_ATTR_ICE_CONTROLLING, .chk_want = BAD},
    {.name = "ICE-CONTROLLED of 12 bytes",
     .attrs = {HEX(SLUICE_STUN_ATTR_ICE_CONTROLLED, "932ff9b151263b3600000000")}, .want = 0,
     .chk = C_U64, .chk_type = SLUICE_STUN_ATTR_ICE_CONTROLLED, .chk_want = BAD},
    {.name = "CHANNEL-NUMBER 0x4000",
     .attrs = {HEX(SLUICE_STUN_ATTR_CHANNEL_NUMBER, "40000000")}, .want = 0, .chk = C_CHANNEL,
     .chk_want = 0, .chk_val = 0x4000},
    {.name = "CHANNEL-NUMBER of 2 bytes", .attrs = {HEX(SLUICE_STUN_ATTR_CHANNEL_NUMBER, "4000")},
     .want = 0, .chk = C_CHANNEL, .chk_want = BAD},
    {.name = "REQUESTED-TRANSPORT UDP",
     .attrs = {HEX(SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, "11000000")}, .want = 0,
     .chk = C_TRANSPORT, .chk_want = 0, .chk_val = 17},
    {.name = "REQUESTED-TRANSPORT of 1 byte",
     .attrs = {HEX(SLUICE_STUN_ATTR_REQUESTED_TRANSPORT, "11")}, .want = 0, .chk = C_TRANSPORT,
     .chk_want = BAD},
    {.name = "EVEN-PORT with R bit", .attrs = {HEX(SLUICE_STUN_ATTR_EVEN_PORT, "80")}, .want = 0,
     .chk = C_EVEN_PORT, .chk_want = 0, .chk_val = 1},
    {.name = "EVEN-PORT empty", .attrs = {HEX(SLUICE_STUN_ATTR_EVEN_PORT, "")}, .want = 0,
     .chk = C_EVEN_PORT, .chk_want = BAD},
    {.name = "PASSWORD-ALGORITHMS MD5, SHA-256",
     .attrs = {HEX(SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, "0001000000020000")}, .want = 0,
     .chk = C_PWALGS, .chk_want = 2},
    {.name = "PASSWORD-ALGORITHMS parameters past the value",
     .attrs = {HEX(SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS, "00010004")}, .want = 0,
     .chk = C_PWALGS, .chk_want = BAD},
    {.name = "UNKNOWN-ATTRIBUTES of 3 bytes", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, "000200")}, .want = 0,
     .chk = C_UNKNOWN_ATTRS, .chk_want = BAD},
    {.name = "UNKNOWN-ATTRIBUTES two types", .type = 0x0111,
     .attrs = {HEX(SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES, "00027fff")}, .want = 0,
     .chk = C_UNKNOWN_ATTRS, .chk_want = 2},
};
/* clang-format on */
#define N_ROWS (sizeof rows / sizeof rows[0])

/* ------------------------------------------------------------------------ */
/* Builder */

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (h && h[0] && h[1]) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

static size_t build(const struct row *r, uint8_t *b)
{
    size_t off = 20, fp_off[8];
    int fp_plain[8], n_fp = 0;

    put16(b, r->type ? r->type : 0x0001);
    put32(b + 4, SLUICE_STUN_MAGIC_COOKIE ^ r->cookie_xor);
    for (int i = 0; i < 12; i++)
        b[8 + i] = (uint8_t)i;

    for (const aspec *a = r->attrs; a < r->attrs + 8 && a->kind != K_END; a++) {
        size_t vlen;
        switch (a->kind) {
        case K_ATTR:
            vlen = unhex(a->hex, b + off + 4);
            memset(b + off + 4 + vlen, a->fill_byte, a->fill);
            vlen += a->fill;
            put16(b + off, a->type);
            put16(b + off + 2, a->decl >= 0 ? (unsigned)a->decl : (unsigned)vlen);
            off += 4 + vlen;
            while (off % 4) /* RFC 8489 §14: padding, here non-zero to be noticed */
                b[off++] = 0xcc;
            break;
        case K_FP:
        case K_FP_PLAIN:
            fp_plain[n_fp] = a->kind == K_FP_PLAIN;
            fp_off[n_fp++] = off;
            put16(b + off, SLUICE_STUN_ATTR_FINGERPRINT);
            put16(b + off + 2, 4);
            off += 8;
            break;
        case K_RAW:
            off += unhex(a->hex, b + off);
            break;
        case K_SEQ:
            for (size_t i = 0; i < a->fill; i++) {
                put16(b + off, (unsigned)(a->type + i));
                put16(b + off + 2, 0);
                off += 4;
            }
            break;
        case K_END:
            break;
        }
    }
    put16(b + 2, (unsigned)((int)(off - 20) + r->len_adjust));
    for (int i = 0; i < n_fp; i++) {
        uint32_t crc = crc32_ref(b, fp_off[i]);
        put32(b + fp_off[i] + 4, fp_plain[i] ? crc : crc ^ 0x5354554eu);
    }
    memset(b + off, 0xee, r->trailing);
    return off + r->trailing;
}

/* ------------------------------------------------------------------------ */

static void run_check(const struct row *r, const sluice_stun_msg *m)
{
    char text[SLUICE_ADDR_STRLEN];
    sluice_addr a;
    int rc;

    switch (r->chk) {
    case C_NONE:
        break;
    case C_HAS_NOT: {
        sluice_stun_attr at;
        CHECK(!sluice_stun_has(m, r->chk_type));
        CHECK_EQ(sluice_stun_find(m, r->chk_type, &at), NOTFOUND);
        /* Not yielded by the iterator either. */
        sluice_stun_attr_iter it;
        sluice_stun_attr_iter_init(&it, m);
        while (sluice_stun_attr_next(&it, &at))
            CHECK(at.type != r->chk_type);
        break;
    }
    case C_HAS:
        CHECK(sluice_stun_has(m, r->chk_type));
        break;
    case C_XOR_ADDR:
    case C_ADDR:
        memset(&a, 0, sizeof a);
        rc = r->chk == C_XOR_ADDR ? sluice_stun_get_xor_address(m, r->chk_type, &a)
                                  : sluice_stun_get_address(m, r->chk_type, &a);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0 && r->chk_str) {
            CHECK(sluice_addr_format(&a, true, text, sizeof text) > 0);
            if (strcmp(text, r->chk_str) != 0)
                fprintf(stderr, "# got %s, want %s\n", text, r->chk_str);
            CHECK_STR(text, r->chk_str);
        }
        break;
    case C_ERROR_CODE: {
        int code = 0;
        const char *reason = NULL;
        size_t reason_len = 0;
        rc = sluice_stun_get_error_code(m, &code, &reason, &reason_len);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0)
            CHECK_EQ(code, r->chk_val);
        break;
    }
    case C_BYTES: {
        const uint8_t *v = NULL;
        size_t n = 0;
        rc = sluice_stun_get_bytes(m, r->chk_type, &v, &n);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0) {
            CHECK_EQ(n, r->chk_val);
            if (r->chk_str)
                CHECK(n >= strlen(r->chk_str) && memcmp(v, r->chk_str, strlen(r->chk_str)) == 0);
        }
        break;
    }
    case C_U32: {
        uint32_t v = 0;
        rc = sluice_stun_get_u32(m, r->chk_type, &v);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0)
            CHECK_EQ(v, r->chk_val);
        break;
    }
    case C_U64: {
        uint64_t v = 0;
        CHECK_EQ(sluice_stun_get_u64(m, r->chk_type, &v), r->chk_want);
        break;
    }
    case C_CHANNEL: {
        uint16_t ch = 0;
        rc = sluice_stun_get_channel_number(m, &ch);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0)
            CHECK_EQ(ch, r->chk_val);
        break;
    }
    case C_TRANSPORT: {
        uint8_t p = 0;
        rc = sluice_stun_get_requested_transport(m, &p);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0)
            CHECK_EQ(p, r->chk_val);
        break;
    }
    case C_EVEN_PORT: {
        bool reserve = false;
        rc = sluice_stun_get_even_port(m, &reserve);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 0)
            CHECK_EQ(reserve, r->chk_val);
        break;
    }
    case C_PWALGS: {
        uint16_t algs[4] = {0};
        rc = sluice_stun_get_password_algorithms(m, algs, 4);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 2)
            CHECK(algs[0] == SLUICE_STUN_PWALG_MD5 && algs[1] == SLUICE_STUN_PWALG_SHA256);
        break;
    }
    case C_UNKNOWN_ATTRS: {
        uint16_t types[4] = {0};
        rc = sluice_stun_get_unknown_attributes(m, types, 4);
        CHECK_EQ(rc, r->chk_want);
        if (rc == 2)
            CHECK(types[0] == 0x0002 && types[1] == 0x7fff);
        break;
    }
    case C_OFFSETS:
        CHECK_EQ(m->integrity_off != 0, (r->chk_val & 1) != 0);
        CHECK_EQ(m->integrity256_off != 0, (r->chk_val & 2) != 0);
        CHECK_EQ(m->fingerprint_off != 0, (r->chk_val & 4) != 0);
        break;
    }

    if (r->chk_unknown) {
        CHECK_EQ(m->n_unknown, r->n_unknown);
        for (int i = 0; i < r->n_unknown && i < 4; i++)
            CHECK_EQ(m->unknown[i], r->unknown[i]);
        if (r->n_unknown > SLUICE_STUN_MAX_UNKNOWN) /* the list is full and in order */
            for (int i = 0; i < SLUICE_STUN_MAX_UNKNOWN; i++)
                CHECK_EQ(m->unknown[i], r->unknown[0] + i);
    }
}

static void run_row(guard_buf *g, const sluice_stun_key *key, const struct row *r)
{
    static uint8_t b[8192];
    size_t len = build(r, b);
    const uint8_t *d = guard_place(g, b, len);
    sluice_stun_msg m;
    int rc;

    ex_row = r->name;
    rc = exercise_stun(d, len, key, &m);
    if (rc != r->want)
        fprintf(stderr, "# %s: parse -> %d (%s), want %d (%s)\n", r->name, rc, sluice_strerror(rc),
                r->want, sluice_strerror(r->want));
    CHECK_EQ(rc, r->want);
    if (rc == 0 && r->want == 0)
        run_check(r, &m);
}

/* The builder's CRC against the library's and the CRC-32 check value. */
static void crc32_agrees(void)
{
    static const uint8_t check[] = "123456789";
    CHECK_EQ(crc32_ref(check, 9), 0xcbf43926u);
    CHECK_EQ(sluice_crc32(0, check, 9), 0xcbf43926u);
    /* Incremental use: seed with the CRC so far. */
    CHECK_EQ(sluice_crc32(sluice_crc32(0, check, 4), check + 4, 5), 0xcbf43926u);
}

int main(void)
{
    guard_buf g;
    sluice_stun_key key;

    guard_init(&g);
    CHECK_EQ(sluice_stun_key_short_term(&key, "VOkJxbRl1RmTxUk/WvJxBt", 22), 0);
    RUN(crc32_agrees);
    for (size_t i = 0; i < N_ROWS; i++) {
        /* One TAP point per row, like RUN(). */
        t_case_name = rows[i].name;
        t_case_failed = 0;
        run_row(&g, &key, &rows[i]);
        t_cases++;
        printf("%s %d - %s\n", t_case_failed ? "not ok" : "ok", t_cases, rows[i].name);
        fflush(stdout);
    }
    guard_free(&g);
    return TEST_DONE();
}
