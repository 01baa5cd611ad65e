/* train.c: `hug train RECIPE [--set key=value ...] [--resume]`: the main
 * job. Runs the recipe's steps with periodic logging (a status line on a
 * TTY, plain lines otherwise, records in RUN/metrics.jsonl), validation and
 * checkpoints; SIGINT/SIGTERM stop after the current step with a
 * checkpoint; a non-finite loss stops the run (or skips the step) without
 * writing a poisoned checkpoint. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../autograd/profile.h"
#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../parallel/comm.h"
#include "../train/checkpoint.h"
#include "../train/recipe_agree.h"
#include "../train/tensorboard.h"
#include "../train/trainer.h"
#include "cli.h"
#include "sample.h"

static volatile sig_atomic_t stop_signal;
static struct parallel par;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct run {
	struct recipe recipe;
	struct trainer t;
	cJSON *history;        /* every metrics record, for trainer_state.json */
	FILE *metrics;         /* RUN/metrics.jsonl */
	struct tb_writer *tb;  /* RUN/events.out.tfevents.* (train.tensorboard), or NULL */
	bool tty;
	double t0, last_log;   /* wall clock */
	int64_t last_log_tokens;
	int64_t last_saved;    /* step of the newest checkpoint, -1 none */
	int64_t last_eval;     /* step of the last validation, -1 none */
};

/* Logging is not worth a run: a TensorBoard file that cannot be written
 * is reported once and closed. */
static void tb_failed(struct run *run, const struct hug_error *err)
{
	fprintf(stderr, "%shug train: TensorBoard logging stops: %s\n", run->tty ? "\n" : "",
		err->msg);
	tb_close(run->tb);
	run->tb = NULL;
}

/* Appends a record to the history and metrics.jsonl (one line, flushed),
 * and to the TensorBoard events. */
static void record(struct run *run, cJSON *rec)
{
	char *line = cJSON_PrintUnformatted(rec);
	if (run->metrics) { /* the writing rank */
		fprintf(run->metrics, "%s\n", line);
		fflush(run->metrics);
	}
	cJSON_free(line);
	struct hug_error err = { 0 };
	if (run->tb && tb_record(run->tb, rec, &err))
		tb_failed(run, &err);
	cJSON_AddItemToArray(run->history, rec);
}

static void fmt_eta(double s, char *buf, size_t n)
{
	if (!isfinite(s) || s < 0)
		snprintf(buf, n, "?");
	else if (s >= 3600)
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
	else
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void log_step(struct run *run, const struct step_result *res)
{
	struct trainer *t = &run->t;
	const struct recipe *r = &run->recipe;
	double tnow = now(), dt = tnow - run->last_log;
	double tps = dt > 0 ? (double)(t->tokens_seen - run->last_log_tokens) / dt : 0;
	double tflops = tps * t->flops_per_token / 1e12;
	double mfu = r->peak_tflops > 0 ? tflops / r->peak_tflops : NAN;
	double elapsed = tnow - run->t0;
	double eta = (double)(r->steps - t->step) * elapsed /
		     (double)(t->step > 0 ? t->step : 1);
	run->last_log = tnow;
	run->last_log_tokens = t->tokens_seen;
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddNumberToObject(rec, "step", (double)t->step);
	cJSON_AddNumberToObject(rec, "loss", res->loss);
	cJSON_AddNumberToObject(rec, "lr", res->lr);
	cJSON_AddNumberToObject(rec, "grad_norm", res->grad_norm);
	cJSON_AddNumberToObject(rec, "batch", (double)res->batch);
	cJSON_AddNumberToObject(rec, "tokens", (double)t->tokens_seen);
	cJSON_AddNumberToObject(rec, "target_tokens", (double)res->target_tokens);
	cJSON_AddNumberToObject(rec, "tokens_per_s", tps);
	cJSON_AddNumberToObject(rec, "tflops", tflops);
	if (isfinite(mfu))
		cJSON_AddNumberToObject(rec, "mfu", mfu);
	cJSON_AddNumberToObject(rec, "elapsed_s", elapsed);
	if (res->skipped)
		cJSON_AddBoolToObject(rec, "skipped", true);
	record(run, rec);
	char e[32], m[32] = "";
	fmt_eta(eta, e, sizeof(e));
	if (isfinite(mfu))
		snprintf(m, sizeof(m), " mfu %.1f%%", 100 * mfu);
	if (run->tty) {
		int width = 24, done = (int)((double)width * (double)t->step / (double)r->steps);
		char bar[32];
		for (int i = 0; i < width; i++)
			bar[i] = i < done ? '#' : '.';
		bar[width] = '\0';
		printf("\r[%s] step %lld/%lld loss %.4f lr %.2e |g| %.3f %.0f tok/s%s eta %s ",
		       bar, (long long)t->step, (long long)r->steps, res->loss, res->lr,
		       res->grad_norm, tps, m, e);
	} else {
		printf("step %lld/%lld loss %.4f lr %.3e grad_norm %.4f tokens/s %.0f%s eta %s%s\n",
		       (long long)t->step, (long long)r->steps, res->loss, res->lr, res->grad_norm,
		       tps, m, e, !res->skipped ? ""
		       : res->target_tokens ? " (skipped: not finite)"
					    : " (skipped: every target masked)");
	}
	fflush(stdout);
}

static int evaluate(struct run *run, struct hug_error *err)
{
	double loss;
	if (run->last_eval == run->t.step)
		return 0; /* this step's validation is done */
	run->last_eval = run->t.step;
	/* a resumed run's history may hold it already (a finished run resumed) */
	for (const cJSON *h = run->history ? run->history->child : NULL; h; h = h->next) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(h, "step");
		if (cJSON_GetObjectItemCaseSensitive(h, "valid_loss") && cJSON_IsNumber(st) &&
		    st->valuedouble == (double)run->t.step)
			return 0;
	}
	if (trainer_eval(&run->t, &loss, err))
		return -1;
	if (!isfinite(loss))
		return 0;
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddNumberToObject(rec, "step", (double)run->t.step);
	cJSON_AddNumberToObject(rec, "valid_loss", loss);
	cJSON_AddNumberToObject(rec, "valid_ppl", exp(loss));
	record(run, rec);
	printf("%sstep %lld validation loss %.4f perplexity %.2f\n", run->tty ? "\n" : "",
	       (long long)run->t.step, loss, exp(loss));
	return 0;
}

static int save(struct run *run, struct hug_error *err)
{
	char *path = NULL;
	if (checkpoint_save(&run->t, run->history, &path, err))
		return -1;
	printf("%ssaved %s\n", run->tty ? "\n" : "", path);
	fflush(stdout);
	hug_free(path);
	run->last_saved = run->t.step;
	return 0;
}

/* Opens metrics.jsonl: rewritten from the history on resume, truncated on a
 * fresh run. */
static int open_metrics(struct run *run, struct hug_error *err)
{
	if (!parallel_is_main(&par))
		return 0;
	if (fs_make_dirs(run->recipe.out_dir, err))
		return -1;
	char *path = fs_join(run->recipe.out_dir, "metrics.jsonl");
	run->metrics = fopen(path, "w");
	int rc = run->metrics ? 0 : hug_error_set(err, "%s: cannot create: %s", path, strerror(errno));
	hug_free(path);
	for (cJSON *rec = rc ? NULL : run->history->child; rec; rec = rec->next) {
		char *line = cJSON_PrintUnformatted(rec);
		fprintf(run->metrics, "%s\n", line);
		cJSON_free(line);
	}
	/* a new events file per start; on resume it tells TensorBoard to drop
	 * what the interrupted run logged past the checkpoint */
	if (!rc && run->recipe.tensorboard)
		rc = tb_open(&run->tb, run->recipe.out_dir, run->t.step, NULL, err);
	return rc;
}

static int start(struct run *run, bool resume, struct hug_error *err)
{
	const char *out = run->recipe.out_dir;
	/* --resume: the newest intact checkpoint, skipping (and naming) damaged
	 * ones */
	char *latest = resume ? checkpoint_resume_pick(out, stdout, err) : checkpoint_latest(out);
	int rc = 0;
	if (!latest && err->set) {
		rc = -1;
	} else if (latest && !resume) {
		rc = hug_error_set(err, "%s already holds checkpoints (newest %s): pass --resume "
				   "to continue, or choose another train.out_dir", out, latest);
	} else if (latest) {
		rc = checkpoint_load(&run->t, latest, &run->history, err);
		if (!rc) {
			printf("resumed from %s at step %lld\n", latest, (long long)run->t.step);
			run->last_saved = run->t.step;
		}
	} else if (resume) {
		printf("no checkpoint in %s: starting from step 0\n", out);
	}
	hug_free(latest);
	if (!run->history)
		run->history = cJSON_CreateArray();
	return rc ? -1 : open_metrics(run, err);
}

/* The loop: steps, logs, evaluations, checkpoints, signals. */
static int loop(struct run *run, struct hug_error *err)
{
	struct trainer *t = &run->t;
	const struct recipe *r = &run->recipe;
	run->t0 = run->last_log = now();
	run->last_log_tokens = t->tokens_seen;
	while (t->step < r->steps && !stop_signal) {
		struct step_result res;
		if (trainer_step(t, &res, err))
			return -1;
		/* a signal reaching any rank stops every rank after this step */
		int sig = stop_signal;
		comm_allreduce(&par.world, &sig, 1, DT_I32, COMM_MAX);
		stop_signal = sig;
		if (t->step % r->log_every == 0 || t->step == r->steps || res.skipped)
			log_step(run, &res);
		if (r->eval_every && t->step % r->eval_every == 0 && evaluate(run, err))
			return -1;
		if (r->save_every && t->step % r->save_every == 0 && save(run, err))
			return -1;
	}
	if (!stop_signal && evaluate(run, err))
		return -1;
	if (run->last_saved != t->step && save(run, err))
		return -1;
	return 0;
}

/* Prints a continuation of each of the recipe's sample prompts (on the
 * device the model trained on). */
static int print_samples(struct run *run, struct hug_error *err)
{
	const struct recipe *r = &run->recipe;
	if (!r->tokenizer || r->sample_tokens <= 0 || r->n_sample_prompts == 0)
		return 0;
	struct tokenizer *tok;
	if (tokenizer_load(r->tokenizer, &tok, err))
		return -1;
	const struct model *m = &run->t.model;
	struct gen_opts o = gen_opts_default();
	o.max_new_tokens = (int)r->sample_tokens;
	o.temperature = 0.8;
	o.top_k = 40;
	o.top_p = 0.95;
	o.seed = r->seed;
	o.stop_id = model_dims(&run->t.model).eos_token_id;
	printf("samples (temperature 0.8, top-k 40, top-p 0.95):\n");
	int rc = 0;
	for (int i = 0; i < r->n_sample_prompts && !rc; i++) {
		struct buf out = { 0 };
		rc = sample_text(m, tok, r->sample_prompts[i], &o, &out, err);
		if (!rc)
			printf("  %s|%s\n", r->sample_prompts[i], out.p ? out.p : "");
		if (!rc && run->tb) {
			struct hug_error terr = { 0 };
			char *text = hug_malloc(strlen(r->sample_prompts[i]) + (out.p ? strlen(out.p) : 0) + 8);
			sprintf(text, "**%s**%s", r->sample_prompts[i], out.p ? out.p : "");
			if (tb_text(run->tb, "samples", run->t.step, text, &terr))
				tb_failed(run, &terr);
			hug_free(text);
		}
		buf_free(&out);
	}
	tokenizer_free(tok);
	return rc;
}

static void usage(void)
{
	printf("usage: hug train RECIPE.json [--set key.path=value ...] [--resume]\n"
	       "  --set key=value  override a recipe key (repeatable; see docs/recipes.md)\n"
	       "  --resume         continue from the newest checkpoint in train.out_dir\n");
}

/* Ends a set-up phase: every rank learns whether any rank failed it (a
 * collective over the world). 0 when none did. Otherwise -1 on every rank,
 * after each failing rank printed "hug train: rank N (host): message" and
 * rank 0 named the first failing rank; err is then cleared so the message
 * is not printed twice. In a world of one, returns -1 when `failed` with
 * err left for the caller to print. */
static int setup_agree(bool failed, struct hug_error *err)
{
	if (par.world_size <= 1)
		return failed ? -1 : 0;
	int first, n = parallel_agree(&par, failed, &first);
	if (n == 0)
		return 0;
	if (failed)
		fprintf(stderr, "hug train: rank %d (%s): %s\n", par.world_rank, parallel_host(),
			err->set ? err->msg : "set-up failed");
	if (parallel_is_main(&par))
		fprintf(stderr, "hug train: %d of %d ranks failed at set-up (first: rank %d); "
			"every rank stops\n", n, par.world_size, first);
	fflush(stderr);
	hug_error_clear(err);
	return -1;
}

int cli_train(int argc, char **argv)
{
	const char *path = NULL;
	const char **ov = hug_calloc((size_t)argc, sizeof(char *));
	int n_ov = 0;
	bool resume = false;
	struct hug_error err = { 0 };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--set") && i + 1 < argc) {
			ov[n_ov++] = argv[++i];
		} else if (!strncmp(argv[i], "--set=", 6)) {
			ov[n_ov++] = argv[i] + 6;
		} else if (!strcmp(argv[i], "--resume")) {
			resume = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage();
			hug_free(ov);
			return 0;
		} else if (argv[i][0] != '-' && !path) {
			path = argv[i];
		} else {
			hug_error_set(&err, "unexpected argument \"%s\" (see --help)", argv[i]);
		}
	}
	if (!path && !err.set) {
		usage();
		hug_free(ov);
		return 2;
	}
	struct run run = { .last_saved = -1, .last_eval = -1 };
	int rc = 2;
	hug_json_init();
	/* every set-up phase ends with setup_agree: a failure on any rank
	 * stops every rank, named, instead of leaving the others waiting in a
	 * collective */
	if (parallel_init(&par, &err) || setup_agree(err.set, &err))
		goto out;
	if (!parallel_is_main(&par) && !freopen("/dev/null", "w", stdout))
		goto out; /* only rank 0 prints */
	run.tty = parallel_is_main(&par) && isatty(STDOUT_FILENO);
	if (setup_agree(recipe_load(path, ov, n_ov, par.world_size, &run.recipe, &err) != 0,
			&err))
		goto out_recipe;
	if (setup_agree(recipe_agree(&par, run.recipe.json, resume, &err) != 0, &err) ||
	    setup_agree(parallel_set_layout(&par, run.recipe.tensor_parallel, &err) != 0, &err))
		goto out_recipe;
	if (setup_agree(trainer_init_parallel(&run.t, &run.recipe, &par, &err) != 0, &err))
		goto out_trainer; /* freed where it failed; the others free theirs */
	rc = 1;
	if (setup_agree(start(&run, resume, &err) != 0, &err))
		goto out_trainer;
	printf("hug train: %s: %lld parameters, %lld steps of %lld sequences x %lld tokens "
	       "(micro batch %lld, accumulation %lld) on %s in %s, out %s\n", path,
	       (long long)model_config_param_count(&run.recipe.model), (long long)run.recipe.steps,
	       (long long)run.recipe.global_batch_size, (long long)run.recipe.seq_len,
	       (long long)run.recipe.micro_batch_size, (long long)run.recipe.accumulation,
	       run.t.device == DEV_CPU ? "the cpu" : "cuda",
	       run.recipe.precision == PRECISION_BF16 ? "bf16 (f32 master weights)" : "f32",
	       run.recipe.out_dir);
	if (par.world_size > 1)
		printf("hug train: %d processes: tensor parallel %d x data parallel %d%s%.0d; "
		       "optimizer state %.1f MiB per rank\n", par.world_size, par.tp, par.dp,
		       run.recipe.zero ? " with ZeRO-" : "", run.recipe.zero,
		       (double)optim_state_bytes(&run.t.opt) / (1 << 20));
	fflush(stdout);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = loop(&run, &err) ? 1 : 0;
	if (parallel_is_main(&par))
		ag_profile_report(stdout);
	/* ZeRO-3 holds shards: the whole weights on every rank (collective) */
	if (!rc && !stop_signal)
		dist_unshard(&run.t.dist);
	/* samples from rank 0 alone (a tensor-parallel model needs every rank) */
	if (!rc && !stop_signal && par.tp == 1 && parallel_is_main(&par) &&
	    print_samples(&run, &err))
		rc = 1;
	if (rc && par.world_size > 1) {
		/* one rank's failure mid-run ends the job: its peers are inside
		 * collectives that it will never join */
		fprintf(stderr, "hug train: rank %d (%s): %s\n", par.world_rank, parallel_host(),
			err.msg);
		parallel_abort(&par, rc);
	}
	if (!rc && stop_signal) {
		printf("%sstopped by signal %d at step %lld; checkpoint saved\n", run.tty ? "\n" : "",
		       (int)stop_signal, (long long)run.t.step);
		rc = 128 + stop_signal;
	}
out_trainer:
	if (run.metrics)
		fclose(run.metrics);
	tb_close(run.tb);
	cJSON_Delete(run.history);
	trainer_free(&run.t);
out_recipe:
	recipe_free(&run.recipe);
out:
	if (err.set && parallel_is_main(&par))
		fprintf(stderr, "%shug train: %s\n", run.tty ? "\n" : "", err.msg);
	parallel_finalize(&par);
	hug_free(ov);
	return rc;
}
