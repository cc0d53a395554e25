/* SPDX-License-Identifier: MIT */
/* Coordinator internals shared by the client, the server, the unit tests
 * and the fuzzer: the credit rule and the plaintext entry points that skip
 * TLS (tests of the frame layer, fuzzing). Not installed. */
#ifndef SLUICE_COORD_INTERNAL_H
#define SLUICE_COORD_INTERNAL_H

#include "sluice/coord.h"

/* Return credit once this much has been consumed: a quarter of the window,
 * or less when the window is barely above one largest message (the sender
 * must always be able to get credit for a max_message message once the
 * receiver has consumed everything). */
static inline bool coord_credit_due(uint64_t pending, uint64_t window, uint64_t max_message)
{
    uint64_t slack = window - SLUICE_COORD_MESSAGE_COST(max_message);
    return pending > 0 && (pending > slack || pending >= window / 4);
}

/* A server that only takes plaintext connections (no certificate files;
 * cert_file/key_file/client_ca_file are ignored): for tests and fuzzing. */
sluice_coord_server *coord_server_new_plaintext(const sluice_coord_server_config *cfg, int *err);

/* A server connection without TLS: handle_stream takes plaintext frames
 * and poll_transmit gives plaintext frames. The client is taken to have
 * authenticated with a certificate valid for any name, with fingerprint fp
 * (NULL: zeros). Returns 0 or the accept() errors. */
int coord_server_accept_plaintext(sluice_coord_server *s, uint64_t now_us,
                                  const sluice_addr *remote, const uint8_t *fp, uint64_t *conn);

/* A client without TLS (cert_file, key_file and server_name are not
 * needed): start() sends HELLO at once. */
sluice_coord_client *coord_client_new_plaintext(const sluice_coord_client_config *cfg, int *err);

#endif
