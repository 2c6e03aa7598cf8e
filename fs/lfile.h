/*
 * lfile.h - live tree: open files and directories.
 *
 * An open file's fi->fh is a struct lfile holding the backing descriptor,
 * the only descriptor an open file costs: an open-unlinked file stays
 * reachable for getattr, setattr and xattrs through its file handle,
 * which the kernel resolves as long as the file is open.
 */
#ifndef SWAFS_LFILE_H
#define SWAFS_LFILE_H

#include "fs/ctx.h"

/* The backing descriptor of an open regular file. */
int lfile_fd(const struct fuse_file_info *fi);

void lfile_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi);
void lfile_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void lfile_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void lfile_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		     off_t off, struct fuse_file_info *fi);
void lfile_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void lfile_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void lfile_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void lfile_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void lfile_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void lfile_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void lfile_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void lfile_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);
void lfile_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi);
void lfile_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi);
void lfile_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags);
/* flock(2): the txn control file, or the backing file (fs/locks.h). */
void lfile_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		 int op);
void lfile_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		 size_t in_bufsz, size_t out_bufsz);

#endif
