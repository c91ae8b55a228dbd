/* checkpoint.c - Hugging Face checkpoints: config.json + model.safetensors or shards with model.safetensors.index.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/hfdir.h"
#include "nn/model.h"

/* The safetensors files of a checkpoint directory, and which file holds each tensor. */
typedef struct ckpt {
    int nfiles;
    st_file *files;
    char **fnames;
} ckpt;

static void ckpt_close(ckpt *k)
{
    for (int i = 0; i < k->nfiles; i++) {
        st_close(&k->files[i]);
        free(k->fnames[i]);
    }
    free(k->files);
    free(k->fnames);
    memset(k, 0, sizeof *k);
}

static int ckpt_open(ckpt *k, const char *dir)
{
    memset(k, 0, sizeof *k);
    char *index = hx_path_join(dir, "model.safetensors.index.json");
    if (hx_file_exists(index)) {
        json_t *root = hx_read_json(index, 0);
        if (!root) {
            free(index);
            return -1;
        }
        json_t *wm = json_object_get(root, "weight_map");
        if (!json_is_object(wm)) {
            json_decref(root);
            int r = error("%s: no \"weight_map\" object", index);
            free(index);
            return r;
        }
        const char *key;
        json_t *v;
        json_object_foreach(wm, key, v) {
            const char *fn = json_string_value(v);
            if (!fn || strchr(fn, '/') || !strcmp(fn, "..")) {
                json_decref(root);
                int r = error("%s: weight_map[\"%s\"] must be a file name in the directory", index, key);
                free(index);
                ckpt_close(k);
                return r;
            }
            int found = 0;
            for (int i = 0; i < k->nfiles && !found; i++) found = !strcmp(k->fnames[i], fn);
            if (found) continue;
            k->fnames = xrealloc(k->fnames, (size_t)(k->nfiles + 1) * sizeof *k->fnames);
            k->files = xrealloc(k->files, (size_t)(k->nfiles + 1) * sizeof *k->files);
            char *path = hx_path_join(dir, fn);
            if (st_open(&k->files[k->nfiles], path)) {
                free(path);
                json_decref(root);
                free(index);
                ckpt_close(k);
                return -1;
            }
            free(path);
            k->fnames[k->nfiles++] = xstrdup(fn);
        }
        json_decref(root);
        free(index);
        if (!k->nfiles) return error("%s: empty weight_map", dir);
        return 0;
    }
    free(index);
    char *path = hx_path_join(dir, "model.safetensors");
    k->files = xcalloc(1, sizeof *k->files);
    k->fnames = xcalloc(1, sizeof *k->fnames);
    if (st_open(&k->files[0], path)) {
        free(path);
        free(k->files);
        free(k->fnames);
        memset(k, 0, sizeof *k);
        return error_prefix("checkpoint %s (no model.safetensors.index.json either)", dir);
    }
    free(path);
    k->fnames[0] = xstrdup("model.safetensors");
    k->nfiles = 1;
    return 0;
}

static const st_tensor *ckpt_find(const ckpt *k, const char *name, const st_file **f)
{
    for (int i = 0; i < k->nfiles; i++) {
        const st_tensor *t = st_find(&k->files[i], name);
        if (t) {
            *f = &k->files[i];
            return t;
        }
    }
    return NULL;
}

/* Every parameter present with its shape; tensors of the file that the model does not use are an error too
 * (except lm_head.weight of a tied model, which some exporters write). */
static int ckpt_check(const ckpt *k, const char *dir, const nn_config *c, const nn_param *tab, int n)
{
    for (int i = 0; i < n; i++) {
        const st_file *f;
        const st_tensor *t = ckpt_find(k, tab[i].name, &f);
        if (!t) return error("%s: tensor %s missing from the checkpoint", dir, tab[i].name);
        int ok = t->ndim == tab[i].ndim;
        for (int j = 0; ok && j < t->ndim; j++) ok = t->shape[j] == tab[i].shape[j];
        if (!ok) {
            char want[64], got[64] = "";
            snprintf(want, sizeof want, "[%lld%s%lld]", (long long)tab[i].shape[0], tab[i].ndim > 1 ? ", " : "",
                     tab[i].ndim > 1 ? (long long)tab[i].shape[1] : 0LL);
            if (tab[i].ndim == 1) snprintf(want, sizeof want, "[%lld]", (long long)tab[i].shape[0]);
            size_t o = 0;
            for (int j = 0; j < t->ndim && o < sizeof got - 24; j++)
                o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", j ? ", " : "[", (long long)t->shape[j]);
            snprintf(got + o, sizeof got - o, "]");
            return error("%s: tensor %s has shape %s, the config wants %s", f->path, tab[i].name, got, want);
        }
        if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F64)
            return error("%s: tensor %s has dtype %s (expected F32, BF16 or F16)", f->path, tab[i].name,
                         st_dtype_name(t->dtype));
    }
    for (int fi = 0; fi < k->nfiles; fi++)
        for (int j = 0; j < k->files[fi].n; j++) {
            const char *nm = k->files[fi].t[j].name;
            int used = 0;
            for (int i = 0; i < n && !used; i++) used = !strcmp(tab[i].name, nm);
            if (!used && !(c->tied && !strcmp(nm, "lm_head.weight")))
                return error("%s: tensor %s is not a parameter of this config (%s, %d layers)", k->files[fi].path,
                             nm, c->model_type, c->n_layers);
        }
    return 0;
}

int nn_checkpoint_check(const char *dir)
{
    nn_config c;
    if (nn_config_load_dir(&c, dir)) return -1;
    nn_param *tab;
    int n;
    if (nn_param_table(&c, &tab, &n)) return -1;
    ckpt k;
    if (ckpt_open(&k, dir)) {
        free(tab);
        return -1;
    }
    int r = ckpt_check(&k, dir, &c, tab, n);
    ckpt_close(&k);
    free(tab);
    return r;
}

int nn_model_load_weights(nn_model *m, const char *dir)
{
    ckpt k;
    if (ckpt_open(&k, dir)) return -1;
    if (ckpt_check(&k, dir, &m->cfg, m->params, m->n_params)) {
        ckpt_close(&k);
        return -1;
    }
    size_t maxn = 0;
    for (int i = 0; i < m->n_params; i++) maxn = m->params[i].numel > maxn ? m->params[i].numel : maxn;
    float *host = xmalloc((maxn ? maxn : 1) * sizeof(float));
    for (int i = 0; i < m->n_params; i++) {
        const st_file *f = NULL;
        const st_tensor *t = ckpt_find(&k, m->params[i].name, &f);
        st_read_f32(f, t, host);
        m->be->op->upload(m->be, m->p + m->params[i].off, host, m->params[i].numel * sizeof(float));
    }
    free(host);
    ckpt_close(&k);
    return 0;
}

int nn_model_load(nn_model **out, const char *dir, k_backend *be)
{
    *out = NULL;
    nn_config c;
    if (nn_config_load_dir(&c, dir)) return -1;
    nn_model *m;
    if (nn_model_new(&m, &c, be)) return error_prefix("%s", dir);
    if (nn_model_load_weights(m, dir)) {
        nn_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

static int write_shard(const nn_model *m, const char *path, int i0, int i1, st_dtype dtype)
{
    st_writer w;
    st_writer_init(&w);
    st_writer_meta(&w, "format", "pt");
    size_t maxn = 0;
    for (int i = i0; i < i1; i++) maxn = m->params[i].numel > maxn ? m->params[i].numel : maxn;
    float *host = xmalloc((maxn ? maxn : 1) * sizeof(float));
    int r = 0;
    for (int i = i0; i < i1 && !r; i++) {
        const nn_param *p = &m->params[i];
        m->be->op->download(m->be, host, m->p + p->off, p->numel * sizeof(float));
        r = st_writer_add(&w, p->name, dtype, p->ndim, p->shape, host);
    }
    free(host);
    if (!r) r = st_writer_write(&w, path);
    st_writer_release(&w);
    return r;
}

int nn_model_save(const nn_model *m, const char *dir, st_dtype dtype, size_t max_shard_bytes)
{
    if (dtype != ST_F32 && dtype != ST_BF16 && dtype != ST_F16)
        return error("nn_model_save: dtype %s (use F32, BF16 or F16)", st_dtype_name(dtype));
    if (hx_mkdir_p(dir)) return -1;
    const char *dname = dtype == ST_F32 ? "float32" : dtype == ST_BF16 ? "bfloat16" : "float16";
    char *cp = hx_path_join(dir, "config.json");
    int r = nn_config_save(&m->cfg, cp, dname);
    free(cp);
    if (r) return -1;
    size_t es = st_dtype_size(dtype), total = 0;
    for (int i = 0; i < m->n_params; i++) total += m->params[i].numel * es;
    if (!max_shard_bytes || total <= max_shard_bytes) {
        char *path = hx_path_join(dir, "model.safetensors");
        r = write_shard(m, path, 0, m->n_params, dtype);
        free(path);
        char *index = hx_path_join(dir, "model.safetensors.index.json"); /* would take precedence */
        if (!r && hx_file_exists(index)) remove(index);
        free(index);
        return r ? r : nn_hfdir_model_files(dir, &m->cfg);
    }
    /* shards of at most max_shard_bytes (a tensor larger than that gets a shard of its own) */
    int *cut = xmalloc((size_t)(m->n_params + 1) * sizeof *cut), ns = 0;
    size_t acc = 0;
    cut[0] = 0;
    for (int i = 0; i < m->n_params; i++) {
        size_t b = m->params[i].numel * es;
        if (acc && acc + b > max_shard_bytes) {
            cut[++ns] = i;
            acc = 0;
        }
        acc += b;
    }
    cut[++ns] = m->n_params;
    json_t *wm = json_object();
    for (int s = 0; s < ns && !r; s++) {
        char fn[64];
        snprintf(fn, sizeof fn, "model-%05d-of-%05d.safetensors", s + 1, ns);
        char *path = hx_path_join(dir, fn);
        r = write_shard(m, path, cut[s], cut[s + 1], dtype);
        free(path);
        for (int i = cut[s]; i < cut[s + 1]; i++) json_object_set_new(wm, m->params[i].name, json_string(fn));
    }
    free(cut);
    if (!r) {
        json_t *idx = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *txt = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(idx);
        char *path = hx_path_join(dir, "model.safetensors.index.json");
        r = hx_write_file_atomic(path, txt, strlen(txt));
        free(path);
        free(txt);
        /* a stale single-file checkpoint would shadow nothing, but remove it to keep the directory unambiguous */
        char *single = hx_path_join(dir, "model.safetensors");
        if (hx_file_exists(single)) remove(single);
        free(single);
    } else
        json_decref(wm);
    return r ? r : nn_hfdir_model_files(dir, &m->cfg);
}
