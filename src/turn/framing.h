/* SPDX-License-Identifier: MIT */
/* TURN framing helpers (internal): stream frame boundaries and channel
 * number limits, shared by the TURN client and server. */
#ifndef SLUICE_TURN_FRAMING_H
#define SLUICE_TURN_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#define SLUICE_TURN_CHANNEL_MIN 0x4000 /* RFC 8656 §12 */
#define SLUICE_TURN_CHANNEL_MAX 0x4FFF
/* Largest frame on a stream: a STUN message (20 + 65535, a multiple of 4:
 * 65552) or ChannelData (4 + 65535 + 1 byte of padding). */
#define SLUICE_TURN_STREAM_FRAME_MAX 65556

/* Length of the frame at the start of a TCP/TLS stream: the STUN message
 * (first two bits 00) or padded ChannelData (01). Returns the length, 0
 * when more bytes are needed to tell, or SLUICE_ERR_MALFORMED /
 * SLUICE_ERR_NOT_STUN for a stream that cannot be framed (close it). */
/* sluice_turn_channel_data_parse() with the highest accepted channel
 * number given (0x4FFF per RFC 8656, 0x7FFF per RFC 5766). */
int sluice_turn_channel_data_parse_max(const uint8_t *data, size_t len, uint16_t max,
                                       uint16_t *channel, const uint8_t **payload,
                                       size_t *payload_len);
#define SLUICE_TURN_CHANNEL_MAX_RFC5766 0x7FFF

int sluice_turn_frame_length(const uint8_t *data, size_t len);

#endif
