/* SPDX-License-Identifier: MIT */
/* TURN framing shared by client and server: ChannelData (RFC 8656 §12.4,
 * §12.5) and the frame boundaries of a TCP/TLS stream that carries STUN
 * messages and ChannelData with no extra length prefix: STUN is
 * self-delimiting, ChannelData is padded to 4 (RFC 8656 §12.5). */
#include "turn/framing.h"

#include "common/internal.h"
#include "sluice/turn_client.h"

int sluice_turn_channel_data_parse(const uint8_t *data, size_t len, uint16_t *channel,
                                   const uint8_t **payload, size_t *payload_len)
{
    return sluice_turn_channel_data_parse_max(data, len, SLUICE_TURN_CHANNEL_MAX, channel, payload,
                                              payload_len);
}

int sluice_turn_channel_data_parse_max(const uint8_t *data, size_t len, uint16_t max,
                                       uint16_t *channel, const uint8_t **payload,
                                       size_t *payload_len)
{
    if (len < 1 || (data[0] & 0xC0) != 0x40)
        return SLUICE_ERR_NOT_FOUND;
    if (len < 4)
        return SLUICE_ERR_TRUNCATED;
    uint16_t ch = rd16(data);
    size_t n = rd16(data + 2);
    /* RFC 8656 §12: 0x5000..0x7FFF are reserved; a receiver discards them
     * (unless it accepts RFC 5766's range). */
    if (ch > max)
        return SLUICE_ERR_MALFORMED;
    if (n > len - 4)
        return SLUICE_ERR_TRUNCATED;
    /* Over UDP the datagram may carry padding (§12.5); anything beyond
     * three bytes of it is not ChannelData. */
    if (len - 4 - n > 3)
        return SLUICE_ERR_MALFORMED;
    *channel = ch;
    *payload = data + 4;
    *payload_len = n;
    return 0;
}

int sluice_turn_frame_length(const uint8_t *data, size_t len)
{
    if (len < 4)
        return 0;
    switch (data[0] >> 6) {
    case 0:
        return sluice_stun_frame_length(data, len);
    case 1: {
        size_t n = rd16(data + 2);
        /* §12.5: over TCP/TLS ChannelData is padded to a multiple of 4. */
        return (int)(4 + ((n + 3) & ~(size_t)3));
    }
    default:
        return SLUICE_ERR_MALFORMED;
    }
}
