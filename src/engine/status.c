/*
 * status.c - error codes in words, and the options' defaults.
 */
#include <string.h>

#include "trove.h"

const char *trove_strerror(int code)
{
	switch (code) {
	case TROVE_OK: return "success";
	case TROVE_ENOTFOUND: return "not found";
	case TROVE_EINVAL: return "invalid argument";
	case TROVE_ENOMEM: return "out of memory";
	case TROVE_EIO: return "input/output error";
	case TROVE_ENOSPC: return "no space left on device";
	case TROVE_ECORRUPT: return "database file is damaged";
	case TROVE_ELOCKED: return "database is locked by another process";
	case TROVE_EEXIST: return "already exists";
	case TROVE_ECONDITION: return "condition not met";
	case TROVE_ETOOBIG: return "key or value too large";
	case TROVE_EREADONLY: return "database is read-only";
	case TROVE_ENOENT: return "no such file or directory";
	case TROVE_EACCES: return "permission denied";
	case TROVE_EVERSION: return "unsupported file format version";
	case TROVE_EBADDB: return "database failed earlier; reopen it";
	case TROVE_EBUSY: return "resource busy";
	default: return "unknown error";
	}
}

void trove_options_init(trove_options *o)
{
	memset(o, 0, sizeof *o);
	o->create_if_missing = 1;
	o->sync = TROVE_SYNC_ALWAYS;
	o->sync_period_ms = 1000;
	o->memory_budget = (size_t)64 << 20;
	o->compression = TROVE_COMPRESS_LZ4;
}
