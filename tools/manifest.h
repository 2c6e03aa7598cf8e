/*
 * manifest.h - the manifest of a save: one record per object of the tree
 * at T, written beside the archives by `swactl save` and read back by
 * `swactl verify`.  A text file:
 *
 *   swafs-manifest 1
 *   PATH<TAB>type=f mode=0644 uid=0 gid=0 size=N mtime=S.NNNNNNNNN xxh3=H ...
 *
 * PATH and every string value are percent-encoded (bytes <= 0x20, >= 0x7f
 * and "%,=\\" as %XX), so a record is one line of printable words.  Lines
 * after the header come in any order (streams append them as they go).
 * Fields: type (f d l p c b s), mode (permission bits, octal), uid, gid,
 * size (f, l), mtime, xxh3 (f: XXH3-64 of the whole contents, holes as
 * zeros), target (l), link (a hard-link label: the name of the group's
 * first name, on every name of a group of two or more), rdev (c, b:
 * MAJOR,MINOR), xattr (NAME=XXH3,... sorted by name), acl (XXH3 of the
 * ACL in its text form), error (f: the errno name that stopped the read
 * at save time; the archive holds zeros from there on).  Absent fields
 * are left out.
 */
#ifndef SWAFS_MANIFEST_H
#define SWAFS_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MF_HEADER "swafs-manifest 1"

struct mf_rec {
	char *path;		/* relative, "." for the root; owned */
	char type;		/* f d l p c b s */
	unsigned mode;		/* permission bits (07777) */
	uint32_t uid, gid;
	uint64_t size;		/* f, l */
	int64_t mtime_s;
	long mtime_ns;
	bool has_hash;
	uint64_t hash;		/* f: XXH3-64 of the contents */
	unsigned rmajor, rminor;	/* c, b */
	char *target;		/* l: symlink target, raw; or NULL */
	char *link;		/* hard-link label, raw; or NULL */
	char *xattr;		/* "NAME=HEX,..." (names encoded); or NULL */
	bool has_acl;
	uint64_t acl;
	char *error;		/* read error at save time ("EIO"), or NULL */
};

/* Free what r owns and zero it. */
void mf_rec_free(struct mf_rec *r);

/*
 * Add xattr name with value hash h to r's sorted list (a name already
 * there is kept as it is: pax archives may carry one xattr under two
 * headers).  Returns 0 or -ENOMEM.
 */
int mf_xattr_add(struct mf_rec *r, const char *name, uint64_t h);

/* A deep copy of src into dst; 0 or -ENOMEM (dst left empty). */
int mf_rec_copy(const struct mf_rec *src, struct mf_rec *dst);

/* Write r as one line (with its newline) to f; 0 or -errno. */
int mf_write(FILE *f, const struct mf_rec *r);

/*
 * Parse one line (newline optional) into r (zeroed first).  Returns 0,
 * -EINVAL for a malformed line (r left empty), -ENOMEM.
 */
int mf_parse(const char *line, struct mf_rec *r);

/*
 * List in out (one "FIELD WANT != GOT" per difference, separated by
 * "; ") how got differs from want, at most size bytes.  Returns the
 * number of fields that differ (0: equal).
 */
int mf_diff(const struct mf_rec *want, const struct mf_rec *got, char *out,
	    size_t size);

/* A manifest read into memory, sorted by path. */
struct mf_set;

/*
 * Read manifest file path.  Returns 0, or -errno with a one-line reason
 * in why (which line is malformed, or why the file cannot be read).
 */
int mf_load(const char *path, struct mf_set **out, char *why, size_t size);

/* An empty set to fill with mf_add; NULL when out of memory. */
struct mf_set *mf_set_new(void);

/* Move r into s (r is left zeroed); 0 or -ENOMEM.  mf_sort after. */
int mf_add(struct mf_set *s, struct mf_rec *r);

/* Sort s by path (after the last mf_add). */
void mf_sort(struct mf_set *s);

size_t mf_count(const struct mf_set *s);

/* The k-th record in path order. */
struct mf_rec *mf_at(struct mf_set *s, size_t k);

/* The record of path, or NULL. */
struct mf_rec *mf_find(struct mf_set *s, const char *path);

void mf_set_free(struct mf_set *s);

#endif
