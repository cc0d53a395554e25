/* SPDX-License-Identifier: MIT */
/* Error names and the library version. */
#include "sluice/common.h"
#include "sluice_config.h"

const char *sluice_strerror(int err)
{
    switch (err) {
    case SLUICE_OK: return "success";
    case SLUICE_ERR_INVALID: return "invalid argument";
    case SLUICE_ERR_TRUNCATED: return "truncated input";
    case SLUICE_ERR_MALFORMED: return "malformed input";
    case SLUICE_ERR_NOT_STUN: return "not a STUN message";
    case SLUICE_ERR_NOSPACE: return "buffer too small";
    case SLUICE_ERR_NOT_FOUND: return "not found";
    case SLUICE_ERR_INTEGRITY: return "message integrity check failed";
    case SLUICE_ERR_FINGERPRINT: return "fingerprint check failed";
    case SLUICE_ERR_FULL: return "table or queue full";
    case SLUICE_ERR_NOMEM: return "out of memory";
    case SLUICE_ERR_CRYPTO: return "crypto library error";
    case SLUICE_ERR_TIMEOUT: return "timed out";
    case SLUICE_ERR_UNSUPPORTED: return "not supported";
    case SLUICE_ERR_STATE: return "invalid in current state";
    case SLUICE_ERR_AUTH: return "authentication failed";
    case SLUICE_ERR_UNKNOWN_ATTR: return "unknown comprehension-required attribute";
    }
    return err >= 0 ? "success" : "unknown error";
}

const char *sluice_version(void)
{
    return SLUICE_VERSION_STRING;
}
