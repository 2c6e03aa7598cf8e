/*
 * manifest.c - encode, decode, compare and load save manifests
 * (tools/manifest.h has the format).
 *
 * Decoding is strict: a manifest may come from another machine or have
 * been damaged, and verify must report a bad line rather than compare
 * against half a record.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/manifest.h"

struct mf_set {
	struct mf_rec *r;	/* sorted by path once mf_sort ran */
	size_t n, cap;
};

void mf_rec_free(struct mf_rec *r)
{
	free(r->path);
	free(r->target);
	free(r->link);
	free(r->xattr);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

static int dup_str(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -ENOMEM : 0;
}

int mf_rec_copy(const struct mf_rec *src, struct mf_rec *dst)
{
	*dst = *src;
	if (dup_str(src->path, &dst->path) | dup_str(src->target, &dst->target) |
	    dup_str(src->link, &dst->link) | dup_str(src->xattr, &dst->xattr) |
	    dup_str(src->error, &dst->error)) {
		mf_rec_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool must_escape(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '%' || c == ',' || c == '=' ||
	       c == '\\';
}

static void put_enc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (must_escape((unsigned char)*s))
			fprintf(f, "%%%02x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode the n bytes at s; NULL when malformed (or out of memory). */
static char *dec(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		if (s[k] != '%') {
			if (must_escape((unsigned char)s[k]))
				goto bad;
			*o++ = s[k];
			continue;
		}
		if (k + 2 >= n || hexval(s[k + 1]) < 0 ||
		    hexval(s[k + 2]) < 0)
			goto bad;
		*o = (char)(hexval(s[k + 1]) << 4 | hexval(s[k + 2]));
		if (!*o)
			goto bad;
		o++;
		k += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int mf_xattr_add(struct mf_rec *r, const char *name, uint64_t h)
{
	char *item = NULL, *list = NULL;
	size_t isz = 0, lsz = 0, at = 0;
	FILE *f = open_memstream(&item, &isz);

	if (!f)
		return -ENOMEM;
	put_enc(f, name);
	fprintf(f, "=%016" PRIx64, h);
	if (fclose(f))
		return -ENOMEM;
	/* items are "ENC=HEX"; ENC has no '=' or ',': compare up to '=' */
	while (r->xattr && r->xattr[at]) {
		size_t len = strcspn(r->xattr + at, ",");
		size_t kn = strcspn(r->xattr + at, "=");
		size_t in = strcspn(item, "=");
		int c = strncmp(r->xattr + at, item, kn < in ? kn : in);

		if (c == 0 && kn == in) {	/* the same name: keep one */
			free(item);
			return 0;
		}
		if (c > 0 || (c == 0 && kn > in))
			break;
		at += len + (r->xattr[at + len] == ',');
	}
	f = open_memstream(&list, &lsz);
	if (!f) {
		free(item);
		return -ENOMEM;
	}
	if (at)
		fprintf(f, "%.*s%s", (int)at, r->xattr,
			r->xattr[at - 1] == ',' ? "" : ",");
	fputs(item, f);
	if (r->xattr && r->xattr[at])
		fprintf(f, ",%s", r->xattr + at);
	free(item);
	if (fclose(f))
		return -ENOMEM;
	free(r->xattr);
	r->xattr = list;
	return 0;
}

int mf_write(FILE *f, const struct mf_rec *r)
{
	put_enc(f, r->path);
	fprintf(f, "\ttype=%c mode=%04o uid=%" PRIu32 " gid=%" PRIu32,
		r->type, r->mode & 07777, r->uid, r->gid);
	if (r->type == 'f' || r->type == 'l')
		fprintf(f, " size=%" PRIu64, r->size);
	fprintf(f, " mtime=%" PRId64 ".%09ld", r->mtime_s, r->mtime_ns);
	if (r->has_hash)
		fprintf(f, " xxh3=%016" PRIx64, r->hash);
	if (r->target) {
		fputs(" target=", f);
		put_enc(f, r->target);
	}
	if (r->link) {
		fputs(" link=", f);
		put_enc(f, r->link);
	}
	if (r->type == 'c' || r->type == 'b')
		fprintf(f, " rdev=%u,%u", r->rmajor, r->rminor);
	if (r->xattr)
		fprintf(f, " xattr=%s", r->xattr);
	if (r->has_acl)
		fprintf(f, " acl=%016" PRIx64, r->acl);
	if (r->error) {
		fputs(" error=", f);
		put_enc(f, r->error);
	}
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

/* Strict unsigned decimal (base 10) or hex (base 16) of the whole word. */
static int num(const char *s, int base, uint64_t max, uint64_t *out)
{
	char *end;
	uint64_t v;

	if (!*s || !strchr(base == 16 ? "0123456789abcdef" : "0123456789",
			   *s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_mtime(const char *v, struct mf_rec *r)
{
	const char *dot = strchr(v, '.');
	char sec[24];
	uint64_t s, ns;
	bool neg = *v == '-';

	if (!dot || dot - v - neg >= (long)sizeof(sec) || strlen(dot + 1) != 9)
		return -EINVAL;
	memcpy(sec, v + neg, dot - v - neg);
	sec[dot - v - neg] = '\0';
	if (num(sec, 10, INT64_MAX, &s) || num(dot + 1, 10, 999999999, &ns))
		return -EINVAL;
	r->mtime_s = neg ? -(int64_t)s : (int64_t)s;
	r->mtime_ns = (long)ns;
	return 0;
}

static int parse_rdev(const char *v, struct mf_rec *r)
{
	const char *comma = strchr(v, ',');
	char ma[16];
	uint64_t a, b;

	if (!comma || comma - v >= (long)sizeof(ma))
		return -EINVAL;
	memcpy(ma, v, comma - v);
	ma[comma - v] = '\0';
	if (num(ma, 10, UINT32_MAX, &a) || num(comma + 1, 10, UINT32_MAX, &b))
		return -EINVAL;
	r->rmajor = (unsigned)a;
	r->rminor = (unsigned)b;
	return 0;
}

/* "ENC=HEX,..." with every name decodable and every hash 16 hex digits. */
static bool xattr_ok(const char *v)
{
	while (*v) {
		size_t len = strcspn(v, ","), kn = strcspn(v, "=");
		char *name = kn < len ? dec(v, kn) : NULL;
		uint64_t h;
		char hex[17];

		if (!name || len - kn - 1 != 16)
			return free(name), false;
		free(name);
		memcpy(hex, v + kn + 1, 16);
		hex[16] = '\0';
		if (num(hex, 16, UINT64_MAX, &h))
			return false;
		v += len + (v[len] == ',');
		if (v[-1] == ',' && !*v)
			return false;
	}
	return true;
}

static int parse_field(const char *key, const char *v, struct mf_rec *r)
{
	uint64_t x;

	if (!strcmp(key, "type") && strlen(v) == 1 && strchr("fdlpcbs", *v))
		return (r->type = *v), 0;
	if (!strcmp(key, "mode") && !num(v, 8, 07777, &x))
		return (r->mode = (unsigned)x), 0;
	if (!strcmp(key, "uid") && !num(v, 10, UINT32_MAX, &x))
		return (r->uid = (uint32_t)x), 0;
	if (!strcmp(key, "gid") && !num(v, 10, UINT32_MAX, &x))
		return (r->gid = (uint32_t)x), 0;
	if (!strcmp(key, "size"))
		return num(v, 10, INT64_MAX, &r->size);
	if (!strcmp(key, "mtime"))
		return parse_mtime(v, r);
	if (!strcmp(key, "xxh3") && strlen(v) == 16 && !num(v, 16, UINT64_MAX,
							      &r->hash))
		return (r->has_hash = true), 0;
	if (!strcmp(key, "acl") && strlen(v) == 16 && !num(v, 16, UINT64_MAX,
							     &r->acl))
		return (r->has_acl = true), 0;
	if (!strcmp(key, "rdev"))
		return parse_rdev(v, r);
	if (!strcmp(key, "target") && !r->target)
		return (r->target = dec(v, strlen(v))) ? 0 : -EINVAL;
	if (!strcmp(key, "link") && !r->link)
		return (r->link = dec(v, strlen(v))) ? 0 : -EINVAL;
	if (!strcmp(key, "error") && !r->error)
		return (r->error = dec(v, strlen(v))) ? 0 : -EINVAL;
	if (!strcmp(key, "xattr") && !r->xattr && xattr_ok(v))
		return (r->xattr = strdup(v)) ? 0 : -ENOMEM;
	return -EINVAL;
}

int mf_parse(const char *line, struct mf_rec *r)
{
	size_t n = strcspn(line, "\n"), plen = strcspn(line, "\t");
	char *copy = NULL, *save = NULL;
	int rc = -EINVAL;

	memset(r, 0, sizeof(*r));
	if (plen >= n || !plen || (line[n] && line[n + 1]))
		return -EINVAL;
	r->path = dec(line, plen);
	copy = strndup(line + plen + 1, n - plen - 1);
	if (!r->path || !copy)
		goto out;
	for (char *w = strtok_r(copy, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '=');

		if (!eq)
			goto out;
		*eq = '\0';
		rc = parse_field(w, eq + 1, r);
		if (rc)
			goto out;
	}
	rc = r->type ? 0 : -EINVAL;
out:
	free(copy);
	if (rc)
		mf_rec_free(r);
	return rc;
}

static void add_diff(char *out, size_t size, int *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_diff(char *out, size_t size, int *n, const char *fmt, ...)
{
	size_t used = strlen(out);
	va_list ap;

	if (*n && used < size)
		used += (size_t)snprintf(out + used, size - used, "; ");
	if (used < size) {
		va_start(ap, fmt);
		vsnprintf(out + used, size - used, fmt, ap);
		va_end(ap);
	}
	(*n)++;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static const char *or_none(const char *s)
{
	return s ? s : "(none)";
}

int mf_diff(const struct mf_rec *w, const struct mf_rec *g, char *out,
	    size_t size)
{
	int n = 0;

	if (size)
		out[0] = '\0';
	if (w->error)
		return add_diff(out, size, &n, "not saved (%s at save time)",
				w->error), n;
	if (w->type != g->type)
		return add_diff(out, size, &n, "type %c != %c", w->type,
				g->type), n;
	if (w->mode != g->mode)
		add_diff(out, size, &n, "mode %04o != %04o", w->mode, g->mode);
	if (w->uid != g->uid || w->gid != g->gid)
		add_diff(out, size, &n, "owner %u:%u != %u:%u", w->uid, w->gid,
			 g->uid, g->gid);
	if (w->size != g->size)
		add_diff(out, size, &n, "size %" PRIu64 " != %" PRIu64,
			 w->size, g->size);
	if (w->mtime_s != g->mtime_s || w->mtime_ns != g->mtime_ns)
		add_diff(out, size, &n, "mtime %" PRId64 ".%09ld != %" PRId64
			 ".%09ld", w->mtime_s, w->mtime_ns, g->mtime_s,
			 g->mtime_ns);
	if (w->has_hash != g->has_hash || w->hash != g->hash)
		add_diff(out, size, &n, "contents xxh3 %016" PRIx64 " != %016"
			 PRIx64, w->hash, g->hash);
	if (!str_eq(w->target, g->target))
		add_diff(out, size, &n, "target %s != %s", or_none(w->target),
			 or_none(g->target));
	if (!str_eq(w->link, g->link))
		add_diff(out, size, &n, "hard link %s != %s", or_none(w->link),
			 or_none(g->link));
	if (w->rmajor != g->rmajor || w->rminor != g->rminor)
		add_diff(out, size, &n, "rdev %u,%u != %u,%u", w->rmajor,
			 w->rminor, g->rmajor, g->rminor);
	if (!str_eq(w->xattr, g->xattr))
		add_diff(out, size, &n, "xattrs %s != %s", or_none(w->xattr),
			 or_none(g->xattr));
	if (w->has_acl != g->has_acl || w->acl != g->acl)
		add_diff(out, size, &n, "acl differs");
	return n;
}

struct mf_set *mf_set_new(void)
{
	return calloc(1, sizeof(struct mf_set));
}

int mf_add(struct mf_set *s, struct mf_rec *r)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct mf_rec *nr = realloc(s->r, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		s->r = nr;
		s->cap = cap;
	}
	s->r[s->n++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct mf_rec *)a)->path,
		      ((const struct mf_rec *)b)->path);
}

void mf_sort(struct mf_set *s)
{
	qsort(s->r, s->n, sizeof(*s->r), by_path);
}

size_t mf_count(const struct mf_set *s)
{
	return s->n;
}

struct mf_rec *mf_at(struct mf_set *s, size_t k)
{
	return &s->r[k];
}

struct mf_rec *mf_find(struct mf_set *s, const char *path)
{
	struct mf_rec key = { .path = (char *)path };

	if (!s->n)
		return NULL;
	return bsearch(&key, s->r, s->n, sizeof(*s->r), by_path);
}

void mf_set_free(struct mf_set *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->n; k++)
		mf_rec_free(&s->r[k]);
	free(s->r);
	free(s);
}

/* Reject a set where one path has two records: verify could not tell. */
static int check_unique(struct mf_set *s, const char *path, char *why,
			size_t size)
{
	for (size_t k = 1; k < s->n; k++)
		if (!strcmp(s->r[k - 1].path, s->r[k].path)) {
			snprintf(why, size, "manifest '%s': two records for "
				 "one path", path);
			return -EINVAL;
		}
	return 0;
}

int mf_load(const char *path, struct mf_set **out, char *why, size_t size)
{
	FILE *f = fopen(path, "re");
	struct mf_set *s = mf_set_new();
	char *line = NULL;
	size_t cap = 0, no = 1;
	struct mf_rec r;
	int rc = -EINVAL;

	if (!f || !s) {
		rc = -errno;
		snprintf(why, size, "cannot read manifest '%s': %s", path,
			 strerror(errno));
		goto out;
	}
	if (getline(&line, &cap, f) < 0 || strcmp(line, MF_HEADER "\n")) {
		snprintf(why, size, "'%s' is not a swafs manifest (no '"
			 MF_HEADER "' line)", path);
		goto out;
	}
	while (getline(&line, &cap, f) > 0 && ++no) {
		rc = mf_parse(line, &r);
		if (rc || (rc = mf_add(s, &r))) {
			mf_rec_free(&r);
			snprintf(why, size, "manifest '%s' line %zu: %s", path,
				 no, rc == -ENOMEM ? "out of memory"
						   : "malformed record");
			goto out;
		}
	}
	rc = ferror(f) ? -EIO : 0;
	if (rc)
		snprintf(why, size, "cannot read manifest '%s': %s", path,
			 strerror(EIO));
	mf_sort(s);
	if (!rc)
		rc = check_unique(s, path, why, size);
out:
	free(line);
	if (f)
		fclose(f);
	if (rc)
		mf_set_free(s);
	else
		*out = s;
	return rc;
}
