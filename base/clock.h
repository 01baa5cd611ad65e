/* clock.h: wall-clock time for timings (tokens/s, time to first token). */
#ifndef HUG_BASE_CLOCK_H
#define HUG_BASE_CLOCK_H

/* Seconds on a monotonic clock from an arbitrary origin: only differences
 * mean anything. */
double hug_seconds(void);

#endif
