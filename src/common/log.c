/* SPDX-License-Identifier: MIT */
/* The optional log hook: the only callback the core makes. */
#include <stdarg.h>
#include <stdio.h>

#include "common/internal.h"

static sluice_log_fn log_fn;
static void *log_ctx;
static sluice_log_level log_max = SLUICE_LOG_ERROR;

void sluice_set_log_hook(sluice_log_fn fn, void *ctx, sluice_log_level max_level)
{
    log_fn = fn;
    log_ctx = ctx;
    log_max = max_level;
}

bool sluice_log_enabled(sluice_log_level level)
{
    return log_fn && level <= log_max;
}

void sluice_log(sluice_log_level level, const char *module, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!sluice_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_fn(log_ctx, level, module, line);
}
