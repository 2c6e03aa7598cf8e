/*
 * restore.c - restore an archive set (tools/restore.h).
 *
 * One disk writer serves every archive of the set, so its deferred
 * directory fixups (modes, times) run once at the very end, after the
 * files of every stream are in: a directory restored from stream 0 is
 * not left with the mtime of the moment stream 2 filled it.  The writer
 * works relative to DIR (we chdir there, the archives named by their
 * real paths first) and refuses absolute names,
 * ".." and writing through symlinks.  Holes come back as holes: data is
 * written at the offsets the archive gives, nothing is written between.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/arch.h"
#include "tools/restore.h"
#include "tools/swactl.h"

#define RESTORE_FLAGS (ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | \
	ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | \
	ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_SYMLINKS | \
	ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS)

struct restore {
	char **archives, **paths;
	int narchives, npaths;
	const char *dir;
	bool dry_run;
	struct archive *out;	/* the disk writer; NULL in a dry run */
	struct archive_entry *root;	/* the "." entry, applied last */
	size_t restored, failed;
	unsigned long long bytes;
};

/* rel is one of the PATHs or below one (all when none is given). */
static bool selected(const struct restore *r, const char *rel)
{
	if (!r->npaths)
		return true;
	for (int k = 0; k < r->npaths; k++) {
		size_t n = strlen(r->paths[k]);

		if (!strcmp(r->paths[k], ".") ||
		    (!strncmp(rel, r->paths[k], n) &&
		     (rel[n] == '\0' || rel[n] == '/')))
			return true;
	}
	return false;
}

static void failed(struct restore *r, const char *rel, const char *why)
{
	fprintf(stderr, "swactl: not restored '%s': %s\n", printable(rel), why);
	r->failed++;
}

static int copy_data(struct restore *r, struct archive *in, const char *rel)
{
	const void *buf;
	size_t len;
	int64_t off;
	int st;

	while ((st = archive_read_data_block(in, &buf, &len, &off)) ==
	       ARCHIVE_OK) {
		if (archive_write_data_block(r->out, buf, len, off) < 0) {
			failed(r, rel, archive_error_string(r->out));
			return 0;
		}
		r->bytes += len;
	}
	return st == ARCHIVE_EOF ? 0 : -EIO;
}

/* One selected entry; 0, or -EIO when the archive is damaged. */
static int restore_entry(struct restore *r, struct archive *in,
			 struct archive_entry *e, const char *rel)
{
	const char *hl = archive_entry_hardlink(e);
	char hrel[8192];
	int st;

	if (hl && !selected(r, arch_rel(hl, hrel, sizeof(hrel)))) {
		failed(r, rel, "a hard link to a name not restored");
		return 0;
	}
	r->restored++;
	if (r->dry_run) {
		printf("%s\n", rel);
		r->bytes += hl ? 0 : (unsigned long long)archive_entry_size(e);
		return 0;
	}
	if (!strcmp(rel, ".") && !r->root)
		r->root = archive_entry_clone(e);
	archive_entry_copy_pathname(e, rel);
	if (hl)
		archive_entry_copy_hardlink(e, hrel);
	st = archive_write_header(r->out, e);
	if (st < ARCHIVE_WARN) {
		failed(r, rel, archive_error_string(r->out));
		return st == ARCHIVE_FATAL ? -EIO : 0;
	}
	if (st == ARCHIVE_WARN)
		failed(r, rel, archive_error_string(r->out));
	if (archive_entry_size(e) > 0 && !hl && copy_data(r, in, rel))
		return -EIO;
	if (archive_write_finish_entry(r->out) < ARCHIVE_OK)
		failed(r, rel, archive_error_string(r->out));
	return 0;
}

/* Every selected entry of one archive; 0 or 1 (reported). */
static int restore_archive(struct restore *r, const char *path)
{
	char why[1024], rel[8192];
	struct archive *in = arch_in_open(path, why, sizeof(why));
	struct archive_entry *e;
	int st = ARCHIVE_OK, rc = 0;

	if (!in) {
		fprintf(stderr, "swactl: %s\n", why);
		return 1;
	}
	while (rc == 0 && (st = archive_read_next_header(in, &e)) ==
			  ARCHIVE_OK) {
		arch_rel(archive_entry_pathname(e), rel, sizeof(rel));
		if (selected(r, rel))
			rc = restore_entry(r, in, e, rel);
	}
	if (rc || st != ARCHIVE_EOF) {
		fprintf(stderr, "swactl: archive '%s' is damaged: %s\n",
			printable(path), archive_error_string(in));
		rc = 1;
	}
	archive_read_free(in);
	return rc;
}

static int parse_restore(int argc, char **argv, struct restore *r)
{
	char rel[8192];

	r->archives = calloc((size_t)argc, sizeof(*r->archives));
	r->paths = calloc((size_t)argc, sizeof(*r->paths));
	if (!r->archives || !r->paths)
		return fprintf(stderr, "swactl: out of memory\n"), 1;
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--to") && k + 1 < argc && !r->dir)
			r->dir = argv[++k];
		else if (!strcmp(argv[k], "--to"))
			return usage_error("restore wants one --to DIR");
		else if (!strcmp(argv[k], "--dry-run"))
			r->dry_run = true;
		else if (argv[k][0] == '-' && argv[k][1])
			return usage_error("unknown restore option '%s'",
					   printable(argv[k]));
		else if (!r->dir) {
			r->archives[r->narchives] = realpath(argv[k], NULL);
			if (!r->archives[r->narchives++])
				return fprintf(stderr, "swactl: cannot read "
					       "archive '%s': %s\n",
					       printable(argv[k]),
					       strerror(errno)), 1;
		} else if (!(r->paths[r->npaths++] =
			   strdup(arch_rel(argv[k], rel, sizeof(rel)))))
			return fprintf(stderr, "swactl: out of memory\n"), 1;
	}
	if (!r->narchives)
		return usage_error("restore wants at least one ARCHIVE");
	if (!r->dir)
		return usage_error("restore wants --to DIR");
	return 0;
}

/* Whether archive path starts with the tree's root (a save's stream 0). */
static bool holds_root(const char *path)
{
	char why[1024], rel[8192];
	struct archive *in = arch_in_open(path, why, sizeof(why));
	struct archive_entry *e;
	bool root = in && archive_read_next_header(in, &e) == ARCHIVE_OK &&
		    !strcmp(arch_rel(archive_entry_pathname(e), rel,
				     sizeof(rel)), ".");

	if (in)
		archive_read_free(in);
	return root;
}

/*
 * Stream 0 first, whatever order the archives were named in: it holds
 * the directories, and a directory the writer finds already made (by a
 * file of another stream) gets its times at once instead of at the end.
 */
static void root_first(struct restore *r)
{
	for (int k = 1; k < r->narchives; k++)
		if (holds_root(r->archives[k])) {
			char *a = r->archives[k];

			memmove(r->archives + 1, r->archives,
				(size_t)k * sizeof(*r->archives));
			r->archives[0] = a;
			return;
		}
}

/*
 * chdir to DIR (made, 0700 until the archive's root sets its mode, when it
 * is missing and its parent exists; not in a dry run) and set up the disk
 * writer; 0 or 1 (reported).
 */
static int open_target(struct restore *r)
{
	int flags = RESTORE_FLAGS;

	if (!r->dry_run && mkdir(r->dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "swactl: cannot make '%s' to restore into: %s\n",
			printable(r->dir), strerror(errno));
		return 1;
	}
	if (chdir(r->dir) < 0) {
		fprintf(stderr, "swactl: cannot restore into '%s': %s\n",
			printable(r->dir), strerror(errno));
		return 1;
	}
	if (r->dry_run)
		return 0;
	if (geteuid() != 0)
		flags &= ~ARCHIVE_EXTRACT_OWNER;	/* chown would fail */
	r->out = archive_write_disk_new();
	if (!r->out || archive_write_disk_set_options(r->out, flags)) {
		fprintf(stderr, "swactl: out of memory\n");
		return 1;
	}
	return 0;
}

/*
 * DIR itself takes the mode, owner and times of the archive's root: the
 * disk writer leaves an existing "." as it is, and its own fixups (which
 * would change DIR's mtime after we set it) are done by now.
 */
static void restore_root(struct restore *r)
{
	struct archive_entry *e = r->root;
	struct timespec ts[2] = {
		{ archive_entry_atime(e), archive_entry_atime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};

	if ((geteuid() == 0 && lchown(".", (uid_t)archive_entry_uid(e),
				      (gid_t)archive_entry_gid(e)) < 0) ||
	    chmod(".", archive_entry_perm(e)) < 0 ||
	    utimensat(AT_FDCWD, ".", ts, 0) < 0)
		failed(r, ".", strerror(errno));
	archive_entry_free(e);
}

int restore_main(int argc, char **argv)
{
	struct restore r = { 0 };
	int rc = parse_restore(argc, argv, &r);

	if (rc == 0) {
		root_first(&r);
		rc = open_target(&r);
	}
	for (int k = 0; rc == 0 && k < r.narchives; k++)
		rc = restore_archive(&r, r.archives[k]);
	if (r.out && archive_write_close(r.out) != ARCHIVE_OK) {
		fprintf(stderr, "swactl: restoring directory modes and times "
			"in '%s': %s\n", printable(r.dir),
			archive_error_string(r.out));
		r.failed++;
	}
	if (r.root && rc == 0)
		restore_root(&r);
	else if (r.root)
		archive_entry_free(r.root);
	if (rc == 0)
		printf("%s %zu objects, %llu bytes of data%s into %s\n",
		       r.dry_run ? "would restore" : "restored", r.restored,
		       r.bytes, r.failed ? " (some failed, named above)" : "",
		       r.dir);
	if (rc == 0 && r.failed)
		rc = EXIT_SKIPPED;
	if (r.out)
		archive_write_free(r.out);
	for (int k = 0; k < r.npaths; k++)
		free(r.paths[k]);
	for (int k = 0; k < r.narchives; k++)
		free(r.archives[k]);
	free(r.paths);
	free(r.archives);
	return rc;
}
