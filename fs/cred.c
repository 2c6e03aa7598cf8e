/*
 * cred.c - per-thread identity switching for object creation.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/cred.h"

#define CRED_MAX_GROUPS 256

int cred_enter(fuse_req_t req, struct cred_saved *sv)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	gid_t groups[CRED_MAX_GROUPS];
	int n;

	sv->switched = false;
	if (!fs_ctx(req)->as_caller || (fc->uid == 0 && fc->gid == 0))
		return 0;
	n = fuse_req_getgroups(req, CRED_MAX_GROUPS, groups);
	if (n < 0 || n > CRED_MAX_GROUPS)
		n = 0;	/* kernel without the info: primary group only */
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
		return -errno;
	syscall(SYS_setfsgid, fc->gid);
	syscall(SYS_setfsuid, fc->uid);
	sv->switched = true;
	return 0;
}

void cred_leave(struct cred_saved *sv)
{
	int saved = errno;

	if (sv->switched) {
		/* fsuid back to 0 also restores the filesystem capabilities */
		syscall(SYS_setfsuid, 0);
		syscall(SYS_setfsgid, 0);
		syscall(SYS_setgroups, (size_t)0, NULL);
	}
	errno = saved;
}
