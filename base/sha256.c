/* sha256.c - SHA-256 of bytes, streams and files through libcrypto (see base.h). */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

/* ---- hashing ---- */

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
}

void hx_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) BUG("EVP_Digest failed");
    to_hex(md, n, hex);
}

void hx_sha256_init(hx_sha256 *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) BUG("EVP sha256 init failed");
}

void hx_sha256_update(hx_sha256 *h, const void *p, size_t n)
{
    if (EVP_DigestUpdate(h->ctx, p, n) != 1) BUG("EVP sha256 update failed");
}

void hx_sha256_final(hx_sha256 *h, char hex[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, d, &n) != 1 || n != 32) BUG("EVP sha256 final failed");
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    to_hex(d, n, hex);
}

void hx_sha256_abort(hx_sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int hx_sha256_file_hex(const char *path, char hex[65])
{
    /* Streamed, so no size cap; but a device or FIFO (a stage's output, a symlink) would never end. */
    int fd = hx_open_input(path, HX_IN_STREAM, NULL);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return error("cannot open '%s': %s", path, strerror(errno));
    }
    hx_sha256 h;
    hx_sha256_init(&h);
    static _Thread_local unsigned char buf[1 << 16];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) hx_sha256_update(&h, buf, r);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        hx_sha256_abort(&h);
        return error("cannot read '%s'", path);
    }
    hx_sha256_final(&h, hex);
    return 0;
}
