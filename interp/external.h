/* external.h - external inputs: files and directories outside the store that a stage reads, digested by content. */
#ifndef HX_EXTERNAL_H
#define HX_EXTERNAL_H

/*
 * The content digest of PATH (absolute): a regular file's sha256, or for a directory the sha256 of
 * "<sha256>  <relative path>\n" of every regular file under it (symbolic links followed, names
 * starting with '.' skipped, sorted by path). Each file's digest is cached in CACHE_DIR (NULL: no
 * cache) under the file's path, and reused while its size, mtime, ctime, inode and device are the
 * same, so a large checkpoint is read once, not at every plan.
 * Returns 0, 1 when PATH does not exist, or -1 with error(...) (a device, a FIFO, unreadable).
 */
int hx_external_digest(const char *cache_dir, const char *path, char hex[65]);

#endif
