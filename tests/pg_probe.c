/* pg_probe.c — the store API over a pipe, for pg_test.py: what the shell
 * cannot show by itself (store_poll at an idle prompt, the wait hook,
 * store_location and store_created).
 *
 * usage: pg_probe URI, then one command a line on stdin, one answer a line:
 *   poll           changed | unchanged | error MESSAGE
 *   location       the location, or (none)
 *   created        yes | no
 *   stop-after MS  the wait hook says stop once it has waited MS ms
 *   deposit ID     1 into ID: ok POSITION | busy|storage|conflict MESSAGE,
 *                  then " hook CALLS LAST_MS" (the wait hook's calls) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/store.h"

typedef struct hook {
	unsigned stop_after;	/* 0: never says stop */
	unsigned calls, last;
} hook;

static bool waiting(void *ctx, unsigned waited_ms)
{
	hook *h = ctx;
	h->calls++;
	h->last = waited_ms;
	return h->stop_after == 0 || waited_ms < h->stop_after;
}

static int count_event(void *ctx, const store_event *ev)
{
	*(uint64_t *)ctx = ev->version;
	return 0;
}

static void deposit(store *s, hook *h, const char *id)
{
	uint64_t version = 0, position = 0;
	h->calls = h->last = 0;
	error_code rc = store_read_stream(s, id, 0, count_event, &version);
	if (rc == ERR_OK) {
		store_new_event ev = { .stream = id, .expected_version = version,
				       .type = EVENT_CREDITED, .amount = 1 };
		rc = store_append(s, &ev, 1, 0, &position);
	}
	error_code committed = store_commit(s);
	if (rc == ERR_OK)
		rc = committed;
	if (rc == ERR_OK)
		printf("ok %llu", (unsigned long long)position);
	else
		printf("%s %s", error_name(rc), store_errmsg(s));
	printf(" hook %u %u\n", h->calls, h->last);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: pg_probe URI\n", stderr);
		return 2;
	}
	store *s;
	char why[512];
	if (store_open(argv[1], &s, why, sizeof why) != ERR_OK) {
		printf("cannot open: %s\n", why);
		return 2;
	}
	hook h = { 0 };
	store_set_wait(s, waiting, &h);
	char line[512];
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "poll") == 0) {
			bool changed;
			if (store_poll(s, &changed) == ERR_OK)
				puts(changed ? "changed" : "unchanged");
			else
				printf("error %s\n", store_errmsg(s));
		} else if (strcmp(line, "location") == 0) {
			puts(store_location(s) ? store_location(s) : "(none)");
		} else if (strcmp(line, "created") == 0) {
			puts(store_created(s) ? "yes" : "no");
		} else if (strncmp(line, "stop-after ", 11) == 0) {
			h.stop_after = (unsigned)strtoul(line + 11, NULL, 10);
			puts("ok");
		} else if (strncmp(line, "deposit ", 8) == 0) {
			deposit(s, &h, line + 8);
		} else {
			printf("unknown %s\n", line);
		}
		fflush(stdout);
	}
	store_free(s);
	return 0;
}
