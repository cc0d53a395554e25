/* SPDX-License-Identifier: MIT */
/* TURN server core internals shared by server.c (allocations, data path),
 * server_auth.c (credentials, stateless nonces, challenge rate limit) and
 * peer_policy.c. Not installed. */
#ifndef SLUICE_TURN_SERVER_INTERNAL_H
#define SLUICE_TURN_SERVER_INTERNAL_H

#include "common/internal.h"
#include "sluice/turn_server.h"

#define SEC_US 1000000ull
#define TXE_MAX 600 /* bytes of one queued STUN answer */

/* Open-addressing hash index (linear probing, backward-shift deletion):
 * slots hold entry index + 1, 0 is empty. Sized at creation to a power of
 * two at least twice the entries it can hold, so probes stay short. */
struct srv_index {
    uint32_t *slots;
    uint32_t mask;
};

enum { IX_TUPLE, IX_PERM, IX_CHAN_NUM, IX_CHAN_PEER, IX_USER_NAME, IX_USER_HASH, IX_QUOTA };

/* A permission (RFC 8656 §9): by peer IP only. 32 bytes. */
struct srv_perm {
    uint64_t expires_us; /* 0: slot free */
    uint8_t family;
    uint8_t ip[16];
};

/* A channel binding (RFC 8656 §12). Data flows until expires_us; the entry
 * stays until expires_us + 5 min so the number and the peer cannot be
 * rebound to something else during that time (§12). 40 bytes. */
struct srv_chan {
    uint64_t expires_us; /* 0: slot free */
    sluice_addr peer;
    uint16_t number;
};

struct srv_alloc {
    bool used;
    bool response_queued; /* its Allocate success still sits in the transmit queue */
    bool sha256_mi;       /* the Allocate used MESSAGE-INTEGRITY-SHA256 */
    uint8_t key_len;      /* 16 (MD5) or 32 (SHA-256) */
    uint8_t n_relay;
    uint8_t relay_family[2]; /* 0 (IPv4) / 1 (IPv6) index into the port maps */
    uint8_t addr_err_family; /* ADDRESS-ERROR-CODE to repeat in a rebuilt response */
    uint8_t bind_attempts;
    uint16_t addr_err_code;
    uint16_t relay_port[2];
    uint16_t n_perms, n_chans;
    uint32_t lifetime_s; /* granted by the Allocate (for a rebuilt response) */
    uint32_t quota_slot; /* in quotas, or in cfg.shared_quota */
    sluice_turn_server_flow flow;
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    uint8_t user_id[16]; /* truncated SHA-256 of the USERNAME */
    uint8_t key[32];     /* long-term key, for signing rebuilt responses */
    uint64_t token;      /* RESERVATION-TOKEN handed out with the Allocate, 0: none */
    uint64_t expires_us;
    /* bandwidth token buckets: [0] client -> peer, [1] peer -> client */
    uint64_t bw_tokens[2];
    uint64_t bw_last_us[2];
};

struct srv_quota {
    uint8_t id[16];
    uint32_t count;
};

struct srv_user {
    char *name;
    size_t name_len;
    uint8_t id[16];
    uint8_t md5[16];
    uint8_t sha256[32];
    bool has_sha256;
    uint8_t userhash[32];
};

struct srv_reservation {
    uint64_t token;
    uint64_t expires_us; /* 0: free */
    uint8_t family;      /* port map index */
    uint16_t port;
};

struct srv_bucket {
    uint64_t last_us;
    uint32_t tokens_milli; /* tokens spent, in thousandths (0: full) */
};

struct srv_txe {
    sluice_turn_server_flow flow;
    uint32_t alloc_ref; /* allocation + 1 whose Allocate success this is, else 0 */
    uint16_t len;
    uint8_t bytes[TXE_MAX];
};

/* Port states in the relay port maps. */
enum { PORT_FREE = 0, PORT_RESERVED, PORT_OPEN_PENDING, PORT_OPEN, PORT_CLOSE_PENDING };
#define PORT_QUEUED 0x80

struct srv_portmap {
    bool enabled;
    sluice_addr ip;
    uint32_t *owner; /* allocation + 1, 0 none */
    uint8_t *state;
};

/* Result of authenticating a request. */
struct srv_cred {
    uint8_t key[32];
    uint8_t key_len;
    bool sha256_mi;
    uint8_t user_id[16];  /* identity for 441 (whole USERNAME) */
    uint8_t quota_id[16]; /* identity for the per-user quota */
};

struct sluice_turn_server {
    sluice_turn_server_config cfg; /* pointers inside replaced by copies or NULL */
    sluice_allocator alloc;
    size_t mem_bytes;
    char *realm;
    size_t realm_len;
    char *software;
    char *alt_domain; /* ALTERNATE-DOMAIN while draining, NULL: none */
    size_t alt_domain_len;
    bool draining;    /* sluice_turn_server_set_draining */
    uint64_t hash_seed;
    uint64_t unix_time_s;
    uint32_t features; /* nonce cookie feature bits */
    uint64_t ind_counter;
    uint32_t ind_seed;

    sluice_stun_key nonce_key;
    sluice_stun_key *secrets;
    size_t n_secrets;

    struct srv_user *users;
    size_t n_users;
    struct srv_index ix_user_name, ix_user_hash;

    sluice_turn_cidr *allow, *deny;
    size_t n_allow, n_deny;

    struct srv_alloc *allocs;
    uint32_t *alloc_free; /* stack of free allocation indexes */
    size_t n_alloc_free;
    struct srv_perm *perms; /* allocation i owns [i * max_permissions, ...) */
    struct srv_chan *chans; /* allocation i owns [i * max_channels, ...) */
    struct srv_index ix_tuple, ix_perm, ix_chan_num, ix_chan_peer;

    /* per-user counts of this core; unused (NULL) with cfg.shared_quota */
    struct srv_quota *quotas;
    uint32_t *quota_free;
    size_t n_quota_free;
    struct srv_index ix_quota;

    struct srv_reservation *resv;

    struct srv_portmap ports[2];
    uint32_t n_ports;
    uint32_t *evq; /* ring of (family * n_ports + port index) */
    size_t evq_cap, evq_head, evq_len;

    struct srv_txe *tx;
    size_t tx_head, tx_len;

    struct srv_bucket *buckets;

    uint64_t next_deadline_us;
    sluice_turn_server_stats st;
};

/* allocation of a table counted in mem_bytes */
void *srv_calloc(sluice_turn_server *s, size_t n, size_t size);

/* keyed hash of bytes (seeded at creation, not an attacker-chosen layout) */
uint64_t srv_hash(const sluice_turn_server *s, const void *p, size_t len, uint64_t extra);

/* lookup keys of the permission and channel indexes */
#define NONE UINT32_MAX
struct perm_key {
    uint32_t alloc;
    const sluice_addr *ip;
};
struct chan_key {
    uint32_t alloc;
    uint16_t number;
    const sluice_addr *peer;
};

/* hash index */
int srv_index_init(sluice_turn_server *s, struct srv_index *ix, size_t entries);
uint32_t srv_index_find(const sluice_turn_server *s, const struct srv_index *ix, int kind,
                        uint64_t h, const void *key);
void srv_index_insert(struct srv_index *ix, uint64_t h, uint32_t entry);
void srv_index_remove(const sluice_turn_server *s, struct srv_index *ix, int kind,
                      uint32_t entry);
uint64_t srv_entry_hash(const sluice_turn_server *s, int kind, uint32_t entry);
/* the keys of each index */
uint64_t srv_mix64(uint64_t x);
bool srv_flow_is_stream(const sluice_turn_server_flow *f);
uint64_t srv_flow_hash(const sluice_turn_server *s, const sluice_turn_server_flow *f);
uint64_t srv_perm_hash(const sluice_turn_server *s, uint32_t alloc, uint8_t family,
                       const uint8_t *ip);
uint64_t srv_chan_num_hash(const sluice_turn_server *s, uint32_t alloc, uint16_t number);
uint64_t srv_chan_peer_hash(const sluice_turn_server *s, uint32_t alloc, const sluice_addr *p);

/* server_auth.c */
int srv_auth_init(sluice_turn_server *s, const sluice_turn_server_config *cfg);
void srv_auth_free(sluice_turn_server *s);
/* Writes a nonce for client (NUL-terminated) into out[64]. */
void srv_make_nonce(const sluice_turn_server *s, uint64_t now_us, const sluice_addr *client,
                    char out[64]);
/* Authenticate a request (RFC 8489 §9.2.4). Returns 0 with *cr filled, or
 * the STUN error code to answer (400, 401, 438). *presented tells whether
 * a credential was tried (counts as an auth failure). */
int srv_authenticate(sluice_turn_server *s, uint64_t now_us, const sluice_turn_server_flow *flow,
                     const sluice_stun_msg *m, struct srv_cred *cr, bool *presented);
/* Take a challenge token for source ip; false: rate limited. */
bool srv_challenge_allowed(sluice_turn_server *s, uint64_t now_us, const sluice_addr *ip);
void srv_base64(const uint8_t *in, size_t n, char *out, bool url);

/* peer_policy.c */
int srv_policy_init(sluice_turn_server *s, const sluice_turn_server_config *cfg);
bool srv_peer_allowed(const sluice_turn_server *s, const sluice_addr *peer);

#endif
