/* test_base_json.c: the growable buffer of base/buf.h and the checked JSON
 * member readers and writers of base/json.h: messages name the file, the
 * member's path and what was expected; optional members keep their
 * default; the flat object is laid out as Python's json.dumps(indent=2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/buf.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "harness.h"

TEST(buf_grows_and_stays_nul_terminated)
{
	struct buf b = { 0 };
	buf_put(&b, "", 0);
	CHECK(b.p && b.n == 0 && b.p[0] == '\0');
	for (int i = 0; i < 1000; i++)
		buf_put(&b, "abc", 3);
	CHECK(b.n == 3000 && b.cap > b.n && b.p[b.n] == '\0' && !memcmp(b.p + 2997, "abc", 3));
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "<%s|%d>", big, 42); /* longer than buf_printf's stack space */
	CHECK(b.n == 3000 + 1 + 599 + 4 && !strcmp(b.p + b.n - 4, "|42>"));
	buf_free(&b);
	CHECK(!b.p && b.n == 0 && b.cap == 0);
}

static cJSON *parse(const char *text)
{
	hug_json_init();
	return cJSON_Parse(text);
}

TEST(json_get_errors_name_file_path_and_key)
{
	cJSON *j = parse("{\"n\": \"fast\", \"i\": 2.5, \"b\": 1, \"s\": 3, \"u\": \"-1\", "
			 "\"neg\": -3, \"null\": null}");
	REQUIRE(j);
	const struct json_at at = { "r.json", "optim" };
	struct hug_error err = { 0 };
	double d = 7;
	int64_t i = 9;
	bool b = true;
	const char *s = "keep";
	uint64_t u = 5;
	CHECK(hug_json_get_number(&at, j, "n", true, &d, &err) == -1);
	CHECK(!strcmp(err.msg, "r.json: optim.n: expected a number, got \"fast\""));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_int(&(struct json_at){ "r.json", NULL }, j, "i", 0, HUG_JSON_INT_MAX,
			       true, &i, &err) == -1);
	CHECK(!strcmp(err.msg, "r.json: i: expected an integer >= 0, got 2.5"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_int(&(struct json_at){ NULL, "d" }, j, "neg", 1, 8, true, &i, &err) == -1);
	CHECK(!strcmp(err.msg, "d.neg: expected an integer in [1, 8], got -3"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_bool(&at, j, "b", false, &b, &err) == -1);
	CHECK(!strcmp(err.msg, "r.json: optim.b: expected true or false, got 1"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_string(&at, j, "s", false, &s, &err) == -1);
	CHECK(!strcmp(err.msg, "r.json: optim.s: expected a string, got 3"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_u64_string(&at, j, "u", true, &u, &err) == -1);
	CHECK(strstr(err.msg, "r.json: optim.u: expected a decimal string") != NULL);
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_number(&at, j, "absent", true, &d, &err) == -1);
	CHECK(!strcmp(err.msg, "r.json: optim.absent: expected a number, got nothing"));
	/* optional: absent or null keeps the value */
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_number(&at, j, "absent", false, &d, &err) == 0 && d == 7);
	CHECK(hug_json_get_int(&at, j, "null", 0, 3, false, &i, &err) == 0 && i == 9);
	CHECK(!err.set && b && !strcmp(s, "keep") && u == 5);
	cJSON_Delete(j);
}

TEST(json_get_reads_valid_members)
{
	cJSON *j = parse("{\"n\": 0.5, \"i\": 9007199254740992, \"b\": false, \"s\": \"x\", "
			 "\"u\": \"18446744073709551615\"}");
	REQUIRE(j);
	struct hug_error err = { 0 };
	double d = 0;
	int64_t i = 0;
	bool b = true;
	const char *s = NULL;
	uint64_t u = 0;
	CHECK(hug_json_get_number(NULL, j, "n", true, &d, &err) == 0 && d == 0.5);
	CHECK(hug_json_get_int(NULL, j, "i", 0, HUG_JSON_INT_MAX, true, &i, &err) == 0 &&
	      i == HUG_JSON_INT_MAX);
	CHECK(hug_json_get_bool(NULL, j, "b", true, &b, &err) == 0 && !b);
	CHECK(hug_json_get_string(NULL, j, "s", true, &s, &err) == 0 && !strcmp(s, "x"));
	CHECK(hug_json_get_u64_string(NULL, j, "u", true, &u, &err) == 0 && u == UINT64_MAX);
	CHECK(!err.set);
	cJSON_Delete(j);
}

TEST(json_readers_refuse_a_key_given_twice)
{
	cJSON *j = parse("{\"lr\": 1, \"n\": 2, \"lr\": 3}");
	REQUIRE(j);
	struct hug_error err = { 0 };
	double d = 7;
	int64_t i = 9;
	const cJSON *m = NULL;
	CHECK(hug_json_get_number(&(struct json_at){ "r.json", "optim" }, j, "lr", false, &d,
				  &err) == -1 && d == 7);
	CHECK(!strcmp(err.msg, "r.json: optim.lr: given twice"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_member(&(struct json_at){ "c.json", NULL }, j, "lr", &m, &err) == -1);
	CHECK(!strcmp(err.msg, "c.json: lr: given twice"));
	err = (struct hug_error){ 0 };
	CHECK(hug_json_get_int(NULL, j, "n", 0, 8, true, &i, &err) == 0 && i == 2 && !err.set);
	CHECK(hug_json_member(NULL, j, "absent", &m, &err) == 0 && m == NULL);
	cJSON_Delete(j);
	j = parse("{\"big\": 1e999}"); /* cJSON reads it as inf */
	REQUIRE(j);
	CHECK(hug_json_get_number(NULL, j, "big", true, &d, &err) == -1 && d == 7);
	CHECK(strstr(err.msg, "big: expected a number") != NULL);
	cJSON_Delete(j);
}

TEST(json_flat_object_and_quote)
{
	struct buf b = { 0 };
	const struct json_member m[] = { { "r", "8" }, { "t", "[\"a\",\"b\"]" }, { "k\"\n", "null" } };
	hug_json_flat_object(&b, m, 3);
	CHECK(!strcmp(b.p, "{\n  \"r\": 8,\n  \"t\": [\"a\",\"b\"],\n  \"k\\\"\\n\": null\n}\n"));
	buf_free(&b);
	hug_json_quote(&b, "a\\b\x01\tü");
	CHECK(!strcmp(b.p, "\"a\\\\b\\u0001\\tü\""));
	buf_free(&b);
}

TEST(json_position_counts_lines_and_columns)
{
	const char *t = "{\n  \"a\": x\n}";
	int line = 0, col = 0;
	hug_json_position(t, strlen(t), 9, &line, &col); /* the x */
	CHECK(line == 2 && col == 8);
	hug_json_position(t, strlen(t), 0, &line, &col);
	CHECK(line == 1 && col == 1);
	hug_json_position(t, 3, 100, &line, &col); /* clamped to len */
	CHECK(line == 2 && col == 2);
}

TEST(json_read_object_names_the_file_and_the_position)
{
	char root[] = "/tmp/hug-json-XXXXXX";
	REQUIRE(mkdtemp(root));
	char *p = fs_join(root, "c.json");
	struct hug_error err = { 0 };
	cJSON *j = NULL;
	test_write_file(p, "{\n  \"a\": x\n}");
	CHECK(hug_json_read_object(p, 1 << 20, NULL, &j, &err) == -1 && !j);
	CHECK(strstr(err.msg, "c.json: not valid JSON (error near line 2, column 8); "
		      "expected a JSON object") != NULL);
	err = (struct hug_error){ 0 };
	test_write_file(p, "{\"a\": 1}\n x");
	CHECK(hug_json_read_object(p, 1 << 20, NULL, &j, &err) == -1);
	CHECK(strstr(err.msg, "text after the value near line 2, column 2") != NULL);
	err = (struct hug_error){ 0 };
	test_write_file(p, "");
	CHECK(hug_json_read_object(p, 1 << 20, NULL, &j, &err) == -1);
	CHECK(strstr(err.msg, "not valid JSON (the file is empty)") != NULL);
	err = (struct hug_error){ 0 };
	test_write_file(p, "[1]");
	CHECK(hug_json_read_object(p, 1 << 20, "a config", &j, &err) == -1);
	CHECK(strstr(err.msg, "c.json: expected a config, got an array") != NULL);
	err = (struct hug_error){ 0 };
	test_write_file(p, " {\"a\": 1}\n");
	CHECK(hug_json_read_object(p, 1 << 20, NULL, &j, &err) == 0 && cJSON_IsObject(j));
	cJSON_Delete(j);
	fs_remove_tree(root, &err);
	hug_free(p);
}
