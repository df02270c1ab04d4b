/*
 * batch.c - write batches and their conditions.
 *
 * A trove_batch is two flat buffers: the ops (puts, deletes, expiry
 * changes) and the conditions, each entry a type byte, a length-prefixed
 * key and its arguments.  The commit leader decodes them in db.c.  The
 * buffers live in memory only; the write-ahead log has its own record
 * format (docs/FORMAT.md), written after conditions are resolved.
 */
#include <stdlib.h>

#include "../util/coding.h"
#include "db.h"

trove_batch *trove_batch_new(void)
{
	trove_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	tv_buf_init(&b->ops);
	tv_buf_init(&b->conds);
	return b;
}

void trove_batch_free(trove_batch *b)
{
	if (!b)
		return;
	tv_buf_free(&b->ops);
	tv_buf_free(&b->conds);
	free(b);
}

void trove_batch_clear(trove_batch *b)
{
	if (!b)
		return;
	tv_buf_clear(&b->ops);
	tv_buf_clear(&b->conds);
	b->nops = b->nconds = 0;
}

size_t trove_batch_count(const trove_batch *b)
{
	return b ? b->nops : 0;
}

size_t trove_batch_conditions(const trove_batch *b)
{
	return b ? b->nconds : 0;
}

static int check_key(const void *key, size_t klen)
{
	if (!key || klen == 0)
		return TROVE_EINVAL;
	return klen > TROVE_MAX_KEY ? TROVE_ETOOBIG : 0;
}

static int check_value(const void *val, size_t vlen)
{
	if (!val && vlen)
		return TROVE_EINVAL;
	return vlen > TROVE_MAX_VALUE ? TROVE_ETOOBIG : 0;
}

int tv_batch_add_op(trove_batch *b, int type, const void *key, size_t klen,
                    const void *val, size_t vlen, int64_t expire_at)
{
	if (!b)
		return TROVE_EINVAL;
	int rc = check_key(key, klen);
	if (!rc)
		rc = check_value(val, vlen);
	if (rc)
		return rc;
	if (expire_at < 0)
		return TROVE_EINVAL;
	rc = tv_buf_reserve(&b->ops, 1 + 2 * TV_MAX_VARINT32 + klen + 8 + vlen);
	if (rc)
		return rc;
	/* The room is there: encode in place rather than append piece by piece. */
	char *p = b->ops.data + b->ops.len;
	*p++ = (char)type;
	p = tv_encode_lenprefixed(p, key, (uint32_t)klen);
	switch (type) {
	case TV_OP_PUT_EXP:
	case TV_OP_EXPIRE:
	case TV_OP_REAP:
		tv_put_fixed64(p, (uint64_t)expire_at);
		p += 8;
		break;
	default:
		break;
	}
	if (type == TV_OP_PUT || type == TV_OP_PUT_EXP || type == TV_OP_PUT_KEEP)
		p = tv_encode_lenprefixed(p, val, (uint32_t)vlen);
	b->ops.len = (size_t)(p - b->ops.data);
	b->nops++;
	return 0;
}

int trove_batch_put(trove_batch *b, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
	return tv_batch_add_op(b, TV_OP_PUT, key, klen, val, vlen, 0);
}

int trove_batch_put_ttl(trove_batch *b, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t expire_at_ms)
{
	if (expire_at_ms == 0)
		return trove_batch_put(b, key, klen, val, vlen);
	return tv_batch_add_op(b, TV_OP_PUT_EXP, key, klen, val, vlen, expire_at_ms);
}

int trove_batch_del(trove_batch *b, const void *key, size_t klen)
{
	return tv_batch_add_op(b, TV_OP_DEL, key, klen, NULL, 0, 0);
}

int trove_batch_expire_at(trove_batch *b, const void *key, size_t klen,
                          int64_t expire_at_ms)
{
	return tv_batch_add_op(b, TV_OP_EXPIRE, key, klen, NULL, 0, expire_at_ms);
}

int trove_batch_require(trove_batch *b, const void *key, size_t klen,
                        const trove_cond *cond)
{
	if (!b || !cond)
		return TROVE_EINVAL;
	int rc = check_key(key, klen);
	if (rc)
		return rc;
	if (cond->kind < TROVE_IF_ABSENT || cond->kind > TROVE_IF_UNCHANGED)
		return TROVE_EINVAL;
	if (cond->kind == TROVE_IF_VALUE && (rc = check_value(cond->value, cond->value_len)))
		return rc;
	rc = tv_buf_reserve(&b->conds, 1 + 2 * TV_MAX_VARINT32 + klen + 16 + cond->value_len);
	if (rc)
		return rc;
	char *p = b->conds.data + b->conds.len;
	*p++ = (char)cond->kind;
	p = tv_encode_lenprefixed(p, key, (uint32_t)klen);
	if (cond->kind == TROVE_IF_VALUE) {
		p = tv_encode_lenprefixed(p, cond->value, (uint32_t)cond->value_len);
	} else if (cond->kind == TROVE_IF_VERSION) {
		tv_put_fixed64(p, cond->version);
		p += 8;
	} else if (cond->kind == TROVE_IF_UNCHANGED) {
		tv_put_fixed64(p, cond->version);
		tv_put_fixed64(p + 8, cond->since);
		p += 16;
	}
	b->conds.len = (size_t)(p - b->conds.data);
	b->nconds++;
	return 0;
}

static const char *get_lp(const char *p, const char *end, tv_slice *s)
{
	uint32_t n;
	p = tv_decode_varint32(p, end, &n);
	if (!p || n > (size_t)(end - p))
		return NULL;
	*s = tv_slice_make(p, n);
	return p + n;
}

/* The buffers are built only by the functions above, so decoding cannot
 * fail on a well-formed batch; a malformed one simply ends early. */
int tv_batch_next_op(const trove_batch *b, size_t *pos, tv_op *op)
{
	if (*pos >= b->ops.len)
		return 0;
	const char *p = b->ops.data + *pos, *end = b->ops.data + b->ops.len;
	op->type = (unsigned char)*p++;
	op->expire_at = 0;
	op->value = tv_slice_make(NULL, 0);
	if (!(p = get_lp(p, end, &op->key)))
		return 0;
	if (op->type == TV_OP_PUT_EXP || op->type == TV_OP_EXPIRE || op->type == TV_OP_REAP) {
		if (end - p < 8)
			return 0;
		op->expire_at = (int64_t)tv_get_fixed64(p);
		p += 8;
	}
	if (op->type == TV_OP_PUT || op->type == TV_OP_PUT_EXP || op->type == TV_OP_PUT_KEEP)
		if (!(p = get_lp(p, end, &op->value)))
			return 0;
	*pos = (size_t)(p - b->ops.data);
	return 1;
}

int tv_batch_next_cond(const trove_batch *b, size_t *pos, tv_op *op)
{
	if (*pos >= b->conds.len)
		return 0;
	const char *p = b->conds.data + *pos, *end = b->conds.data + b->conds.len;
	op->cond = (trove_cond_kind)(unsigned char)*p++;
	op->value = tv_slice_make(NULL, 0);
	op->version = op->since = 0;
	if (!(p = get_lp(p, end, &op->key)))
		return 0;
	if (op->cond == TROVE_IF_VALUE) {
		if (!(p = get_lp(p, end, &op->value)))
			return 0;
	} else if (op->cond == TROVE_IF_VERSION || op->cond == TROVE_IF_UNCHANGED) {
		size_t n = op->cond == TROVE_IF_UNCHANGED ? 16 : 8;
		if ((size_t)(end - p) < n)
			return 0;
		op->version = tv_get_fixed64(p);
		if (n == 16)
			op->since = tv_get_fixed64(p + 8);
		p += n;
	}
	*pos = (size_t)(p - b->conds.data);
	return 1;
}
