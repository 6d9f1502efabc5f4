/*
 * clock.c -- the loop's clock.  Pure C, no Python.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#include "el.h"

int64_t
el_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer, and it is what
     * time.monotonic() reads on Linux, so loop.time() matches asyncio's.
     * CLOCK_MONOTONIC_RAW or _COARSE would drift from it. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
