/* SPDX-License-Identifier: MIT */
/* Minimal test harness: table-friendly checks, TAP output for meson. */
#ifndef SLUICE_TEST_H
#define SLUICE_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;
static int t_checks;
static int t_case_failed;
static int t_cases;
static const char *t_case_name;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        t_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            t_failures++;                                                                          \
            t_case_failed = 1;                                                                     \
            fprintf(stderr, "# %s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__,                 \
                    t_case_name ? t_case_name : "?", #cond);                                       \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        t_checks++;                                                                                \
        if (t_a_ != t_b_) {                                                                        \
            t_failures++;                                                                          \
            t_case_failed = 1;                                                                     \
            fprintf(stderr, "# %s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__,  \
                    t_case_name ? t_case_name : "?", #a, t_a_, #b, t_b_);                          \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)
#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

/* Run one test case as a TAP test point. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        t_case_name = #fn;                                                                         \
        t_case_failed = 0;                                                                         \
        fn();                                                                                      \
        t_cases++;                                                                                 \
        printf("%s %d - %s\n", t_case_failed ? "not ok" : "ok", t_cases, #fn);                     \
        fflush(stdout);                                                                            \
    } while (0)

/* End of main(): print the TAP plan and return the exit code. */
#define TEST_DONE()                                                                                \
    (printf("1..%d\n", t_cases), fprintf(stderr, "# %d checks, %d failed\n", t_checks, t_failures), \
     t_failures ? 1 : 0)

#endif
