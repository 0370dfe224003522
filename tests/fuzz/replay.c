/* replay.c — runs saved inputs through a fuzz target without libFuzzer, so
 * any compiler builds the targets and replays their corpus as a test.
 *
 *     replay_<target> FILE_OR_FOLDER...
 *
 * A folder's regular files run in name order. A failed check aborts, as
 * under libFuzzer, and the input that was running is named on stderr
 * (FUZZ_REPLAY_VERBOSE=1 names every one). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "simplecqrs/xmalloc.h"
#include "fuzz.h"

static unsigned long replayed;
static int verbose;
static const char *current;	/* the input being run */

/* Names the input that crashed, then dies of the same signal. */
static void on_crash(int sig)
{
	if (current) {
		static const char msg[] = "replay: failed on input ";
		(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
		(void)!write(STDERR_FILENO, current, strlen(current));
		(void)!write(STDERR_FILENO, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *data = xmalloc(cap);
	size_t got;
	while ((got = fread(data + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			data = xrealloc(data, cap *= 2);
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		free(data);
		return -1;
	}
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	/* an exact-size copy, so ASan sees a read past the input's end */
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, data, n);
	free(data);
	current = path;
	LLVMFuzzerTestOneInput(exact, n);
	current = NULL;
	free(exact);
	replayed++;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_folder(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof *names);
			if (names == NULL)
				abort();
		}
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		names[n] = malloc(len);
		snprintf(names[n++], len, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof *names, compare_names);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && run_file(names[i]))
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
		return 2;
	}
	verbose = getenv("FUZZ_REPLAY_VERBOSE") != NULL;
	signal(SIGABRT, on_crash);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGFPE, on_crash);
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: cannot open '%s': %s\n", argv[i],
				strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode) ? run_folder(argv[i]) : run_file(argv[i])) {
			rc = 1;
		}
	}
	printf("replayed %lu inputs\n", replayed);
	if (replayed == 0 && rc == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		rc = 1;
	}
	return rc;
}
