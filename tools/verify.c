/*
 * verify.c - compare an archive set with a manifest (tools/verify.h).
 *
 * Hard links: an archive holds the data under a group's first name and a
 * link entry (size 0) for every other name; the record of a link entry
 * takes its contents, size and xattrs from the name it links to, and
 * both get the first name as their label, which is what the save's
 * manifest says.  Against a checkpoint, the manifest is made from its
 * view the way save makes one, so both sides are hashed alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/parse.h"
#include "tools/arch.h"
#include "tools/manifest.h"
#include "tools/saveview.h"
#include "tools/savejob.h"
#include "tools/swactl.h"
#include "tools/verify.h"

struct verify {
	char **archives;
	int narchives;
	const char *manifest;
	const char *mnt, *name;
	size_t differences;
};

static void differ(struct verify *v, const char *path, const char *what)
{
	printf("%s: %s\n", printable(path), what);
	v->differences++;
}

/* A link entry's record gets the contents of the name it links to. */
static void resolve_links(struct mf_set *got)
{
	for (size_t k = 0; k < mf_count(got); k++) {
		struct mf_rec *r = mf_at(got, k), *t;

		if (!r->link || !strcmp(r->link, r->path) ||
		    !(t = mf_find(got, r->link)))
			continue;
		r->type = t->type;
		r->rmajor = t->rmajor;
		r->rminor = t->rminor;
		free(r->target);
		r->target = t->target ? strdup(t->target) : NULL;
		r->size = t->size;
		r->has_hash = t->has_hash;
		r->hash = t->hash;
		r->has_acl = t->has_acl;
		r->acl = t->acl;
		free(r->xattr);
		r->xattr = t->xattr ? strdup(t->xattr) : NULL;
		if (!t->link)
			t->link = strdup(t->path);
	}
}

/* One entry into got; 0, or -EIO when the archive is damaged there. */
static int read_entry(struct verify *v, struct archive *a,
		      struct archive_entry *e, struct mf_set *got,
		      char *why, size_t size)
{
	struct mf_rec r;
	const char *hl = archive_entry_hardlink(e);
	char rel[8192];
	int rc = arch_rec_of(e, &r);

	if (rc == -EINVAL) {
		differ(v, archive_entry_pathname(e), "an entry of a type a "
		       "save never writes");
		return 0;
	}
	if (rc)
		return snprintf(why, size, "out of memory"), -ENOMEM;
	if (hl && !(r.link = strdup(arch_rel(hl, rel, sizeof(rel))))) {
		mf_rec_free(&r);
		return snprintf(why, size, "out of memory"), -ENOMEM;
	}
	if (r.type == 'f' && !hl) {
		rc = arch_in_hash(a, r.size, &r.hash, why, size);
		r.has_hash = rc == 0;
	}
	if (rc == 0 && mf_find(got, r.path))
		differ(v, r.path, "more than once in the archives");
	else if (rc == 0)
		rc = mf_add(got, &r);
	mf_rec_free(&r);
	return rc;
}

/* Every entry of one archive into got (sorted after each archive). */
static int read_archive(struct verify *v, const char *path,
			struct mf_set *got)
{
	char why[1024], line[1400];
	struct archive *a = arch_in_open(path, why, sizeof(why));
	struct archive_entry *e;
	int rc = 0, st;

	if (!a) {
		differ(v, path, why);
		return 0;
	}
	while (rc == 0 && (st = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		rc = read_entry(v, a, e, got, why, sizeof(why));
		mf_sort(got);
		if (rc == -EIO) {
			snprintf(line, sizeof(line), "archive damaged in entry "
				 "'%s': %s", printable(archive_entry_pathname(e)),
				 why);
			differ(v, path, line);
		}
	}
	if (rc == 0 && st != ARCHIVE_EOF) {
		snprintf(line, sizeof(line), "archive damaged: %s",
			 archive_error_string(a));
		differ(v, path, line);
	}
	archive_read_free(a);
	return rc == -ENOMEM ? rc : 0;
}

static void compare(struct verify *v, struct mf_set *want, struct mf_set *got)
{
	char diff[2048];

	for (size_t k = 0; k < mf_count(want); k++) {
		struct mf_rec *w = mf_at(want, k), *g = mf_find(got, w->path);

		if (w->error && v->mnt)
			differ(v, w->path, "cannot be read from the checkpoint "
			       "(EIO), not compared");
		else if (!g && !w->error)
			differ(v, w->path, "missing from the archives");
		else if (mf_diff(w, g ? g : w, diff, sizeof(diff)))
			differ(v, w->path, diff);
	}
	for (size_t k = 0; k < mf_count(got); k++)
		if (!mf_find(want, mf_at(got, k)->path))
			differ(v, mf_at(got, k)->path, "in the archives, not in "
			       "the manifest");
}

/*
 * The manifest of checkpoint v->name as its view shows it now (its
 * records in want).  Returns 0, or 1 when the view could not be read.
 */
static int manifest_of_view(struct verify *v, struct mf_set *want)
{
	struct sj_opts o = { .name = v->name, .streams = 1,
			     .compress = "none", .collect = want };
	struct sv_view *view = NULL;
	char retain[16] = "";
	struct tree t;
	struct sj_plan p;
	int rc = sv_attach(v->mnt, v->name, retain, sizeof(retain), &view);

	if (rc)
		return rc;
	if (!strcmp(retain, "saved"))
		fprintf(stderr, "swactl: checkpoint %s was taken with --retain "
			"saved: a block a save has read is gone by design once "
			"it changed, so such files read EIO and cannot be "
			"compared (take it with --retain all to verify "
			"against it)\n", v->name);
	rc = tree_walk(sv_dir(view), &t) ? 1 : 0;
	if (rc == 0) {
		if (sj_plan(&t, 1, &p) == 0) {
			rc = sj_write(&o, sv_dir(view), &t, &p);
			sj_plan_free(&p);
		} else
			rc = 1;
		tree_free(&t);
	}
	if (sv_end(view) && rc == 0)
		rc = 1;
	mf_sort(want);
	return rc == EXIT_SKIPPED ? 0 : rc;
}

static int parse_verify(int argc, char **argv, struct verify *v)
{
	v->archives = calloc((size_t)argc, sizeof(*v->archives));
	if (!v->archives)
		return fprintf(stderr, "swactl: out of memory\n"), 1;
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--manifest") && k + 1 < argc)
			v->manifest = argv[++k];
		else if (!strcmp(argv[k], "--against") && k + 2 < argc) {
			v->mnt = argv[++k];
			v->name = argv[++k];
		} else if (!strcmp(argv[k], "--manifest") ||
			   !strcmp(argv[k], "--against"))
			return usage_error("option '%s' wants %s", argv[k],
					   argv[k][2] == 'm' ? "a FILE"
							     : "MNT NAME");
		else if (argv[k][0] == '-' && argv[k][1])
			return usage_error("unknown verify option '%s'",
					   printable(argv[k]));
		else
			v->archives[v->narchives++] = argv[k];
	}
	if (!v->narchives)
		return usage_error("verify wants at least one ARCHIVE");
	if (!v->manifest == !v->mnt)
		return usage_error("verify wants --manifest FILE or --against "
				   "MNT NAME");
	if (v->name && !parse_name_ok(v->name))
		return usage_error("invalid checkpoint name '%s'",
				   printable(v->name));
	return 0;
}

int verify_main(int argc, char **argv)
{
	struct verify v = { 0 };
	struct mf_set *want = NULL, *got = mf_set_new();
	char why[1024];
	int rc = parse_verify(argc, argv, &v);

	if (rc == 0 && !got)
		rc = (fprintf(stderr, "swactl: out of memory\n"), 1);
	if (rc == 0 && v.manifest && mf_load(v.manifest, &want, why,
					     sizeof(why)))
		rc = (fprintf(stderr, "swactl: %s\n", why), 1);
	if (rc == 0 && v.mnt) {
		rc = sv_signals_catch() ? 1 : 0;
		want = mf_set_new();
		if (rc == 0)
			rc = want ? manifest_of_view(&v, want) : 1;
	}
	for (int k = 0; rc == 0 && k < v.narchives; k++)
		if (read_archive(&v, v.archives[k], got))
			rc = (fprintf(stderr, "swactl: out of memory\n"), 1);
	if (rc == 0) {
		resolve_links(got);
		compare(&v, want, got);
		if (v.differences)
			fprintf(stderr, "swactl: verify: %zu difference%s\n",
				v.differences, v.differences == 1 ? "" : "s");
		else
			printf("verify: %zu objects match\n", mf_count(want));
		rc = v.differences ? 1 : 0;
	}
	mf_set_free(want);
	mf_set_free(got);
	free(v.archives);
	return rc;
}
