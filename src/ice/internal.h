/* SPDX-License-Identifier: MIT */
/* ICE agent internals shared by the files of src/ice. Not installed. */
#ifndef SLUICE_ICE_INTERNAL_H
#define SLUICE_ICE_INTERNAL_H

#include "common/internal.h"
#include "sluice/ice.h"

#define ICE_SEC 1000000ull
#define ICE_MS 1000ull
/* Gap between the previous transaction and a nominating check (checklist.c,
 * ice_nomination_pending). */
#define ICE_NOMINATE_GAP_US (5 * ICE_MS)
/* RFC 8445 §8.3.1: how long a completed stream keeps its unused relayed
 * candidates before their allocations are deleted. */
#define ICE_FREE_DELAY_US (3000 * ICE_MS)
#define ICE_MAX_SERVERS 8
#define ICE_UFRAG_LEN 8   /* generated: 48 bits of entropy, base64 */
#define ICE_PWD_LEN 24    /* generated: 144 bits (RFC 8445 §5.3: at least 128) */
#define ICE_LOCAL_UFRAG_MAX 64 /* set by the application (webrtcbin: 32) */
#define ICE_LOCAL_PWD_MAX 128
#define ICE_RESP_SLOTS 32 /* queued check responses */
#define ICE_RESP_MAX 192  /* a check response: XOR-MAPPED, MI, FP, SOFTWARE */
#define ICE_MSG_MAX 1024  /* a check request we build */
#define ICE_STREAM_RX 65536 /* one relayed datagram from a TCP/TLS stream */
#define ICE_STREAM_QUEUE (256u * 1024) /* TURN client receive queue over TCP/TLS */

/* RFC 8445 §5.1.2.2 recommended type preferences. */
#define ICE_TYPE_PREF_HOST 126
#define ICE_TYPE_PREF_PRFLX 110
#define ICE_TYPE_PREF_SRFLX 100
#define ICE_TYPE_PREF_RELAY 0

enum pair_state { PS_FROZEN, PS_WAITING, PS_IN_PROGRESS, PS_SUCCEEDED, PS_FAILED };

/* A socket the driver owns. */
struct base {
    sluice_addr addr;
    uint16_t component;
    uint16_t local_pref;
};

/* A local candidate. Server-reflexive ones are signalled but never paired
 * (RFC 8445 §6.1.2.4: a pair's srflx local is replaced by its base). */
struct lcand {
    sluice_ice_candidate c;
    int base; /* index in stream->bases */
    int turn; /* RELAY: index in agent->turns, else -1 */
    bool signalled;
    bool withdrawn; /* RELAY: the allocation is gone; never paired or signalled again */
};

struct rcand {
    sluice_ice_candidate c;
};

/* One STUN transaction of ours (a check, a consent check or a gathering
 * Binding request): RFC 8489 §6.2.1 retransmissions on our own schedule. */
struct txn {
    bool active;
    bool due;       /* a (re)transmission is to be sent */
    bool hurried;   /* one early retransmission was sent (connectivity.c) */
    uint8_t sent;
    uint8_t rc;     /* requests to send in total */
    uint8_t txid[SLUICE_STUN_TXID_LEN];
    uint64_t rto_us, next_us, first_us, last_us;
};

struct pair {
    int local, remote;           /* indices in stream->local / ->remote */
    uint16_t component;
    uint8_t state;               /* enum pair_state */
    bool valid;                  /* RFC 8445 §7.2.5.3.2: in the valid list */
    bool nominated;
    bool nominating;             /* controlling: next check carries USE-CANDIDATE */
    bool nominate_on_success;    /* controlled: USE-CANDIDATE seen before success */
    bool triggered;              /* in the triggered-check queue */
    bool perm_ok;                /* relay local: TURN permission confirmed */
    bool check_is_consent;       /* the transaction in tx is a consent check */
    bool check_use_cand;         /* ... and it carried USE-CANDIDATE */
    bool check_controlling;      /* ... and the role it claimed */
    uint64_t priority;
    struct txn tx;
    uint8_t old_txid[SLUICE_STUN_TXID_LEN]; /* a cancelled check (§7.3.1.4) */
    bool old_txid_valid;
    /* stats */
    uint64_t rtt_us;
    uint64_t requests_sent, responses_received, requests_received, responses_sent;
    uint64_t consent_requests_sent;
    uint64_t packets_sent, bytes_sent, packets_received, bytes_received;
};

/* What the data path uses for a component. Kept as addresses, not pair
 * indices, so that it survives an ICE restart (RFC 8445 §9: media keeps
 * flowing on the old pair until a new one is selected). */
struct route_state {
    bool valid;
    sluice_ice_candidate local, remote;
    int base;
    int turn;
    uint64_t consent_expires_us;
    uint64_t next_consent_us;
    uint64_t last_sent_us;
    bool consent_lost;
    int pair; /* the selected pair in the current checklist, or -1 */
};

struct component {
    uint64_t first_valid_us; /* 0: no valid pair yet */
    struct route_state sel;
};

/* A Binding request to a STUN server from one base (RFC 8445 §5.1.1.1). */
struct gather {
    int base;
    int server;
    bool started, done;
    struct txn tx;
};

struct stream {
    int id;
    bool used;
    unsigned n_components;
    sluice_ice_state state;
    char ufrag[ICE_LOCAL_UFRAG_MAX + 1], pwd[ICE_LOCAL_PWD_MAX + 1];
    /* before a restart */
    char prev_ufrag[ICE_LOCAL_UFRAG_MAX + 1], prev_pwd[ICE_LOCAL_PWD_MAX + 1];
    bool have_prev;
    char rufrag[SLUICE_ICE_UFRAG_MAX + 1], rpwd[SLUICE_ICE_PWD_MAX + 1];
    bool have_remote_creds;
    sluice_stun_key key_local, key_remote, key_prev;
    bool remote_eoc;
    bool gathering, gathering_done;
    uint64_t checks_started_us;
    uint64_t completed_us; /* when the state became COMPLETED, 0 otherwise */

    struct base *bases;
    size_t n_bases;
    struct lcand *local;
    size_t n_local, cap_local, max_local;
    struct rcand *remote;
    size_t n_remote, cap_remote;
    struct pair *pairs;
    size_t n_pairs, cap_pairs;
    int *triggered; /* FIFO of pair indices, capacity max_pairs */
    size_t trig_head, trig_len;
    struct gather *gathers;
    size_t n_gathers, cap_gathers, max_gathers;
    struct component *comp; /* [n_components] */
    unsigned prflx_seq;
};

struct turn_alloc {
    bool used;
    int stream, base, server;
    sluice_turn_client *tc;
    sluice_transport transport;
    sluice_addr stream_server; /* TCP/TLS: where the current stream goes (redirects) */
    bool started;
    bool done;   /* allocated or failed: counts for gathering */
    bool ended;  /* failed or lost: the client is finished */
    bool stream_closed; /* TCP/TLS: the driver said the stream closed */
    bool freed;  /* unused after completion, deleted (§8.3); ended too */
    bool deleting; /* freed, its delete not yet answered: still polled and fed */
    int lcand;   /* relay candidate, -1 */
};

struct resp {
    sluice_addr source, destination;
    int turn; /* through this TURN allocation, or -1 */
    uint16_t len;
    uint8_t data[ICE_RESP_MAX];
};

struct sluice_ice_agent {
    sluice_ice_config cfg;
    char *software;
    bool controlling;
    bool remote_lite;
    bool relay_only;
    uint64_t tiebreaker;
    struct stream **streams; /* [max_streams], NULL until added */
    sluice_addr stun_servers[ICE_MAX_SERVERS];
    size_t n_stun;
    sluice_ice_turn_server turn_servers[ICE_MAX_SERVERS];
    char *turn_strings[ICE_MAX_SERVERS][4]; /* copies: username, password, server_name, ca_file */
    size_t n_turn;
    uint8_t *stream_rx; /* media relayed over a TCP/TLS stream: ICE_STREAM_RX bytes */
    struct turn_alloc *turns;
    size_t turns_cap, max_turns;
    /* pacing (RFC 8445 §14.2) */
    uint64_t next_tick_us;
    uint64_t last_tx_us; /* when the last new check or gathering transaction went out */
    size_t rr; /* round robin over checklists */
    /* responses to send */
    struct resp *resp;
    size_t resp_head, resp_len, resp_cap;
    /* events */
    sluice_ice_event *evq;
    size_t ev_head, ev_len, ev_cap;
    sluice_ice_stats stats;
};

/* agent.c */
int ice_grow(sluice_ice_agent *a, void *tab, size_t *cap, size_t n, size_t max, size_t elem);
int ice_ring_grow(sluice_ice_agent *a, void *ring, size_t *head, size_t *cap, size_t len,
                  size_t max, size_t elem);
void ice_emit(sluice_ice_agent *a, const sluice_ice_event *ev);
void ice_set_state(sluice_ice_agent *a, struct stream *s, sluice_ice_state st);
struct stream *ice_stream(const sluice_ice_agent *a, int id);
int ice_add_local(sluice_ice_agent *a, struct stream *s, sluice_ice_cand_type type,
                  const sluice_addr *addr, const sluice_addr *related, int base, int turn,
                  const sluice_addr *server, bool signal);
int ice_random(sluice_ice_agent *a, void *out, size_t len);
sluice_turn_client *ice_turn_of(sluice_ice_agent *a, int turn);
void ice_gather_result(sluice_ice_agent *a, struct stream *s, struct gather *g,
                       const sluice_addr *mapped, int error_code, int reason);

/* candidate.c */
void ice_foundation(char out[SLUICE_ICE_FOUNDATION_MAX + 1], sluice_ice_cand_type type,
                    const sluice_addr *base, const sluice_addr *server,
                    sluice_transport server_transport);
bool ice_chars_ok(const char *s, size_t min, size_t max);

/* checklist.c */
uint64_t ice_pair_priority(bool controlling, uint32_t local_prio, uint32_t remote_prio);
void ice_recompute_priorities(sluice_ice_agent *a);
void ice_pairs_for_local(sluice_ice_agent *a, uint64_t now, struct stream *s, int local);
void ice_pairs_for_remote(sluice_ice_agent *a, uint64_t now, struct stream *s, int remote);
int ice_find_pair(const struct stream *s, int local, int remote);
bool ice_pairable_local(const sluice_ice_agent *a, const struct lcand *l);
int ice_add_pair(sluice_ice_agent *a, struct stream *s, int local, int remote);
void ice_trigger(sluice_ice_agent *a, struct stream *s, int pair);
void ice_pair_succeeded(sluice_ice_agent *a, uint64_t now, struct stream *s, int pair);
void ice_pair_failed(sluice_ice_agent *a, uint64_t now, struct stream *s, int pair);
void ice_update_nomination(sluice_ice_agent *a, uint64_t now, struct stream *s);
void ice_select(sluice_ice_agent *a, uint64_t now, struct stream *s, unsigned comp);
void ice_update_state(sluice_ice_agent *a, uint64_t now, struct stream *s);
bool ice_tick(sluice_ice_agent *a, uint64_t now);
bool ice_nomination_pending(const sluice_ice_agent *a);
bool ice_nominate_tick(sluice_ice_agent *a, uint64_t now);
bool ice_work_pending(const sluice_ice_agent *a);
uint64_t ice_checklist_deadline(const sluice_ice_agent *a);
const char *ice_pair_state_name(int st);

/* connectivity.c */
void ice_txn_start(sluice_ice_agent *a, struct txn *t, uint64_t now, uint64_t rto, unsigned rc);
int ice_start_check(sluice_ice_agent *a, uint64_t now, struct stream *s, int pair, bool consent);
int ice_handle_stun(sluice_ice_agent *a, uint64_t now, struct stream *s_hint, int base, int turn,
                    const sluice_addr *local, const sluice_addr *remote, const uint8_t *data,
                    size_t len);
void ice_timers(sluice_ice_agent *a, uint64_t now);
void ice_consent_lost(sluice_ice_agent *a, struct stream *s, unsigned comp);
uint64_t ice_consent_interval(sluice_ice_agent *a);
uint64_t ice_timers_deadline(const sluice_ice_agent *a);
int ice_poll_checks(sluice_ice_agent *a, uint64_t now, uint8_t *buf, size_t cap,
                    sluice_transmit *meta);
int ice_wrap_turn(sluice_ice_agent *a, uint64_t now, int turn, const sluice_addr *peer,
                  const uint8_t *msg, size_t len, uint8_t *buf, size_t cap,
                  sluice_transmit *meta);

#endif
