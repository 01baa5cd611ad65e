/* train_startup.c: `hug train`'s start-up summary (cli/train_startup.h). */
#include "train_startup.h"

#include <inttypes.h>
#include <string.h>

#include "../peft/lora_model.h"
#include "../train/mem_plan.h"
#include "../train/recipe.h"
#include "../train/trainer.h"

/* "1,234,567" into buf. */
static const char *commas(int64_t v, char *buf, size_t n)
{
	char d[32];
	int len = snprintf(d, sizeof(d), "%" PRId64, v), o = 0;
	for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
		if (i > 0 && d[i - 1] != '-' && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = d[i];
	}
	buf[o] = '\0';
	return buf;
}

/* A parameter count as "559 M", "7.07 B" into buf. */
static const char *size_name(int64_t n, char *buf, size_t len)
{
	double v = (double)n;
	if (v >= 1e9)
		snprintf(buf, len, "%.3g B", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, len, "%.3g M", v / 1e6);
	else
		snprintf(buf, len, "%.3g K", v / 1e3);
	return buf;
}

/* This process's resident bytes (Linux /proc/self/status VmRSS), or 0. */
static int64_t resident_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (int64_t)kb * 1024;
}

static int64_t host_bytes(const struct arena *a)
{
	return a && (!a->allocator || a->allocator->device == DEV_CPU) ?
		       (int64_t)arena_capacity(a) : 0;
}

/* What the process holds besides the model's host arenas (parameters,
 * gradients, optimizer state, reduction buffers, adapters): the binary
 * and its libraries, thread stacks, BLAS buffers, the loader. Measured
 * now, before the first step. */
static int64_t process_overhead(const struct trainer *t)
{
	struct model_parts mp = model_parts(&t->model);
	int64_t known = host_bytes(mp.params) + host_bytes(mp.grads) + host_bytes(&t->opt.state) +
			host_bytes(&t->dist.mem);
	if (t->lora)
		known += host_bytes(&t->lora->params) + host_bytes(&t->lora->grads);
	int64_t rss = resident_bytes();
	return rss > known ? rss - known : 0;
}

/* s as one shell word: as it is when it holds only safe characters, else
 * in single quotes. */
static void shell_word(const char *s, FILE *out)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "-_./=:,+@%") == strlen(s)) {
		fputs(s, out);
		return;
	}
	fputc('\'', out);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", out);
		else
			fputc(*s, out);
	fputc('\'', out);
}

void train_print_startup(const struct recipe *r, const struct trainer *t, const char *path,
			 const char *const *ov, int n_ov, int world, FILE *out)
{
	char a[32], b[32], c[32], sz[32];
	struct mem_layout l;
	struct mem_plan p;
	mem_layout_of_recipe(r, world, &l);
	mem_plan_compute(&r->model, &l, &p);
	int64_t trainable = t->lora ? lora_model_numel(t->lora) : p.params_total;
	int64_t all = p.params_total + (t->lora ? trainable : 0); /* PEFT's "all params" */
	fprintf(out, "hug train: model %s (%s), %s parameters: %s trainable of %s (%.4g%%)%s\n",
		r->model.family->display, r->model.family->name,
		size_name(p.params_total, sz, sizeof(sz)),
		commas(trainable, a, sizeof(a)), commas(all, b, sizeof(b)),
		100.0 * (double)trainable / (double)all,
		t->lora ? ", LoRA" : ", full training");
	fprintf(out, "hug train: layout %d data x %d tensor x 1 pipeline, ZeRO-%d; %s tokens per step "
		"(%" PRId64 " sequences x %" PRId64 "), %" PRId64 " steps, %s tokens in all\n",
		l.dp, l.tp, l.zero, commas(p.tokens_per_step, c, sizeof(c)), r->global_batch_size,
		r->seq_len, r->steps, commas(p.tokens_per_step * r->steps, a, sizeof(a)));
	/* on the CPU the plan's terms are this process's memory: add what
	 * it holds besides them */
	mem_plan_print(&p, &l, t->device == DEV_CPU ? process_overhead(t) : 0, "hug train: ", out);
	fprintf(out, "hug train: resume with: ");
	if (world > 1)
		fprintf(out, "mpirun -np %d ", world);
	fputs("hug train ", out);
	shell_word(path, out);
	for (int i = 0; i < n_ov; i++) {
		fputs(" --set ", out);
		shell_word(ov[i], out);
	}
	fputs(" --resume\n", out);
}
