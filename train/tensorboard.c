/* tensorboard.c: writing TensorBoard event files. Each record is
 *   uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes,
 *   the serialized Event (protobuf-c, train/tensorboard.proto),
 *   uint32 masked CRC-32C of the Event,
 * where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, as TensorFlow's
 * record format defines it. Records are appended and flushed one at a time,
 * so a killed run leaves whole records (a reader stops at a torn last one). */
#include "tensorboard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/crc32c.h"
#include "../base/fs.h"
#include "train/tensorboard.pb-c.h"

struct tb_writer {
	FILE *f;
	char *path;
	double (*clock)(void);
};

static double real_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t masked_crc(const void *p, size_t n)
{
	uint32_t c = crc32c(p, n);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static void put_le(uint8_t *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* Serializes ev with the writer's clock and appends it as one record. */
static int write_event(struct tb_writer *w, Tensorboard__Event *ev, struct hug_error *err)
{
	ev->wall_time = w->clock();
	size_t n = tensorboard__event__get_packed_size(ev);
	uint8_t *buf = hug_malloc(n + 16);
	put_le(buf, n, 8);
	put_le(buf + 8, masked_crc(buf, 8), 4);
	tensorboard__event__pack(ev, buf + 12);
	put_le(buf + 12 + n, masked_crc(buf + 12, n), 4);
	bool ok = fwrite(buf, 1, n + 16, w->f) == n + 16 && fflush(w->f) == 0;
	hug_free(buf);
	if (!ok)
		return hug_error_set(err, "%s: cannot write: %s", w->path, strerror(errno));
	return 0;
}

int tb_open(struct tb_writer **wp, const char *dir, int64_t resume_step,
	    double (*clock)(void), struct hug_error *err)
{
	*wp = NULL;
	if (fs_make_dirs(dir, err))
		return -1;
	struct tb_writer *w = hug_calloc(1, sizeof(*w));
	w->clock = clock ? clock : real_clock;
	char host[256] = "localhost", name[512];
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "events.out.tfevents.%lld.%s.%d.hug",
		 (long long)w->clock(), host, (int)getpid());
	w->path = fs_join(dir, name);
	w->f = fopen(w->path, "wb");
	if (!w->f) {
		hug_error_set(err, "%s: cannot create: %s", w->path, strerror(errno));
		tb_close(w);
		return -1;
	}
	Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
	ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
	ev.file_version = "brain.Event:2";
	int rc = write_event(w, &ev, err);
	if (!rc && resume_step > 0) {
		Tensorboard__SessionLog log = TENSORBOARD__SESSION_LOG__INIT;
		log.status = TENSORBOARD__SESSION_LOG__SESSION_STATUS__START;
		Tensorboard__Event start = TENSORBOARD__EVENT__INIT;
		start.step = resume_step + 1;
		start.what_case = TENSORBOARD__EVENT__WHAT_SESSION_LOG;
		start.session_log = &log;
		rc = write_event(w, &start, err);
	}
	if (rc) {
		tb_close(w);
		return -1;
	}
	*wp = w;
	return 0;
}

const char *tb_path(const struct tb_writer *w)
{
	return w->path;
}

/* Appends one event of `n` summary values at `step`. */
static int write_values(struct tb_writer *w, int64_t step, Tensorboard__Summary__Value **v,
			size_t n, struct hug_error *err)
{
	Tensorboard__Summary sum = TENSORBOARD__SUMMARY__INIT;
	sum.n_value = n;
	sum.value = v;
	Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
	ev.step = step;
	ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
	ev.summary = &sum;
	return write_event(w, &ev, err);
}

int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value,
	      struct hug_error *err)
{
	Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
	Tensorboard__Summary__Value *pv = &v;
	v.tag = (char *)tag;
	v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
	v.simple_value = (float)value;
	return write_values(w, step, &pv, 1, err);
}

int tb_text(struct tb_writer *w, const char *tag, int64_t step, const char *text,
	    struct hug_error *err)
{
	/* the text plugin's form: a 0-d string tensor tagged with plugin "text" */
	ProtobufCBinaryData s = { strlen(text), (uint8_t *)text };
	Tensorboard__TensorShapeProto shape = TENSORBOARD__TENSOR_SHAPE_PROTO__INIT;
	Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
	t.dtype = 7; /* DT_STRING */
	t.tensor_shape = &shape;
	t.n_string_val = 1;
	t.string_val = &s;
	Tensorboard__SummaryMetadata__PluginData plugin =
		TENSORBOARD__SUMMARY_METADATA__PLUGIN_DATA__INIT;
	plugin.plugin_name = "text";
	Tensorboard__SummaryMetadata meta = TENSORBOARD__SUMMARY_METADATA__INIT;
	meta.plugin_data = &plugin;
	meta.data_class = TENSORBOARD__DATA_CLASS__DATA_CLASS_TENSOR;
	Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
	Tensorboard__Summary__Value *pv = &v;
	v.tag = (char *)tag;
	v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
	v.tensor = &t;
	v.metadata = &meta;
	return write_values(w, step, &pv, 1, err);
}

int tb_record(struct tb_writer *w, const cJSON *rec, struct hug_error *err)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "step");
	if (!cJSON_IsNumber(st))
		return hug_error_set(err, "%s: a metrics record without a numeric \"step\"",
				     w->path);
	int n = 0;
	for (const cJSON *m = rec->child; m; m = m->next)
		n++;
	Tensorboard__Summary__Value *vals = hug_calloc((size_t)n, sizeof(*vals));
	Tensorboard__Summary__Value **pv = hug_calloc((size_t)n, sizeof(*pv));
	char (*tags)[96] = hug_calloc((size_t)n, sizeof(*tags));
	size_t k = 0;
	for (const cJSON *m = rec->child; m; m = m->next) {
		if (!m->string || !strcmp(m->string, "step") ||
		    !(cJSON_IsNumber(m) || cJSON_IsBool(m)))
			continue;
		if (!strncmp(m->string, "valid_", 6))
			snprintf(tags[k], sizeof(tags[k]), "valid/%s", m->string + 6);
		else
			snprintf(tags[k], sizeof(tags[k]), "train/%s", m->string);
		Tensorboard__Summary__Value *v = &vals[k];
		tensorboard__summary__value__init(v);
		v->tag = tags[k];
		v->value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
		v->simple_value = cJSON_IsBool(m) ? (float)cJSON_IsTrue(m) : (float)m->valuedouble;
		pv[k] = v;
		k++;
	}
	int rc = k ? write_values(w, (int64_t)st->valuedouble, pv, k, err) : 0;
	hug_free(tags);
	hug_free(pv);
	hug_free(vals);
	return rc;
}

int tb_sync(struct tb_writer *w, struct hug_error *err)
{
	if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
		return hug_error_set(err, "%s: cannot write: %s", w->path, strerror(errno));
	return 0;
}

void tb_close(struct tb_writer *w)
{
	if (!w)
		return;
	if (w->f)
		fclose(w->f);
	hug_free(w->path);
	hug_free(w);
}
