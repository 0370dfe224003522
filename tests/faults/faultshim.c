/* faultshim.c — an LD_PRELOAD library that makes one chosen write, fsync or
 * allocation fail, so tests/faults/fault_test.py can prove that simplecqrs
 * survives a failure at every such point.
 *
 * It wraps write, pwrite, pwrite64 (kind "write": any fd but 1 and 2),
 * write on fd 1 (kind "stdout") and fd 2 (kind "stderr"), fsync and
 * fdatasync (kind "fsync"), and malloc, calloc, realloc, aligned_alloc,
 * posix_memalign and memalign (kind "alloc"); and read, never failed, only
 * to note where the commands start. Calls are counted from 1 per
 * kind, and only from the moment main() starts: the shim interposes
 * __libc_start_main and hands it a main of its own that arms the counters
 * and then calls the program's. So whatever the dynamic loader and the
 * constructors of the program's libraries (libpq, gnutls, krb5, …) do
 * before main is neither counted nor failed, and the numbering does not
 * depend on them. If that interposition does not happen (a static binary,
 * an odd libc), FAULT_ARM=ctor arms from the shim's constructor instead.
 *
 * Environment:
 *   FAULT_KIND=write|fsync|alloc|stdout|stderr   the kind to fail (none:
 *                                  count only)
 *   FAULT_AT=N                     fail the Nth call of that kind (from 1)
 *   FAULT_STICKY=1                 and every later one too (a dead disk)
 *   FAULT_ERRNO=EIO|ENOSPC|EPIPE|EDQUOT|EINTR|number   errno of a failed
 *                                  write or fsync (default EIO); a failed
 *                                  allocation returns NULL with ENOMEM.
 *                                  SHORT: the write writes half of what it
 *                                  was given (at least a byte) and says so,
 *                                  which is no error; an fsync gets EIO
 *   FAULT_SKIP=K                   count, but never fail, the first K
 *                                  calls after arming
 *   FAULT_COUNT_FILE=path          at exit, write "KIND COUNT" lines, one
 *                                  per kind, then "before-read KIND COUNT":
 *                                  the counts at the first read() of a file
 *                                  or pipe: the program's first read of
 *                                  commands, so the points before it are
 *                                  opening the store (an _exit() skips
 *                                  this file)
 *   FAULT_LOG=path                 append "fired KIND N" when a failure is
 *                                  injected (written at once, so it
 *                                  survives _exit and crashes)
 *   FAULT_BACKTRACE=1              and a backtrace of the failing call
 *
 * Robustness: dlsym may itself call calloc/malloc before the real ones are
 * known; those calls are served from a static bootstrap buffer, and free
 * and realloc recognise its blocks (free ignores them, realloc copies out).
 * The shim formats numbers by hand and writes with the real write, so
 * reporting a failure allocates nothing; while it reports, nothing is
 * counted or failed. The program is single-threaded, but the counters are
 * atomic anyway. */
#define _GNU_SOURCE
/* pwrite and pwrite64 are wrapped each under its own name: with 64-bit
 * offsets asked for (meson does), the headers would rename pwrite to
 * pwrite64 and the two definitions would collide. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

enum { K_WRITE, K_FSYNC, K_ALLOC, K_STDOUT, K_STDERR, K_COUNT };
static const char *const kind_names[K_COUNT] = {
	"write", "fsync", "alloc", "stdout", "stderr"
};

static unsigned long counts[K_COUNT];
static unsigned long marks[K_COUNT];	/* counts at the first read() */
static bool marked;
static int fault_kind = -1;
static unsigned long fault_at, fault_skip;
static bool fault_sticky, fault_backtrace;
static int fault_errno = EIO;
static bool fault_short;	/* FAULT_ERRNO=SHORT: a write does half */
static bool armed, configured, fired;
static int busy;		/* the shim is reporting: count nothing */
static char count_file[4096], log_file[4096];

/* ---- the real functions ---- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

/* dlsym's own allocations, before real_malloc is known */
#define BOOT_SIZE (256 * 1024)
static _Alignas(16) unsigned char boot[BOOT_SIZE];
static size_t boot_used;
static int resolving;

typedef struct boot_head {
	size_t size;
	size_t pad;	/* keeps the block 16-byte aligned */
} boot_head;

static void *boot_alloc(size_t n)
{
	size_t need = sizeof(boot_head) + ((n + 15) & ~(size_t)15);
	if (n > BOOT_SIZE || boot_used + need > BOOT_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	boot_head *h = (boot_head *)(boot + boot_used);
	boot_used += need;
	h->size = n;
	return h + 1;	/* the buffer is static, so already zero */
}

static bool in_boot(const void *p)
{
	return (const unsigned char *)p >= boot &&
	       (const unsigned char *)p < boot + BOOT_SIZE;
}

#define LOOKUP(var, name) (*(void **)&(var) = dlsym(RTLD_NEXT, name))

static void resolve(void)
{
	if (real_malloc && real_free)
		return;
	resolving = 1;
	LOOKUP(real_malloc, "malloc");
	LOOKUP(real_calloc, "calloc");
	LOOKUP(real_realloc, "realloc");
	LOOKUP(real_free, "free");
	LOOKUP(real_aligned_alloc, "aligned_alloc");
	LOOKUP(real_posix_memalign, "posix_memalign");
	LOOKUP(real_memalign, "memalign");
	LOOKUP(real_write, "write");
	LOOKUP(real_read, "read");
	LOOKUP(real_pwrite, "pwrite");
	LOOKUP(real_pwrite64, "pwrite64");
	LOOKUP(real_fsync, "fsync");
	LOOKUP(real_fdatasync, "fdatasync");
	resolving = 0;
	if (!real_malloc || !real_free || !real_calloc || !real_realloc ||
	    !real_write || !real_read) {
		static const char msg[] = "faultshim: dlsym(RTLD_NEXT) failed\n";
		/* no real write known: the raw system call */
		(void)!syscall(SYS_write, 2, msg, sizeof msg - 1);
		_exit(125);
	}
}

/* ---- configuration and reporting ---- */

static unsigned long parse_ulong(const char *s)
{
	unsigned long v = 0;
	while (s && *s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long)(*s++ - '0');
	return v;
}

static void copy_env(char *dst, size_t cap, const char *name)
{
	const char *v = getenv(name);
	dst[0] = '\0';
	if (v && strlen(v) < cap)
		strcpy(dst, v);
}

static int parse_errno(const char *s)
{
	static const struct { const char *name; int value; } names[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EPIPE", EPIPE },
		{ "EDQUOT", EDQUOT }, { "EINTR", EINTR }, { "EAGAIN", EAGAIN },
		{ "EFBIG", EFBIG }, { "EROFS", EROFS }, { "EBADF", EBADF },
	};
	if (s == NULL || *s == '\0')
		return EIO;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].value;
	int v = (int)parse_ulong(s);
	return v > 0 ? v : EIO;
}

/* getenv allocates nothing, so this is safe from inside malloc */
static void configure(void)
{
	if (configured)
		return;
	configured = true;
	const char *kind = getenv("FAULT_KIND");
	for (int k = 0; kind && k < K_COUNT; k++)
		if (strcmp(kind, kind_names[k]) == 0)
			fault_kind = k;
	fault_at = parse_ulong(getenv("FAULT_AT"));
	fault_skip = parse_ulong(getenv("FAULT_SKIP"));
	const char *sticky = getenv("FAULT_STICKY");
	fault_sticky = sticky && sticky[0] == '1';
	const char *bt = getenv("FAULT_BACKTRACE");
	fault_backtrace = bt && bt[0] == '1';
	const char *e = getenv("FAULT_ERRNO");
	fault_short = e && strcmp(e, "SHORT") == 0;
	fault_errno = fault_short ? EIO : parse_errno(e);
	copy_env(count_file, sizeof count_file, "FAULT_COUNT_FILE");
	copy_env(log_file, sizeof log_file, "FAULT_LOG");
	if (fault_at == 0)
		fault_kind = -1;
}

static size_t fmt_ulong(char *p, unsigned long v)
{
	char tmp[24];
	size_t n = 0, i = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		p[i++] = tmp[--n];
	return i;
}

static void put_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = real_write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* "KIND N\n" */
static size_t fmt_line(char *p, const char *prefix, int kind, unsigned long n)
{
	size_t len = 0;
	len += (size_t)(stpcpy(p + len, prefix) - (p + len));
	len += (size_t)(stpcpy(p + len, kind_names[kind]) - (p + len));
	p[len++] = ' ';
	len += fmt_ulong(p + len, n);
	p[len++] = '\n';
	return len;
}

static void report(int kind, unsigned long n)
{
	if (fired || log_file[0] == '\0')
		return;	/* a sticky failure is told once */
	fired = true;
	int saved = errno;
	busy++;
	int fd = open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char line[96];
		put_all(fd, line, fmt_line(line, "fired ", kind, n));
		if (fault_backtrace) {
			void *frames[64];
			int depth = backtrace(frames, 64);
			backtrace_symbols_fd(frames, depth, fd);
		}
		close(fd);
	}
	busy--;
	errno = saved;
}

/* Counts a call of this kind; true if it is the one to fail. */
static bool should_fail(int kind)
{
	if (!armed || busy)
		return false;
	unsigned long n = __atomic_add_fetch(&counts[kind], 1, __ATOMIC_RELAXED);
	if (kind != fault_kind || n <= fault_skip)
		return false;
	if (n == fault_at || (fault_sticky && n > fault_at)) {
		report(kind, n);
		return true;
	}
	return false;
}

static void write_counts(void)
{
	if (count_file[0] == '\0')
		return;
	busy++;
	int fd = open(count_file, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char text[K_COUNT * 96];
		size_t len = 0;
		for (int k = 0; k < K_COUNT; k++)
			len += fmt_line(text + len, "", k,
					__atomic_load_n(&counts[k], __ATOMIC_RELAXED));
		for (int k = 0; marked && k < K_COUNT; k++)
			len += fmt_line(text + len, "before-read ", k, marks[k]);
		put_all(fd, text, len);
		close(fd);
	}
	busy--;
}

/* ---- arming at main ---- */

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
			void (*)(void), void *);
static main_fn program_main;

static int armed_main(int argc, char **argv, char **envp)
{
	configure();
	armed = true;
	return program_main(argc, argv, envp);
}

int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void),
		      void (*fini)(void), void (*rtld_fini)(void), void *stack_end);

int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void),
		      void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
	start_fn real_start;
	*(void **)&real_start = dlsym(RTLD_NEXT, "__libc_start_main");
	program_main = main_;
	return real_start(armed_main, argc, argv, init, fini, rtld_fini, stack_end);
}

__attribute__((constructor)) static void shim_init(void)
{
	resolve();
	configure();
	const char *arm = getenv("FAULT_ARM");
	if (arm && strcmp(arm, "ctor") == 0)
		armed = true;
}

__attribute__((destructor)) static void shim_fini(void)
{
	write_counts();
}

/* ---- allocation ---- */

void *malloc(size_t n)
{
	if (!real_malloc) {
		if (resolving)
			return boot_alloc(n);
		resolve();
	}
	if (should_fail(K_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	if (!real_calloc) {
		if (resolving) {
			size_t total;
			if (__builtin_mul_overflow(n, size, &total))
				return NULL;
			return boot_alloc(total);
		}
		resolve();
	}
	if (should_fail(K_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	if (p && in_boot(p)) {	/* out of the bootstrap buffer, for good */
		void *q = malloc(n);
		if (q) {
			size_t old = ((boot_head *)p - 1)->size;
			memcpy(q, p, old < n ? old : n);
		}
		return q;
	}
	if (!real_realloc) {
		if (resolving)
			return boot_alloc(n);
		resolve();
	}
	if (should_fail(K_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_realloc(p, n);
}

void free(void *p)
{
	if (p == NULL || in_boot(p))
		return;
	if (!real_free) {
		if (resolving)
			return;	/* a leak, once, rather than a recursion */
		resolve();
	}
	real_free(p);
}

void *aligned_alloc(size_t align, size_t n)
{
	if (!real_aligned_alloc)
		resolve();
	if (should_fail(K_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_aligned_alloc(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (!real_posix_memalign)
		resolve();
	if (should_fail(K_ALLOC))
		return ENOMEM;
	return real_posix_memalign(out, align, n);
}

void *memalign(size_t align, size_t n)
{
	if (!real_memalign)
		resolve();
	if (should_fail(K_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return real_memalign(align, n);
}

/* ---- reads: only to mark where the input starts ---- */

/* The program reads its first command after the store is open, so the
 * counts at the first read() of a regular file or a pipe split the points
 * into opening the store and running commands. (libc's own reads do not
 * come through here; SQLite reads its files with pread, and /dev/urandom,
 * a character device, with read.) */
ssize_t read(int fd, void *p, size_t n)
{
	struct stat st;
	if (!real_read)
		resolve();
	if (armed && !marked && !busy && fstat(fd, &st) == 0 &&
	    (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
		marked = true;
		for (int k = 0; k < K_COUNT; k++)
			marks[k] = __atomic_load_n(&counts[k], __ATOMIC_RELAXED);
	}
	return real_read(fd, p, n);
}

/* ---- writes and syncs ---- */

static int write_kind(int fd)
{
	return fd == STDOUT_FILENO ? K_STDOUT : fd == STDERR_FILENO ? K_STDERR : K_WRITE;
}

ssize_t write(int fd, const void *p, size_t n)
{
	if (!real_write)
		resolve();
	if (should_fail(write_kind(fd))) {
		if (fault_short && n > 1)
			return real_write(fd, p, n / 2);
		errno = fault_errno;
		return -1;
	}
	return real_write(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t at)
{
	if (!real_pwrite)
		resolve();
	if (should_fail(write_kind(fd))) {
		if (fault_short && n > 1)
			return real_pwrite(fd, p, n / 2, at);
		errno = fault_errno;
		return -1;
	}
	return real_pwrite(fd, p, n, at);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off64_t at)
{
	if (!real_pwrite64)
		resolve();
	if (should_fail(write_kind(fd))) {
		if (fault_short && n > 1)
			return real_pwrite64(fd, p, n / 2, at);
		errno = fault_errno;
		return -1;
	}
	return real_pwrite64(fd, p, n, at);
}

int fsync(int fd)
{
	if (!real_fsync)
		resolve();
	if (should_fail(K_FSYNC)) {
		errno = fault_errno;
		return -1;
	}
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	if (!real_fdatasync)
		resolve();
	if (should_fail(K_FSYNC)) {
		errno = fault_errno;
		return -1;
	}
	return real_fdatasync(fd);
}
