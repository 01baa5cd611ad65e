/* test_layers.c: scripts/check-layers.sh (run by `make test` on the tree)
 * passes a small tree whose includes point down the layers and fails one
 * with a planted upward include, naming the file, the line and both
 * layers; tests/ and tools/ stay exempt. Run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"

#define SCRIPT "scripts/check-layers.sh"

/* Writes root/rel (creating its directory). */
static void put(const char *root, const char *rel, const char *text)
{
	char *p = fs_join(root, rel), *dir = fs_parent(p);
	struct hug_error err = { 0 };
	fs_make_dirs(dir, &err);
	test_write_file(p, text);
	hug_free(dir);
	hug_free(p);
}

TEST(check_layers_fails_on_an_upward_include)
{
	if (access(SCRIPT, X_OK) != 0)
		SKIP("run from the repository root");
	char root[] = "/tmp/hug-layers-XXXXXX";
	REQUIRE(mkdtemp(root));
	put(root, "base/a.h", "#include <stdio.h>\n");
	put(root, "autograd/t.h", "#include \"../base/a.h\"\n");
	put(root, "nn/m.c", "#include \"../autograd/t.h\"\n#include \"m.h\"\n");
	put(root, "nn/m.h", "");
	put(root, "io/r.c", "#include \"../nn/m.h\"\n#include \"../data/d.h\"\n");
	put(root, "data/d.h", "");
	put(root, "train/x.h", "");
	put(root, "cli/main.c", "#include \"../train/x.h\"\n");
	put(root, "tests/t.c", "#include \"../cli/main.c\"\n"); /* exempt */
	char cmd[256], out[2048];
	snprintf(cmd, sizeof(cmd), SCRIPT " %s", root);
	int rc = test_run_command(cmd, out, sizeof(out));
	CHECK(rc == 0);
	if (rc != 0)
		fprintf(stderr, "%s", out);
	/* plant an upward include: data (3) may not use train (5) */
	put(root, "data/d.c", "/* x */\n#include \"d.h\"\n  #  include \"../train/x.h\"\n");
	rc = test_run_command(cmd, out, sizeof(out));
	CHECK(rc == 1);
	CHECK(strstr(out, "data/d.c:3: data includes train (../train/x.h)") != NULL);
	/* and nn may not use io */
	put(root, "data/d.c", "");
	put(root, "nn/m.h", "#include \"../io/r.h\"\n");
	rc = test_run_command(cmd, out, sizeof(out));
	CHECK(rc == 1 && strstr(out, "nn/m.h:1: nn includes io") != NULL);
	struct hug_error err = { 0 };
	fs_remove_tree(root, &err);
}
