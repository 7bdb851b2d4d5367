/*
 * gw_static: the web UI's files (README "Web UI"), served from memory.
 *
 * gw_static_load reads every regular file under TOOLGATE_UI_DIR (index.html, style.css, src/,
 * vendor/; at most MAX_FILES files of MAX_FILE_BYTES each) once, at start-up, before the loop
 * runs: the set is small and fixed, so no request ever touches the file system and nothing is
 * read on the loop afterwards. Each file keeps its body, its Content-Type (by extension) and a
 * strong ETag (BLAKE2b of the body); answers carry Cache-Control: no-cache (revalidate with
 * If-None-Match, 304), X-Content-Type-Options: nosniff and one Content-Security-Policy for the
 * whole UI: scripts and styles from 'self' only, plus the SHA-256 of index.html's import map
 * (the one inline <script>, type importmap, which the CSP would refuse otherwise), computed here
 * from the file as loaded.
 *
 * Which requests are the UI's: the router's GW_ROUTE_STATIC routes (gw_router.c: "/", the files'
 * directories and the client routes of ui/src/app.js) call gw_static_get. A path naming a loaded
 * file is that file ("/" is index.html); a path under an asset directory (/src/, /vendor/) or
 * with a file extension that names none is 404; a client route (/runs/<id>, /workflows, ...) is
 * index.html when the request accepts text/html (the app routes on location.pathname), else 404.
 * Invariant: the loaded set never changes after gw_static_load, so serving needs no locking and
 * answers share the bodies without copies.
 */
#include "gw.h"
#include "tg_map.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 256
#define MAX_FILE_BYTES (8u << 20) /* dagre's ESM build is ~90 KB; this is far above any */
#define MAX_DEPTH 4

typedef struct file {
  char *body;
  size_t len;
  const char *type;
  char etag[2 + 2 * 16 + 1]; /* "\"" + 32 hex + "\"" */
} file;

struct gw_static {
  tg_map *files; /* "/index.html" -> file */
  char csp[512];
  size_t n;
};

static const struct {
  const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".map", "application/json"},
};

static const char *content_type(const char *name)
{
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0)
      return types[i].type;
  return "text/plain; charset=utf-8"; /* LICENSE files and the like */
}

static void file_free(void *p)
{
  file *f = p;
  if (f) {
    free(f->body);
    free(f);
  }
}

/* Reads path (at most MAX_FILE_BYTES) into a new file. */
static int read_file(const char *path, file **out)
{
  FILE *fp = fopen(path, "rb");
  file *f = calloc(1, sizeof *f);
  struct stat st;
  unsigned char hash[16];
  int rc = TG_EIO;

  if (!fp || !f)
    goto fail;
  if (fstat(fileno(fp), &st) != 0)
    goto fail;
  rc = TG_ETOOBIG;
  if (st.st_size < 0 || (uint64_t)st.st_size > MAX_FILE_BYTES)
    goto fail;
  rc = TG_ENOMEM;
  f->len = (size_t)st.st_size;
  if (!(f->body = malloc(f->len + 1)))
    goto fail;
  rc = TG_EIO;
  if (fread(f->body, 1, f->len, fp) != f->len)
    goto fail;
  f->body[f->len] = 0;
  f->type = content_type(path);
  crypto_generichash(hash, sizeof hash, (const unsigned char *)f->body, f->len, NULL, 0);
  f->etag[0] = '"';
  sodium_bin2hex(f->etag + 1, sizeof f->etag - 2, hash, sizeof hash);
  strcat(f->etag, "\"");
  fclose(fp);
  *out = f;
  return 0;

fail:
  if (fp)
    fclose(fp);
  file_free(f);
  return rc;
}

/* Loads every regular file under dir/rel into s (names starting with '.' skipped). */
static int load_dir(gw_static *s, const char *root, const char *rel, int depth)
{
  char path[1024];
  DIR *d;
  struct dirent *e;
  int rc = 0;

  snprintf(path, sizeof path, "%s%s", root, rel);
  if (!(d = opendir(path)))
    return depth == 0 ? TG_ENOTFOUND : TG_EIO;
  while (rc == 0 && (e = readdir(d))) {
    char sub[512], full[1024];
    struct stat st;
    file *f;
    if (e->d_name[0] == '.')
      continue;
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name) >= sizeof sub ||
        (size_t)snprintf(full, sizeof full, "%s%s", root, sub) >= sizeof full) {
      rc = TG_ETOOBIG;
      break;
    }
    if (stat(full, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      rc = depth < MAX_DEPTH ? load_dir(s, root, sub, depth + 1) : TG_ETOOBIG;
    } else if (S_ISREG(st.st_mode)) {
      if (s->n == MAX_FILES) {
        rc = TG_ETOOBIG;
      } else if ((rc = read_file(full, &f)) == 0) {
        if ((rc = tg_map_puts(s->files, sub, f, 0)) != 0)
          file_free(f);
        else
          s->n++;
      }
    }
  }
  closedir(d);
  return rc;
}

/* The CSP, with the hash of index.html's import map when it has one (CSP3 "hash-source"). */
static void build_csp(gw_static *s)
{
  static const char open_tag[] = "<script type=\"importmap\">";
  const file *index = tg_map_gets(s->files, "/index.html");
  char source[128] = "";
  const char *a, *b;

  if (index && (a = strstr(index->body, open_tag)) && (b = strstr(a, "</script>"))) {
    unsigned char hash[crypto_hash_sha256_BYTES];
    char b64[64];
    a += sizeof open_tag - 1;
    crypto_hash_sha256(hash, (const unsigned char *)a, (unsigned long long)(b - a));
    sodium_bin2base64(b64, sizeof b64, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL);
    snprintf(source, sizeof source, " 'sha256-%s'", b64);
  }
  snprintf(s->csp, sizeof s->csp,
           "Content-Security-Policy: default-src 'self'; script-src 'self'%s; style-src 'self'; "
           "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
           "form-action 'self'; frame-ancestors 'none'",
           source);
}

int gw_static_load(gw_static **out, const char *dir)
{
  gw_static *s = calloc(1, sizeof *s);
  int rc = TG_ENOMEM;

  *out = NULL;
  if (!s || !(s->files = tg_map_new(0, file_free)))
    goto fail;
  if ((rc = load_dir(s, dir, "", 0)) != 0)
    goto fail;
  rc = TG_ENOTFOUND;
  if (!tg_map_gets(s->files, "/index.html"))
    goto fail;
  build_csp(s);
  *out = s;
  return 0;

fail:
  gw_static_free(s);
  return rc;
}

void gw_static_free(gw_static *s)
{
  if (s) {
    tg_map_free(s->files);
    free(s);
  }
}

size_t gw_static_count(const gw_static *s)
{
  return s ? s->n : 0;
}

static int has_prefix(const char *path, const char *prefix)
{
  size_t n = strlen(prefix);
  return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* A path that names a file (an asset directory, or a dot in its last segment): never a client
 * route, so a missing one is 404 and not index.html. */
static int asset_path(const char *path)
{
  const char *last = strrchr(path, '/');
  return has_prefix(path, "/src") || has_prefix(path, "/vendor") || strchr(last, '.') != NULL;
}

/* A browser navigation: Accept names text/html (a bare client sending none gets the 404). */
static int wants_html(tg_httpd_req *req)
{
  const char *accept = tg_httpd_header(req, "Accept");
  return accept && strstr(accept, "text/html");
}

/* The bodies live until gw_static_free, after the loop has ended: nothing to release. */
static void keep(void *arg)
{
  (void)arg;
}

int gw_static_serve(gw_app *app, tg_httpd_req *req)
{
  const gw_static *s = app->ui;
  const char *path = tg_httpd_path(req);
  const char *inm;
  const file *f = NULL;

  if (!s) /* no UI installed: "/" is gw_ui_index's landing page, the rest 404 */
    return 0;
  if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
    f = tg_map_peek(s->files, "/index.html", strlen("/index.html"));
  else if (asset_path(path))
    f = tg_map_peek(s->files, path, strlen(path));
  else if (wants_html(req))
    f = tg_map_peek(s->files, "/index.html", strlen("/index.html"));
  if (!f) {
    gw_respond_error(req, 404, "not_found", "No such file in the web UI.", NULL, NULL);
    return 1;
  }
  {
    char type[96], etag[64];
    const char *headers[] = {type,
                             etag,
                             "Cache-Control: no-cache",
                             "X-Content-Type-Options: nosniff",
                             s->csp,
                             "Referrer-Policy: no-referrer",
                             NULL};
    snprintf(type, sizeof type, "Content-Type: %s", f->type);
    snprintf(etag, sizeof etag, "ETag: %s", f->etag);
    inm = tg_httpd_header(req, "If-None-Match");
    if (inm && strstr(inm, f->etag))
      tg_httpd_respond(req, 304, headers + 1, NULL, 0);
    else
      tg_httpd_respond_shared(req, 200, headers, f->body, f->len, keep, NULL);
  }
  return 1;
}

void gw_static_get(gw_app *app, tg_httpd_req *req)
{
  if (!gw_static_serve(app, req))
    gw_respond_error(req, 404, "not_found", "No web UI is installed (TOOLGATE_UI_DIR).", NULL,
                     NULL);
}
