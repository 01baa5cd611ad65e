/* cu2cpp.c: rewrites a CUDA source file (.cu or .cuh) into C++ that g++
 * compiles against the CUDA emulator of tools/cuemu (see README.md there).
 * Three constructs are rewritten; everything else is copied unchanged:
 *
 *   K<<<grid, block, smem, stream>>>(args)
 *       -> cuemu_launch("K", K, cuemu_cfg(grid, block, smem, stream), args)
 *   extern __shared__ [__align__(n)] T name[];
 *       -> T *name = (T *)cuemu_dyn_smem();
 *   __shared__ T name[d1][d2]...;
 *       -> static T name[d1][d2]...; cuemu_shared_register(name, sizeof(name));
 *
 * Quoted includes of ordinary headers are made relative to the repository
 * root (the output lives elsewhere); quoted includes of .cuh files stay as
 * written, so they find the rewritten copies beside the output. A #line
 * directive keeps compiler messages pointing at the original file.
 *
 * Usage: cu2cpp SRC OUT, with SRC relative to the repository root (the
 * build runs from there). Exit status 1 on a construct it cannot parse. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			fprintf(stderr, "cu2cpp: out of memory\n");
			exit(1);
		}
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static const char *src_name;

static void die(const char *s, const char *at, const char *what)
{
	int line = 1;
	for (const char *q = s; q < at; q++)
		line += *q == '\n';
	fprintf(stderr, "cu2cpp: %s:%d: %s\n", src_name, line, what);
	exit(1);
}

/* Index just past the end of the comment or string literal starting at
 * s[i], or i when none starts there. */
static size_t skip_lexeme(const char *s, size_t i)
{
	if (s[i] == '/' && s[i + 1] == '/') {
		while (s[i] && s[i] != '\n')
			i++;
		return i;
	}
	if (s[i] == '/' && s[i + 1] == '*') {
		const char *e = strstr(s + i + 2, "*/");
		return e ? (size_t)(e - s) + 2 : strlen(s);
	}
	if (s[i] == '"' || s[i] == '\'') {
		char q = s[i++];
		while (s[i] && s[i] != q) {
			if (s[i] == '\\' && s[i + 1])
				i++;
			i++;
		}
		return s[i] ? i + 1 : i;
	}
	return i;
}

/* Index just past the bracket group opening at s[i]. */
static size_t balanced(const char *s, size_t i, char open, char close)
{
	int depth = 0;
	while (s[i]) {
		size_t j = skip_lexeme(s, i);
		if (j != i) {
			i = j;
			continue;
		}
		if (s[i] == open)
			depth++;
		else if (s[i] == close && --depth == 0)
			return i + 1;
		i++;
	}
	die(s, s + i, "unbalanced brackets");
	return 0;
}

static int ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == ':'; }

/* The start of the kernel expression that ends just before `at` (an
 * identifier, possibly qualified, with optional template arguments). */
static size_t kernel_start(const char *s, size_t at)
{
	size_t j = at;
	if (j > 0 && s[j - 1] == '>') { /* template arguments */
		int depth = 0;
		while (j > 0) {
			j--;
			if (s[j] == '>')
				depth++;
			else if (s[j] == '<' && --depth == 0)
				break;
		}
		if (depth)
			die(s, s + at, "unbalanced template arguments before <<<");
	}
	while (j > 0 && ident_char(s[j - 1]))
		j--;
	if (j == at || !(isalpha((unsigned char)s[j]) || s[j] == '_'))
		die(s, s + at, "no kernel name before <<<");
	return j;
}

static int word_at(const char *s, size_t i, const char *w)
{
	size_t n = strlen(w);
	return !strncmp(s + i, w, n) && !ident_char(s[i + n]) && (i == 0 || !ident_char(s[i - 1]));
}

static size_t skip_space(const char *s, size_t i)
{
	while (isspace((unsigned char)s[i]))
		i++;
	return i;
}

/* Rewrites a __shared__ declaration starting at s[i] (the keyword, possibly
 * after `extern`); `ext` tells whether `extern` came first. Returns the
 * index just past its ';'. */
static size_t rewrite_shared(const char *s, size_t i, int ext, struct buf *out)
{
	size_t semi = i;
	while (s[semi] && s[semi] != ';')
		semi++;
	if (!s[semi])
		die(s, s + i, "__shared__ declaration without ';'");
	size_t p = skip_space(s, i + strlen("__shared__"));
	if (word_at(s, p, "__align__")) {
		p = balanced(s, skip_space(s, p + strlen("__align__")), '(', ')');
		p = skip_space(s, p);
	}
	/* the declarator: the last identifier before the first '[' */
	size_t lb = p;
	while (lb < semi && s[lb] != '[')
		lb++;
	if (lb == semi)
		die(s, s + i, "__shared__ declaration that is not an array");
	size_t ne = lb;
	while (ne > p && isspace((unsigned char)s[ne - 1]))
		ne--;
	size_t nb = ne;
	while (nb > p && ident_char(s[nb - 1]))
		nb--;
	if (nb == ne || nb == p)
		die(s, s + i, "cannot find the type and name of a __shared__ array");
	char name[128], type[256];
	snprintf(name, sizeof name, "%.*s", (int)(ne - nb), s + nb);
	size_t te = nb;
	while (te > p && isspace((unsigned char)s[te - 1]))
		te--;
	snprintf(type, sizeof type, "%.*s", (int)(te - p), s + p);
	char line[1024];
	if (ext) {
		snprintf(line, sizeof line, "%s *%s = (%s *)cuemu_dyn_smem();", type, name, type);
		puts_(out, line);
	} else {
		snprintf(line, sizeof line, "static %s %s%.*s; cuemu_shared_register(%s, sizeof(%s));",
			 type, name, (int)(semi - lb), s + lb, name, name);
		puts_(out, line);
	}
	return semi + 1;
}

static int ends_with(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);
	return n >= k && !strncmp(s + n - k, suf, k);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cu2cpp SRC.cu OUT.cpp\n");
		return 2;
	}
	src_name = argv[1];
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	struct buf in = { 0 }, out = { 0 };
	char chunk[65536];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
		put(&in, chunk, r);
	fclose(f);
	if (!in.p)
		put(&in, "", 0);
	const char *s = in.p;

	/* the source's directory, for quoted includes */
	char dir[512] = "";
	const char *slash = strrchr(argv[1], '/');
	if (slash)
		snprintf(dir, sizeof dir, "%.*s/", (int)(slash - argv[1] + 1) - 1, argv[1]);

	char head[1024];
	snprintf(head, sizeof head, "#include <cuda_runtime.h>\n#line 1 \"%s\"\n", argv[1]);
	puts_(&out, head);
	size_t i = 0, copied = 0;
	int bol = 1; /* at the beginning of a line (only spaces since) */
	while (s[i]) {
		size_t j = skip_lexeme(s, i);
		if (j != i) {
			i = j;
			bol = 0;
			continue;
		}
		if (bol && s[i] == '#') {
			size_t k = skip_space(s, i + 1);
			if (!strncmp(s + k, "include", 7)) {
				k = skip_space(s, k + 7);
				if (s[k] == '"') {
					size_t e = k + 1;
					while (s[e] && s[e] != '"' && s[e] != '\n')
						e++;
					if (s[e] != '"')
						die(s, s + i, "bad #include");
					if (!ends_with(s + k + 1, e - k - 1, ".cuh")) {
						put(&out, s + copied, k + 1 - copied);
						puts_(&out, dir);
						copied = k + 1;
					}
					i = e + 1;
					bol = 0;
					continue;
				}
			}
		}
		if (s[i] == '\n')
			bol = 1;
		else if (!isspace((unsigned char)s[i]))
			bol = 0;
		if (s[i] == '<' && !strncmp(s + i, "<<<", 3)) {
			size_t ks = kernel_start(s, i);
			/* a kernel start in text already copied cannot happen: the
			 * expression is on this line, after the last rewrite */
			if (ks < copied)
				die(s, s + i, "kernel expression overlaps an earlier rewrite");
			const char *ce = strstr(s + i + 3, ">>>");
			if (!ce)
				die(s, s + i, "<<< without >>>");
			size_t a = skip_space(s, (size_t)(ce - s) + 3);
			if (s[a] != '(')
				die(s, s + i, "no argument list after >>>");
			size_t ae = balanced(s, a, '(', ')');
			put(&out, s + copied, ks - copied);
			puts_(&out, "cuemu_launch(\"");
			put(&out, s + ks, i - ks);
			puts_(&out, "\", ");
			put(&out, s + ks, i - ks);
			puts_(&out, ", cuemu_cfg(");
			put(&out, s + i + 3, (size_t)(ce - s) - (i + 3));
			puts_(&out, ")");
			size_t b = skip_space(s, a + 1);
			if (b != ae - 1) {
				puts_(&out, ", ");
				put(&out, s + a + 1, ae - 1 - (a + 1));
			}
			puts_(&out, ")");
			i = copied = ae;
			continue;
		}
		if (word_at(s, i, "extern")) {
			size_t k = skip_space(s, i + 6);
			if (word_at(s, k, "__shared__")) {
				put(&out, s + copied, i - copied);
				i = copied = rewrite_shared(s, k, 1, &out);
				continue;
			}
		}
		if (word_at(s, i, "__shared__")) {
			put(&out, s + copied, i - copied);
			i = copied = rewrite_shared(s, i, 0, &out);
			continue;
		}
		i++;
	}
	put(&out, s + copied, i - copied);
	f = fopen(argv[2], "wb");
	if (!f || fwrite(out.p, 1, out.n, f) != out.n || fclose(f)) {
		perror(argv[2]);
		return 1;
	}
	free(in.p);
	free(out.p);
	return 0;
}
