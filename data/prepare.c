/* prepare.c: `hug prepare`. The inputs are memory-mapped and cut into
 * chunks of about 1 MiB that end on a document boundary; worker threads
 * claim chunks in order, parse and tokenize them into per-chunk buffers;
 * the calling thread writes finished chunks strictly in order (so the
 * output does not depend on the thread count), reports skipped lines with
 * their absolute line numbers, and rolls shards over. A ring of slots
 * bounds the memory: a worker waits while it is a ring ahead of the
 * writer. */
#include "prepare.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "chat_template.h"
#include "shard.h"
#include "utf8.h"

#define CHUNK_BYTES (1u << 20)
#define NOTE_LEN 160

struct in_file {
	const char *path;
	const uint8_t *data;      /* mmap, NULL when empty */
	size_t size;
	bool jsonl;
};

struct note {
	int64_t line;             /* 0-based, relative to the chunk */
	int64_t doc_first, doc_last; /* a text document's lines, or -1 */
	enum prepare_skip kind;
	char msg[NOTE_LEN];
};

struct chunk {
	int64_t seq;
	bool ready;
	int file;
	const uint8_t *p;
	size_t n;
	int64_t n_lines;          /* newlines in [p, p + n) */
	struct tok_ids tokens;
	uint8_t *mask;            /* (tokens.cap) when the run has masks */
	int64_t mask_cap;
	int64_t *doc_len;
	int64_t n_docs, docs_cap;
	struct note *notes;
	int n_notes, notes_cap;
};

struct prep {
	const struct tokenizer *tok;
	const struct prepare_opts *o;
	struct in_file *files;
	int n_files;
	bool mask;
	int32_t eos;
	int chat;                 /* chat template for "messages", or -1 */
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	int cur_file;             /* next unclaimed input position */
	size_t cur_off;
	int64_t next_seq, write_seq;
	bool inputs_done, stop;
	struct chunk *slots;
	int n_slots;
};

const char *prepare_skip_name(enum prepare_skip k)
{
	static const char *const names[PREPARE_N_SKIP] = {
		"invalid UTF-8", "malformed JSON", "missing fields", "empty text",
	};
	return k < PREPARE_N_SKIP ? names[k] : "?";
}

struct prepare_opts prepare_opts_default(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return (struct prepare_opts){
		.shard_tokens = 100000000,
		.threads = cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus,
		.format = PREPARE_AUTO,
		.log = stderr,
	};
}

/* --- inputs --- */

static int open_input(struct in_file *f, const char *path, enum prepare_format fmt,
		      struct hug_error *err)
{
	struct stat st;
	f->path = path;
	f->jsonl = fmt == PREPARE_JSONL ||
		   (fmt == PREPARE_AUTO && (fs_ends_with(path, ".jsonl") || fs_ends_with(path, ".ndjson") ||
					    fs_ends_with(path, ".json")));
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return hug_error_set(err, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return hug_error_set(err, "%s: not a regular file", path);
	}
	f->size = (size_t)st.st_size;
	if (f->size) {
		void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return hug_error_set(err, "%s: cannot map: %s", path, strerror(errno));
		}
		madvise(m, f->size, MADV_SEQUENTIAL);
		f->data = m;
	}
	close(fd);
	return 0;
}

static void close_inputs(struct in_file *files, int n)
{
	for (int i = 0; i < n; i++)
		if (files[i].data)
			munmap((void *)files[i].data, files[i].size);
}

/* --- chunk boundaries --- */

static bool blank_line(const uint8_t *p, const uint8_t *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

/* True when the text line [p, end) ends a document: a blank line, or with
 * a separator, a line equal to it (a trailing \r ignored). */
static bool boundary_line(const char *sep, const uint8_t *p, const uint8_t *end)
{
	if (!sep)
		return blank_line(p, end);
	if (end > p && end[-1] == '\r')
		end--;
	size_t n = strlen(sep);
	return (size_t)(end - p) == n && memcmp(p, sep, n) == 0;
}

/* The end of the chunk that starts at `start`: the first document boundary
 * at or after start + bytes (a newline for JSONL, the end of a boundary
 * line for text), or the end of the file. */
static size_t chunk_end(const struct in_file *f, const char *sep, size_t start, size_t bytes)
{
	size_t pos = start + bytes;
	const uint8_t *d = f->data;
	if (pos >= f->size)
		return f->size;
	for (;;) {
		const uint8_t *nl = memchr(d + pos, '\n', f->size - pos);
		if (!nl)
			return f->size;
		pos = (size_t)(nl - d) + 1;
		if (f->jsonl)
			return pos;
		const uint8_t *next = memchr(d + pos, '\n', f->size - pos);
		const uint8_t *le = next ? next : d + f->size;
		if (boundary_line(sep, d + pos, le))
			return next ? (size_t)(next - d) + 1 : f->size;
	}
}

/* Claims the next chunk into c (under the lock); false when none is left. */
static bool claim(struct prep *P, struct chunk *c)
{
	while (P->cur_file < P->n_files && P->cur_off >= P->files[P->cur_file].size) {
		P->cur_file++;
		P->cur_off = 0;
	}
	if (P->cur_file >= P->n_files)
		return false;
	const struct in_file *f = &P->files[P->cur_file];
	size_t end = chunk_end(f, P->o->separator, P->cur_off,
			       P->o->chunk_bytes ? P->o->chunk_bytes : CHUNK_BYTES);
	c->file = P->cur_file;
	c->p = f->data + P->cur_off;
	c->n = end - P->cur_off;
	P->cur_off = end;
	return true;
}

/* --- parsing and tokenizing one chunk (worker side) --- */

static void note(struct chunk *c, int64_t line, enum prepare_skip kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void note(struct chunk *c, int64_t line, enum prepare_skip kind, const char *fmt, ...)
{
	va_list ap;
	if (c->n_notes == c->notes_cap) {
		c->notes_cap = c->notes_cap ? 2 * c->notes_cap : 16;
		c->notes = hug_realloc(c->notes, (size_t)c->notes_cap * sizeof(*c->notes));
	}
	struct note *n = &c->notes[c->n_notes++];
	n->line = line;
	n->doc_first = n->doc_last = -1;
	n->kind = kind;
	va_start(ap, fmt);
	vsnprintf(n->msg, sizeof(n->msg), fmt, ap);
	va_end(ap);
}

/* Appends one document: the template's leading special tokens (mask 0),
 * prompt (mask 0, may be NULL), text (mask 1), the template's trailing
 * special tokens, EOS (unless the template already ended with it). */
static void add_doc(struct prep *P, struct chunk *c, struct tok_encoder *enc,
		    const char *prompt, size_t np, const char *text, size_t n)
{
	int64_t start = c->tokens.n;
	const int32_t *pre, *post;
	int n_pre, n_post;
	tokenizer_template(P->tok, &pre, &n_pre, &post, &n_post);
	if (P->o->no_special)
		n_pre = n_post = 0;
	for (int i = 0; i < n_pre; i++)
		tok_ids_push(&c->tokens, pre[i]);
	if (prompt)
		tok_encoder_encode(enc, prompt, np, &c->tokens);
	int64_t mid = c->tokens.n;
	tok_encoder_encode(enc, text, n, &c->tokens);
	for (int i = 0; i < n_post; i++)
		tok_ids_push(&c->tokens, post[i]);
	if (!(n_post > 0 && post[n_post - 1] == P->eos))
		tok_ids_push(&c->tokens, P->eos);
	if (P->mask) {
		if (c->tokens.n > c->mask_cap) {
			c->mask_cap = c->tokens.cap;
			c->mask = hug_realloc(c->mask, (size_t)c->mask_cap);
		}
		memset(c->mask + start, 0, (size_t)(mid - start));
		memset(c->mask + mid, 1, (size_t)(c->tokens.n - mid));
	}
	if (c->n_docs == c->docs_cap) {
		c->docs_cap = c->docs_cap ? 2 * c->docs_cap : 256;
		c->doc_len = hug_realloc(c->doc_len, (size_t)c->docs_cap * sizeof(int64_t));
	}
	c->doc_len[c->n_docs++] = c->tokens.n - start;
}

/* The 0-based line and 1-based column of byte `off` of a text starting at
 * relative line `line`. */
static void locate(const uint8_t *s, size_t off, int64_t line, int64_t *at, size_t *col)
{
	size_t line_start = 0;
	for (size_t i = 0; i < off; i++)
		if (s[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	*at = line;
	*col = off - line_start + 1;
}

static void text_doc(struct prep *P, struct chunk *c, struct tok_encoder *enc,
		     const uint8_t *s, const uint8_t *end, int64_t line)
{
	if (end > s && end[-1] == '\r')
		end--;
	int64_t bad = utf8_find_invalid(s, (size_t)(end - s));
	if (bad >= 0) {
		int64_t at;
		size_t col;
		locate(s, (size_t)bad, line, &at, &col);
		note(c, at, PREPARE_SKIP_UTF8, "invalid UTF-8 (byte 0x%02X at column %zu)",
		     s[bad], col);
		locate(s, (size_t)(end - s), line, &c->notes[c->n_notes - 1].doc_last, &col);
		c->notes[c->n_notes - 1].doc_first = line;
		return;
	}
	add_doc(P, c, enc, NULL, 0, (const char *)s, (size_t)(end - s));
}

static void text_chunk(struct prep *P, struct chunk *c, struct tok_encoder *enc)
{
	const uint8_t *p = c->p, *end = c->p + c->n, *doc = NULL, *doc_end = NULL;
	int64_t line = 0, doc_line = 0;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		if (boundary_line(P->o->separator, p, le)) {
			if (doc)
				text_doc(P, c, enc, doc, doc_end, doc_line);
			doc = NULL;
		} else if (doc || !blank_line(p, le)) { /* no leading blank lines */
			if (!doc) {
				doc = p;
				doc_line = line;
			}
			doc_end = le;
		}
		p = nl ? nl + 1 : end;
		line += nl != NULL;
	}
	if (doc)
		text_doc(P, c, enc, doc, doc_end, doc_line);
	c->n_lines = line;
}

/* A conversation: rendered with the chat template, trained on assistant
 * turns only; no EOS is added (the template ends each turn). */
static void chat_record(struct prep *P, struct chunk *c, struct tok_encoder *enc,
			const cJSON *messages, int64_t line)
{
	struct chat_render r = { 0 };
	char msg[NOTE_LEN];
	if (P->chat < 0) {
		note(c, line, PREPARE_SKIP_FIELDS, "\"messages\" need a chat template: "
		     "--chat-template %s", chat_template_names());
		return;
	}
	if (chat_render(P->chat, messages, &r, msg, sizeof(msg))) {
		note(c, line, PREPARE_SKIP_FIELDS, "%s", msg);
		chat_render_free(&r);
		return;
	}
	int64_t start = c->tokens.n;
	uint8_t *m = chat_encode(enc, &r, &c->tokens);
	if (c->tokens.n > c->mask_cap) {
		c->mask_cap = c->tokens.cap;
		c->mask = hug_realloc(c->mask, (size_t)c->mask_cap);
	}
	memcpy(c->mask + start, m, (size_t)(c->tokens.n - start));
	hug_free(m);
	chat_render_free(&r);
	if (c->n_docs == c->docs_cap) {
		c->docs_cap = c->docs_cap ? 2 * c->docs_cap : 256;
		c->doc_len = hug_realloc(c->doc_len, (size_t)c->docs_cap * sizeof(int64_t));
	}
	c->doc_len[c->n_docs++] = c->tokens.n - start;
}

static void json_record(struct prep *P, struct chunk *c, struct tok_encoder *enc,
			const cJSON *j, int64_t line)
{
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
	const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, "prompt");
	const cJSON *compl = cJSON_GetObjectItemCaseSensitive(j, "completion");
	if (cJSON_IsString(text)) {
		size_t n = strlen(text->valuestring);
		if (!n) {
			note(c, line, PREPARE_SKIP_EMPTY, "empty \"text\"");
			return;
		}
		add_doc(P, c, enc, NULL, 0, text->valuestring, n);
	} else if (!text && cJSON_IsString(prompt) && cJSON_IsString(compl) && P->mask) {
		add_doc(P, c, enc, prompt->valuestring, strlen(prompt->valuestring),
			compl->valuestring, strlen(compl->valuestring));
	} else if (!text && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "messages")) &&
		   P->mask) {
		chat_record(P, c, enc, cJSON_GetObjectItemCaseSensitive(j, "messages"), line);
	} else {
		note(c, line, PREPARE_SKIP_FIELDS, "expected an object with a string \"text\", "
		     "strings \"prompt\" and \"completion\", or an array \"messages\"");
	}
}

static bool is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Checks the backslash escapes of a JSON line, which cJSON would let
 * through: a bad \u escape becomes U+0000 there and \u0000 ends the string
 * early, silently truncating the text. Returns the offset of the first bad
 * escape, or -1. */
static int64_t bad_escape(const uint8_t *s, size_t n)
{
	const uint8_t *p = s, *end = s + n;
	while ((p = memchr(p, '\\', (size_t)(end - p)))) {
		if (p + 1 >= end || !strchr("\"\\/bfnrtu", p[1]))
			return p - s;
		if (p[1] == 'u') {
			if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) ||
			    !is_hex(p[5]) || !memcmp(p + 2, "0000", 4))
				return p - s;
			p += 6;
		} else {
			p += 2;
		}
	}
	return -1;
}

static void json_line(struct prep *P, struct chunk *c, struct tok_encoder *enc,
		      const uint8_t *s, size_t n, int64_t line)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (blank_line(s, s + n))
		return;
	int64_t bad = utf8_find_invalid(s, n);
	if (bad >= 0) {
		note(c, line, PREPARE_SKIP_UTF8, "invalid UTF-8 (byte 0x%02X at column %lld)",
		     s[bad], (long long)bad + 1);
		return;
	}
	bad = bad_escape(s, n);
	if (bad >= 0) {
		note(c, line, PREPARE_SKIP_JSON, "malformed JSON at column %lld (a bad escape, "
		     "or \\u0000, which hug does not take)", (long long)bad + 1);
		return;
	}
	const char *stop = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts((const char *)s, n, &stop, false);
	size_t at = stop ? (size_t)(stop - (const char *)s) : n;
	while (j && at < n && (s[at] == ' ' || s[at] == '\t'))
		at++;
	if (!j || at < n) {
		note(c, line, PREPARE_SKIP_JSON, "malformed JSON at column %zu",
		     (at < n ? at : n) + 1);
	} else if (!cJSON_IsObject(j)) {
		note(c, line, PREPARE_SKIP_FIELDS, "expected a JSON object");
	} else {
		json_record(P, c, enc, j, line);
	}
	cJSON_Delete(j);
}

static void jsonl_chunk(struct prep *P, struct chunk *c, struct tok_encoder *enc)
{
	const uint8_t *p = c->p, *end = c->p + c->n;
	int64_t line = 0;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		json_line(P, c, enc, p, (size_t)(le - p), line);
		p = nl ? nl + 1 : end;
		line += nl != NULL;
	}
	c->n_lines = line;
}

static void process(struct prep *P, struct chunk *c, struct tok_encoder *enc)
{
	c->tokens.n = 0;
	c->n_docs = 0;
	c->n_notes = 0;
	if (P->files[c->file].jsonl)
		jsonl_chunk(P, c, enc);
	else
		text_chunk(P, c, enc);
}

static void *worker(void *arg)
{
	struct prep *P = arg;
	struct tok_encoder *enc = tok_encoder_new(P->tok);
	pthread_mutex_lock(&P->mu);
	for (;;) {
		while (!P->stop && !P->inputs_done && P->next_seq >= P->write_seq + P->n_slots)
			pthread_cond_wait(&P->cv_work, &P->mu);
		if (P->stop || P->inputs_done)
			break;
		struct chunk *c = &P->slots[P->next_seq % P->n_slots];
		if (!claim(P, c)) {
			P->inputs_done = true;
			pthread_cond_broadcast(&P->cv_done);
			pthread_cond_broadcast(&P->cv_work);
			break;
		}
		c->seq = P->next_seq++;
		c->ready = false;
		pthread_mutex_unlock(&P->mu);
		process(P, c, enc);
		pthread_mutex_lock(&P->mu);
		c->ready = true;
		pthread_cond_broadcast(&P->cv_done);
	}
	pthread_mutex_unlock(&P->mu);
	tok_encoder_free(enc);
	return NULL;
}

/* --- writing (calling thread) --- */

struct out {
	struct prep *P;
	struct shard_meta meta;
	struct shard_writer *w;
	int64_t n_shards;
	char **paths;             /* shards finished by this run */
	int cur_file;             /* file of the last chunk written */
	int64_t line_base;        /* its lines before the chunk */
	int64_t reports;
	struct prepare_stats *st;
	double t0, last_progress;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *shard_path(const char *dir, int64_t k)
{
	char name[32];
	snprintf(name, sizeof(name), "shard-%05lld.h5", (long long)k);
	return fs_join(dir, name);
}

static int close_shard(struct out *O, struct hug_error *err)
{
	if (!O->w)
		return 0;
	int rc = shard_writer_close(O->w, err);
	O->w = NULL;
	if (rc)
		return -1;
	O->paths = hug_realloc(O->paths, (size_t)(O->n_shards + 1) * sizeof(char *));
	O->paths[O->n_shards] = shard_path(O->P->o->out_dir, O->n_shards);
	O->n_shards++;
	return 0;
}

static int append_doc(struct out *O, const int32_t *t, const uint8_t *m, int64_t n,
		      struct hug_error *err)
{
	const struct prepare_opts *o = O->P->o;
	if (!O->w) {
		char *path = shard_path(o->out_dir, O->n_shards);
		int rc = shard_writer_open(&O->w, path, &O->meta, O->P->mask, err);
		hug_free(path);
		if (rc)
			return -1;
	}
	if (shard_writer_append(O->w, t, m, n, err))
		return -1;
	if (shard_writer_tokens(O->w) >= o->shard_tokens)
		return close_shard(O, err);
	return 0;
}

/* Reports the chunk's skipped lines; -1 with err on the first real one
 * under fail_on_error. */
static int report(struct out *O, const struct chunk *c, struct hug_error *err)
{
	const struct prepare_opts *o = O->P->o;
	const char *path = O->P->files[c->file].path;
	int max = o->max_reports > 0 ? o->max_reports : 100;
	for (int i = 0; i < c->n_notes; i++) {
		const struct note *n = &c->notes[i];
		long long line = (long long)(O->line_base + n->line + 1);
		char what[64] = "the line";
		O->st->skipped[n->kind]++;
		if (n->kind == PREPARE_SKIP_EMPTY)
			continue;
		if (o->fail_on_error)
			return hug_error_set(err, "%s:%lld: %s (--on-error fail)", path, line, n->msg);
		if (n->doc_first >= 0)
			snprintf(what, sizeof(what), "the document (lines %lld-%lld)",
				 (long long)(O->line_base + n->doc_first + 1),
				 (long long)(O->line_base + n->doc_last + 1));
		if (o->log && O->reports < max)
			fprintf(o->log, "%s%s:%lld: %s; %s is skipped\n",
				o->progress ? "\r\033[K" : "", path, line, n->msg, what);
		else if (o->log && O->reports == max)
			fprintf(o->log, "%s(further skipped lines are counted, not shown)\n",
				o->progress ? "\r\033[K" : "");
		O->reports++;
	}
	return 0;
}

static void progress(struct out *O, bool final)
{
	const struct prepare_stats *st = O->st;
	double t = now(), dt = t - O->t0 > 1e-9 ? t - O->t0 : 1e-9;
	if (!O->P->o->progress || (!final && t - O->last_progress < 0.5))
		return;
	O->last_progress = t;
	fprintf(stderr, "\r\033[K%.1f MB  %lld docs  %lld tokens  %.1f MB/s  %.2fM tokens/s%s",
		(double)st->bytes / 1e6, (long long)st->docs, (long long)st->tokens,
		(double)st->bytes / 1e6 / dt, (double)st->tokens / 1e6 / dt, final ? "\n" : "");
	fflush(stderr);
}

static int write_chunk(struct out *O, const struct chunk *c, struct hug_error *err)
{
	if (c->file != O->cur_file) {
		O->cur_file = c->file;
		O->line_base = 0;
	}
	if (report(O, c, err))
		return -1;
	int64_t off = 0;
	for (int64_t d = 0; d < c->n_docs; d++) {
		int64_t n = c->doc_len[d];
		if (append_doc(O, c->tokens.v + off, O->P->mask ? c->mask + off : NULL, n, err))
			return -1;
		off += n;
	}
	O->line_base += c->n_lines;
	O->st->bytes += (int64_t)c->n;
	O->st->docs += c->n_docs;
	O->st->tokens += c->tokens.n;
	progress(O, false);
	return 0;
}

/* Waits for each chunk in order and writes it; 0 or -1 with err. */
static int writer_loop(struct prep *P, struct out *O, struct hug_error *err)
{
	for (;;) {
		pthread_mutex_lock(&P->mu);
		struct chunk *c = &P->slots[P->write_seq % P->n_slots];
		while (!(c->seq == P->write_seq && c->ready) &&
		       !(P->inputs_done && P->write_seq == P->next_seq))
			pthread_cond_wait(&P->cv_done, &P->mu);
		bool done = !(c->seq == P->write_seq && c->ready);
		pthread_mutex_unlock(&P->mu);
		if (done)
			return 0;
		if (write_chunk(O, c, err))
			return -1;
		pthread_mutex_lock(&P->mu);
		P->write_seq++;
		pthread_cond_broadcast(&P->cv_work);
		pthread_mutex_unlock(&P->mu);
	}
}

/* --- the run --- */

static int check_opts(const struct tokenizer *tok, int n_files, const struct prepare_opts *o,
		      struct hug_error *err)
{
	if (n_files < 1)
		return hug_error_set(err, "no input files");
	if (!o->out_dir || !o->out_dir[0])
		return hug_error_set(err, "no output directory (--out)");
	if (o->shard_tokens < 1)
		return hug_error_set(err, "--shard-tokens: expected a count >= 1, got %lld",
				     (long long)o->shard_tokens);
	if (o->threads < 1 || o->threads > 1024)
		return hug_error_set(err, "--threads: expected 1 to 1024, got %d", o->threads);
	if (tokenizer_eos_id(tok) < 0)
		return hug_error_set(err, "the tokenizer has no end-of-document token (</s>, "
				     "<|endoftext|> or <eos>)");
	return 0;
}

/* Creates dir if needed; refuses one that already holds shard files. */
static int check_out_dir(const char *dir, struct hug_error *err)
{
	if (fs_make_dirs(dir, err))
		return -1;
	DIR *d = opendir(dir);
	if (!d)
		return hug_error_set(err, "%s: cannot open: %s", dir, strerror(errno));
	const struct dirent *e;
	char found[300] = "";
	while ((e = readdir(d)) && !found[0])
		if (!strncmp(e->d_name, "shard-", 6) && fs_ends_with(e->d_name, ".h5"))
			snprintf(found, sizeof(found), "%s", e->d_name);
	closedir(d);
	if (found[0])
		return hug_error_set(err, "%s already holds shards (%s); prepare into an empty "
				     "directory", dir, found);
	return 0;
}

/* "a.txt, b.jsonl, ..." cut to fit (on a UTF-8 boundary). */
static void source_names(char *out, size_t cap, const struct in_file *files, int n)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < n && used + 1 < cap; i++) {
		const char *base = strrchr(files[i].path, '/');
		base = base ? base + 1 : files[i].path;
		int k = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", base);
		used += k > 0 ? (size_t)k : 0;
	}
	if (used >= cap) {
		used = cap - 1;
		while (used > 0 && ((uint8_t)out[used] & 0xC0) == 0x80)
			used--;
		out[used] = '\0';
	}
}

/* Whether any JSONL input has a "prompt" or "messages" key (then the run
 * has masks). */
static bool wants_mask(const struct in_file *files, int n)
{
	for (int i = 0; i < n; i++)
		if (files[i].jsonl && files[i].size &&
		    (memmem(files[i].data, files[i].size, "\"prompt\"", 8) ||
		     memmem(files[i].data, files[i].size, "\"messages\"", 10)))
			return true;
	return false;
}

static void free_slots(struct prep *P)
{
	for (int i = 0; i < P->n_slots; i++) {
		struct chunk *c = &P->slots[i];
		tok_ids_free(&c->tokens);
		hug_free(c->mask);
		hug_free(c->doc_len);
		hug_free(c->notes);
	}
	hug_free(P->slots);
}

/* Runs the workers and the writer; 0 or -1 with err. */
static int run_threads(struct prep *P, struct out *O, struct hug_error *err)
{
	pthread_t *th = hug_malloc((size_t)P->o->threads * sizeof(pthread_t));
	int started = 0, rc;
	for (; started < P->o->threads; started++)
		if (pthread_create(&th[started], NULL, worker, P))
			break;
	rc = started ? writer_loop(P, O, err) : hug_error_set(err, "cannot start threads");
	pthread_mutex_lock(&P->mu);
	P->stop = true;
	pthread_cond_broadcast(&P->cv_work);
	pthread_mutex_unlock(&P->mu);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	hug_free(th);
	return rc;
}

static void out_cleanup(struct out *O, bool failed)
{
	shard_writer_discard(O->w);
	for (int64_t i = 0; i < O->n_shards; i++) {
		if (failed)
			unlink(O->paths[i]);
		hug_free(O->paths[i]);
	}
	hug_free(O->paths);
}

static void fill_meta(struct out *O, const struct tokenizer *tok)
{
	const struct prepare_opts *o = O->P->o;
	O->meta.vocab_size = tokenizer_vocab_size(tok);
	O->meta.eos_id = tokenizer_eos_id(tok);
	snprintf(O->meta.tokenizer_hash, sizeof(O->meta.tokenizer_hash), "%s",
		 tokenizer_hash(tok));
	if (o->source)
		snprintf(O->meta.source, sizeof(O->meta.source), "%s", o->source);
	else
		source_names(O->meta.source, sizeof(O->meta.source), O->P->files, O->P->n_files);
}

/* Sets up the slots and the lock, runs the threads, finishes the last
 * shard and tears down; 0 or -1 with err. */
static int run(struct prep *P, struct out *O, struct hug_error *err)
{
	P->n_slots = 2 * P->o->threads + 2;
	P->slots = hug_calloc((size_t)P->n_slots, sizeof(*P->slots));
	for (int i = 0; i < P->n_slots; i++)
		P->slots[i].seq = -1;
	pthread_mutex_init(&P->mu, NULL);
	pthread_cond_init(&P->cv_work, NULL);
	pthread_cond_init(&P->cv_done, NULL);
	O->t0 = now();
	int rc = run_threads(P, O, err);
	if (!rc)
		rc = close_shard(O, err);
	if (!rc && O->st->docs == 0)
		rc = hug_error_set(err, "no documents in the inputs");
	O->st->seconds = now() - O->t0;
	if (!rc)
		progress(O, true);
	else if (P->o->progress)
		fprintf(stderr, "\n");
	pthread_mutex_destroy(&P->mu);
	pthread_cond_destroy(&P->cv_work);
	pthread_cond_destroy(&P->cv_done);
	free_slots(P);
	return rc;
}

int prepare_run(const struct tokenizer *tok, const char *const *files, int n_files,
		const struct prepare_opts *o, struct prepare_stats *st, struct hug_error *err)
{
	struct prep P = { .tok = tok, .o = o, .n_files = n_files, .eos = tokenizer_eos_id(tok) };
	struct out O = { .P = &P, .cur_file = -1, .st = st };
	int rc = -1;
	memset(st, 0, sizeof(*st));
	hug_json_init();
	utf8_init();
	if (check_opts(tok, n_files, o, err))
		return -1;
	P.chat = o->chat_template ? chat_template_find(o->chat_template) : chat_template_guess(tok);
	if (o->chat_template && P.chat < 0)
		return hug_error_set(err, "--chat-template: \"%s\" is not a template hug knows "
				     "(%s)", o->chat_template, chat_template_names());
	P.files = hug_calloc((size_t)n_files, sizeof(*P.files));
	for (int i = 0; i < n_files; i++)
		if (open_input(&P.files[i], files[i], o->format, err))
			goto out;
	if (check_out_dir(o->out_dir, err))
		goto out;
	P.mask = st->loss_mask = wants_mask(P.files, n_files);
	fill_meta(&O, tok);
	rc = run(&P, &O, err);
out:
	st->shards = rc ? 0 : O.n_shards;
	out_cleanup(&O, rc != 0);
	close_inputs(P.files, n_files);
	hug_free(P.files);
	return rc;
}
