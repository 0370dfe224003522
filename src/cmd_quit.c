/* cmd_quit.c — quit and exit: run no more input. */
#include "simplecqrs/cmd.h"

static cmd_status exec(cmd_ctx *ctx, const cmd_entry *self,
		       const parse_result *p)
{
	(void)ctx;
	(void)self;
	(void)p;
	return CMD_QUIT;
}

const cmd_entry cmd_quit_entry = {
	"quit", 0, 0, "", "quit",
	"leave (so do exit and Ctrl-D)",
	"quit", exec,
};

const cmd_entry cmd_exit_entry = {
	"exit", 0, 0, "", "exit",
	"leave (so do quit and Ctrl-D)",
	"exit", exec,
};
