/* profile.h: an op-level profiler. With HUG_PROFILE=1 in the environment
 * every forward and backward kernel, and every region the trainer names
 * (data, gradient reduction, optimizer), is timed and summed per name;
 * `hug train` and bench_train print the table at the end. On a device each
 * measurement first waits for the device, so the times are the kernels'
 * own (the run is slower for it). Off, which is the default, a hook costs
 * one branch. Use it from the thread that runs the step. */
#ifndef HUG_AUTOGRAD_PROFILE_H
#define HUG_AUTOGRAD_PROFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "node.h"

/* True when HUG_PROFILE is set to something other than "" or "0" (read
 * once). */
bool ag_profile_on(void);

/* Turns profiling on or off regardless of HUG_PROFILE (tests, tools). */
void ag_profile_set(bool on);

/* A start time for a measurement on device dev (after waiting for it), or
 * 0 when profiling is off. */
double ag_profile_start(enum device dev);

/* Adds the time since t0 (from ag_profile_start, on dev) to op's forward
 * or backward entry; nothing when profiling is off. */
void ag_profile_stop_op(enum ag_op op, bool backward, enum device dev, double t0);

/* Adds the time since t0 to region `name` (a string literal: kept by
 * pointer); nothing when profiling is off. At most 32 regions. */
void ag_profile_stop(const char *name, enum device dev, double t0);

/* Prints the table (name, calls, total seconds, ms per call, share of the
 * total), largest first; nothing when off or when nothing was timed. */
void ag_profile_report(FILE *out);

/* Forgets everything measured so far (e.g. after warm-up steps). */
void ag_profile_reset(void);

#endif
