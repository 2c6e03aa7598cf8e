/*
 * fuzz_pstore.c - libFuzzer harness for the store record decoder
 * (pstore_rec_decode, the code every pstore_get runs on a record read back
 * from memory or a spilled segment file).
 *
 * Input: byte 0 picks a mode, bytes 1-3 the raw_len the store's slot
 * claims, the rest is the stored record.  Mode bit 0 "re-seals" the record:
 * the harness writes the right XXH64 into the header, so the fuzzer gets
 * past the checksum into the header checks and the lz4 decoder (a forged
 * record, as an attacker with write access to the store could make).
 * Mode bit 2 builds a valid lz4 record of the payload (as pstore_put
 * would) and XORs one byte of it, chosen by the raw_len bytes, with byte
 * 0: near-valid records reach the decoder's success path and every check
 * on the way.
 * Mode bit 1 instead stores the payload through the real pstore_put and
 * reads it back, then inverts one byte of the stored record: the read
 * must fail with EIO, never return other bytes (G3).
 *
 * buf is exactly raw_len bytes on the heap, so ASan sees any overrun.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lz4.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot/pstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pstore *the_store;
static char store_dir[4096];

static void store_free(void)
{
	pstore_free(the_store);
	rmdir(store_dir);
}

/* One memory-only store for the whole run, in a directory under $TMPDIR. */
static struct pstore *store(void)
{
	struct pstore_limits lim = { .mem_max = 64u << 20 };
	const char *tmp = getenv("TMPDIR");

	if (the_store)
		return the_store;
	snprintf(store_dir, sizeof(store_dir), "%s/swafs-fuzz-pstore.XXXXXX",
		 tmp ? tmp : "/tmp");
	if (!mkdtemp(store_dir) || pstore_create(store_dir, &lim,
						 &the_store) < 0)
		abort();
	atexit(store_free);
	return the_store;
}

/* A record forged from fuzz bytes, its checksum made right on request. */
static void decode_forged(const uint8_t *rec, size_t size, uint32_t raw_len,
			  int reseal)
{
	uint8_t *copy = malloc(size ? size : 1), *buf = malloc(raw_len ?: 1);
	uint64_t h;

	if (!copy || !buf)
		abort();
	memcpy(copy, rec, size);
	if (reseal && size >= PSTORE_REC_HDR_SIZE) {
		h = XXH64(copy + PSTORE_REC_HDR_SIZE,
			  size - PSTORE_REC_HDR_SIZE, 0);
		for (int i = 0; i < 8; i++)
			copy[16 + i] = (uint8_t)(h >> (8 * i));
	}
	if (pstore_rec_decode(copy, size, raw_len, buf) == 0 &&
	    size >= PSTORE_REC_HDR_SIZE && raw_len == size -
	    PSTORE_REC_HDR_SIZE && copy[6] == 1)	/* raw: the payload */
		assert(!memcmp(buf, copy + PSTORE_REC_HDR_SIZE, raw_len));
	free(copy);
	free(buf);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid lz4 record of d[0, len) with byte pos % size XORed with x. */
static void decode_mutated(const uint8_t *d, size_t len, uint32_t pos,
			   uint8_t x, int reseal)
{
	int bound = LZ4_compressBound((int)len), c;
	uint8_t *rec = malloc(PSTORE_REC_HDR_SIZE + (size_t)bound);

	if (!rec)
		abort();
	c = LZ4_compress_default((const char *)d, (char *)rec +
				 PSTORE_REC_HDR_SIZE, (int)len, bound);
	if (c <= 0 || (size_t)c >= len)
		c = 0;	/* the store keeps such data raw */
	if (c > 0) {
		put_le(rec, 0x52505753u, 4);	/* the format in pstore.h */
		put_le(rec + 4, 1, 2);
		put_le(rec + 6, 2, 2);
		put_le(rec + 8, len, 4);
		put_le(rec + 12, (uint64_t)c, 4);
		put_le(rec + 16, XXH64(rec + PSTORE_REC_HDR_SIZE,
				       (size_t)c, 0), 8);
		rec[pos % (PSTORE_REC_HDR_SIZE + (unsigned)c)] ^= x;
		decode_forged(rec, PSTORE_REC_HDR_SIZE + (size_t)c,
			      (uint32_t)len, reseal);
	}
	if (c > 0 && !x) {	/* untouched: the payload comes back */
		uint8_t *buf = malloc(len ?: 1);

		if (!buf)
			abort();
		assert(pstore_rec_decode(rec, PSTORE_REC_HDR_SIZE + (size_t)c,
					 (uint32_t)len, buf) == 0);
		assert(!memcmp(buf, d, len));
		free(buf);
	}
	free(rec);
}

/* Store data, read it back whole, then corrupt one byte: EIO only. */
static void put_corrupt_get(const uint8_t *d, size_t len, uint32_t pos)
{
	struct pstore *ps = store();
	uint8_t *buf = malloc(len ?: 1);
	struct pstore_stats before, after;
	uint64_t ref;
	size_t got;
	int rc;

	if (!buf)
		abort();
	pstore_stats(ps, &before);
	if (pstore_put(ps, d, len, &ref) < 0)
		abort();
	pstore_stats(ps, &after);	/* the stored size of this record */
	assert(pstore_get(ps, ref, buf, len, &got) == 0 && got == len);
	assert(!len || !memcmp(buf, d, len));
	rc = pstore_test_corrupt(ps, ref,
				 pos % (after.mem_bytes - before.mem_bytes));
	assert(rc == 0);
	rc = pstore_get(ps, ref, buf, len, &got);
	assert(rc == -EIO);
	pstore_drop(ps, ref);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t raw_len;

	if (size < 4)
		return 0;
	raw_len = ((uint32_t)data[1] | (uint32_t)data[2] << 8 |
		   (uint32_t)data[3] << 16) % (PSTORE_REC_MAX + 1);
	if (data[0] & 2)
		put_corrupt_get(data + 4, size - 4, raw_len);
	else if (data[0] & 4)
		decode_mutated(data + 4, size - 4, raw_len, data[0] & 0xf8,
			       data[0] & 1);
	else
		decode_forged(data + 4, size - 4, raw_len, data[0] & 1);
	return 0;
}
