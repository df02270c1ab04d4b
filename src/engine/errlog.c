/*
 * errlog.c - formats engine messages and hands them to the user's logger.
 */
#include "errlog.h"

#include <stdarg.h>
#include <stdio.h>

void tv_logf(const tv_logger *lg, int level, const char *fmt, ...)
{
	if (!lg || !lg->fn)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lg->fn(lg->arg, level, msg);
}
