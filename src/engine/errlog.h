/*
 * errlog.h - how the engine tells a human what went wrong.
 *
 * Return codes say what kind of failure happened; the logger carries the
 * detail a person needs ("000012.sst: bad block checksum at offset
 * 40960").  The database hands its logger to every module it creates; the
 * user sees the messages through trove_options.log and trove_errmsg().
 * A NULL logger, or one with a NULL fn, discards messages.
 */
#ifndef TV_ERRLOG_H
#define TV_ERRLOG_H

#include "trove.h"

typedef struct tv_logger {
	trove_log_fn fn;
	void *arg;
} tv_logger;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void tv_logf(const tv_logger *lg, int level, const char *fmt, ...);

#endif
