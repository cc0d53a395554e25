/* SPDX-License-Identifier: MIT */
/* Names of STUN methods, classes, attributes and error codes. */
#include "sluice/stun.h"

const char *sluice_stun_method_name(uint16_t method)
{
    switch (method) {
    case SLUICE_STUN_BINDING: return "Binding";
    case SLUICE_STUN_ALLOCATE: return "Allocate";
    case SLUICE_STUN_REFRESH: return "Refresh";
    case SLUICE_STUN_SEND: return "Send";
    case SLUICE_STUN_DATA: return "Data";
    case SLUICE_STUN_CREATE_PERMISSION: return "CreatePermission";
    case SLUICE_STUN_CHANNEL_BIND: return "ChannelBind";
    case SLUICE_STUN_CONNECT: return "Connect";
    case SLUICE_STUN_CONNECTION_BIND: return "ConnectionBind";
    case SLUICE_STUN_CONNECTION_ATTEMPT: return "ConnectionAttempt";
    }
    return "unknown";
}

const char *sluice_stun_class_name(sluice_stun_class cls)
{
    switch (cls) {
    case SLUICE_STUN_REQUEST: return "request";
    case SLUICE_STUN_INDICATION: return "indication";
    case SLUICE_STUN_SUCCESS: return "success response";
    case SLUICE_STUN_ERROR: return "error response";
    }
    return "unknown";
}

const char *sluice_stun_attr_name(uint16_t type)
{
    switch (type) {
    case SLUICE_STUN_ATTR_MAPPED_ADDRESS: return "MAPPED-ADDRESS";
    case SLUICE_STUN_ATTR_CHANGE_REQUEST: return "CHANGE-REQUEST";
    case SLUICE_STUN_ATTR_USERNAME: return "USERNAME";
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY: return "MESSAGE-INTEGRITY";
    case SLUICE_STUN_ATTR_ERROR_CODE: return "ERROR-CODE";
    case SLUICE_STUN_ATTR_UNKNOWN_ATTRIBUTES: return "UNKNOWN-ATTRIBUTES";
    case SLUICE_STUN_ATTR_CHANNEL_NUMBER: return "CHANNEL-NUMBER";
    case SLUICE_STUN_ATTR_LIFETIME: return "LIFETIME";
    case SLUICE_STUN_ATTR_XOR_PEER_ADDRESS: return "XOR-PEER-ADDRESS";
    case SLUICE_STUN_ATTR_DATA: return "DATA";
    case SLUICE_STUN_ATTR_REALM: return "REALM";
    case SLUICE_STUN_ATTR_NONCE: return "NONCE";
    case SLUICE_STUN_ATTR_XOR_RELAYED_ADDRESS: return "XOR-RELAYED-ADDRESS";
    case SLUICE_STUN_ATTR_REQUESTED_ADDRESS_FAMILY: return "REQUESTED-ADDRESS-FAMILY";
    case SLUICE_STUN_ATTR_EVEN_PORT: return "EVEN-PORT";
    case SLUICE_STUN_ATTR_REQUESTED_TRANSPORT: return "REQUESTED-TRANSPORT";
    case SLUICE_STUN_ATTR_DONT_FRAGMENT: return "DONT-FRAGMENT";
    case SLUICE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256: return "MESSAGE-INTEGRITY-SHA256";
    case SLUICE_STUN_ATTR_PASSWORD_ALGORITHM: return "PASSWORD-ALGORITHM";
    case SLUICE_STUN_ATTR_USERHASH: return "USERHASH";
    case SLUICE_STUN_ATTR_XOR_MAPPED_ADDRESS: return "XOR-MAPPED-ADDRESS";
    case SLUICE_STUN_ATTR_RESERVATION_TOKEN: return "RESERVATION-TOKEN";
    case SLUICE_STUN_ATTR_PRIORITY: return "PRIORITY";
    case SLUICE_STUN_ATTR_USE_CANDIDATE: return "USE-CANDIDATE";
    case SLUICE_STUN_ATTR_PADDING: return "PADDING";
    case SLUICE_STUN_ATTR_RESPONSE_PORT: return "RESPONSE-PORT";
    case SLUICE_STUN_ATTR_CONNECTION_ID: return "CONNECTION-ID";
    case SLUICE_STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY: return "ADDITIONAL-ADDRESS-FAMILY";
    case SLUICE_STUN_ATTR_ADDRESS_ERROR_CODE: return "ADDRESS-ERROR-CODE";
    case SLUICE_STUN_ATTR_PASSWORD_ALGORITHMS: return "PASSWORD-ALGORITHMS";
    case SLUICE_STUN_ATTR_ALTERNATE_DOMAIN: return "ALTERNATE-DOMAIN";
    case SLUICE_STUN_ATTR_ICMP: return "ICMP";
    case SLUICE_STUN_ATTR_SOFTWARE: return "SOFTWARE";
    case SLUICE_STUN_ATTR_ALTERNATE_SERVER: return "ALTERNATE-SERVER";
    case SLUICE_STUN_ATTR_CACHE_TIMEOUT: return "CACHE-TIMEOUT";
    case SLUICE_STUN_ATTR_FINGERPRINT: return "FINGERPRINT";
    case SLUICE_STUN_ATTR_ICE_CONTROLLED: return "ICE-CONTROLLED";
    case SLUICE_STUN_ATTR_ICE_CONTROLLING: return "ICE-CONTROLLING";
    case SLUICE_STUN_ATTR_RESPONSE_ORIGIN: return "RESPONSE-ORIGIN";
    case SLUICE_STUN_ATTR_OTHER_ADDRESS: return "OTHER-ADDRESS";
    }
    return "unknown";
}

bool sluice_stun_attr_known(uint16_t type)
{
    return sluice_stun_attr_name(type)[0] != 'u';
}

const char *sluice_stun_error_reason(int code)
{
    switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Mobility Forbidden";
    case 420: return "Unknown Attribute";
    case 437: return "Allocation Mismatch";
    case 438: return "Stale Nonce";
    case 440: return "Address Family not Supported";
    case 441: return "Wrong Credentials";
    case 442: return "Unsupported Transport Protocol";
    case 443: return "Peer Address Family Mismatch";
    case 446: return "Connection Already Exists";
    case 447: return "Connection Timeout or Failure";
    case 486: return "Allocation Quota Reached";
    case 487: return "Role Conflict";
    case 500: return "Server Error";
    case 508: return "Insufficient Capacity";
    }
    return "Error";
}
