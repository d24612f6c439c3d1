/*
 * scar-agent: the first process of a warm execution environment (issue 14).
 *
 * It runs one invocation at a time, each as a new process, on orders that arrive as frames on stdin,
 * and answers with frames on stdout. The protocol is fixed in WARM.md and mirrored by
 * src/engine/runtime/agent-protocol.ts; in short:
 *
 *   frame   = type (1 byte) + payload length (4 bytes, big-endian) + payload (at most 4 MiB)
 *   engine: R run {id, timeout_ms, cwd, argc, argv..., envc, env...}   K kill {id}   EOF: shut down
 *   agent:  H hello {"scar-agent", "1", pid}   S started {id, pid}   O/E output chunk (raw)
 *           X exit {id, kind, code, message}
 *
 * It is built statically (scripts/build-agent.mjs) because it is mounted into images that may have
 * no libc, no shell and no /etc: nothing here may read a file of the image (no locale, no passwd).
 *
 * As pid 1 of a container it is the container's init: it reaps every process, and at the end of an
 * invocation kills every other process in the pid namespace, so nothing of one invocation survives
 * into the next. Outside a pid namespace (tests on the host) that would kill the whole machine, so it
 * kills only the invocation's process group there, and becomes a child subreaper so that it can still
 * reap (and therefore wait for) the group's orphans.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION "1"
#define MAX_PAYLOAD (4u << 20)
#define HEADER 5
#define CHUNK (64u << 10)
#define EXIT_PROTOCOL 70
#define MAX_ID 1024 /* ids travel back in X frames, whose fields we bound */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* One invocation, alive from its R frame until its X frame has been sent. */
struct invocation {
	char *payload;            /* copy of the R payload: id, argv and env point into it */
	const char *id;
	const char *cwd;
	char **argv, **envp;
	pid_t pid;                /* the child; also its process group (it calls setsid) */
	int out, err;             /* read ends of its stdout/stderr pipes; -1 once at EOF */
	int status;               /* wait status of the child, valid when reaped */
	int reaped;
	int64_t deadline;         /* CLOCK_MONOTONIC ms; 0 = no time limit */
};

static int is_init;                 /* getpid() == 1: kill(-1) is ours to use */
static int sigfd = -1;              /* SIGCHLD and the termination signals, read by poll */
static int stop_signal;             /* a termination signal received, acted on by the main loop */
static struct invocation *running;  /* NULL when idle */
static unsigned char inbuf[HEADER + MAX_PAYLOAD]; /* stdin bytes not yet parsed into frames */
static size_t inlen;
static unsigned char outbuf[HEADER + CHUNK];

static void diag(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof line, "scar-agent: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	line[len++] = '\n';
	/* best effort: stderr may be gone too, and a diagnostic must never block the agent's exit forever */
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_all_and_exit(int code) __attribute__((noreturn));

/* Writes all of buf to stdout. The engine reads continuously; if it stops reading we wait for it. */
static void write_all(const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			/* the engine handed us a non-blocking stdout: wait until it drains */
			struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
			poll(&p, 1, -1);
		} else if (n < 0 && errno != EINTR) {
			/* EPIPE and the like: the engine is gone, so is any reason to run anything */
			diag("write to the engine failed: %s", strerror(errno));
			kill_all_and_exit(1);
		}
	}
}

/*
 * Sends the frame in `frame`: its payload of `len` bytes is already at frame + HEADER, the header is
 * filled here, and all goes out in one write (the engine then wakes once per frame, not twice).
 */
static void send_frame(unsigned char *frame, char type, size_t len)
{
	frame[0] = (unsigned char)type;
	frame[1] = (unsigned char)(len >> 24);
	frame[2] = (unsigned char)(len >> 16);
	frame[3] = (unsigned char)(len >> 8);
	frame[4] = (unsigned char)len;
	write_all(frame, HEADER + len);
}

/* A frame of NUL-terminated string fields; the list ends with NULL. */
static void send_fields(char type, ...)
{
	static unsigned char buf[HEADER + 8192];
	size_t len = 0, room = sizeof buf - HEADER;
	va_list ap;
	va_start(ap, type);
	for (const char *f; (f = va_arg(ap, const char *)) != NULL;) {
		size_t n = strlen(f);
		if (n > room - len - 1) /* only ids and messages, which we bound; never split a field */
			n = room - len - 1;
		memcpy(buf + HEADER + len, f, n);
		len += n;
		buf[HEADER + len++] = '\0';
	}
	va_end(ap);
	send_frame(buf, type, len);
}

/* Reaps every child that has ended, noting the invocation's own status. Returns 1 when no child is left. */
static int reap(void)
{
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);
		if (p > 0) {
			if (running && p == running->pid) {
				running->status = status;
				running->reaped = 1;
			}
		} else if (p == 0) {
			return 0;
		} else if (errno != EINTR) {
			return errno == ECHILD;
		}
	}
}

/* Empties the signalfd, noting a termination signal. Children are reaped by the caller. */
static void drain_signals(void)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(sigfd, &si, sizeof si);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof si)
			return;
		if (si.ssi_signo != SIGCHLD && !stop_signal)
			stop_signal = (int)si.ssi_signo;
	}
}

/*
 * Kills the invocation's whole tree and returns once it is gone: as init, every process but us; else
 * the child's process group. SIGKILL is repeated while waiting, because a process that was forking
 * while the first kill went round may have a child the kill never saw.
 */
static void kill_tree(void)
{
	for (;;) {
		int none_left;
		/* pid 0 would make kill() mean our own group: the child was never forked */
		pid_t group = running && running->pid > 0 ? running->pid : 0;
		if (is_init)
			kill(-1, SIGKILL);
		else if (group)
			kill(-group, SIGKILL);
		none_left = reap();
		if (is_init ? none_left : (!group || (running->reaped && kill(-group, 0) < 0 && errno == ESRCH)))
			return;
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			drain_signals(); /* a termination signal waits: we are killing everything already */
	}
}

static void kill_all_and_exit(int code)
{
	kill_tree();
	exit(code);
}

static void protocol_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void protocol_error(const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag("protocol error: %s", msg);
	kill_all_and_exit(EXIT_PROTOCOL);
}

/*
 * Forwards what is in one output pipe as O or E frames: reads until `budget` bytes were sent (0: one
 * read) or the pipe is empty; closes it at EOF.
 */
static void forward(int *fd, char type, size_t budget)
{
	while (*fd >= 0) {
		ssize_t n = read(*fd, outbuf + HEADER, CHUNK);
		if (n > 0) {
			send_frame(outbuf, type, (size_t)n);
			if ((size_t)n >= budget)
				return;
			budget -= (size_t)n;
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(*fd);
			*fd = -1;
		} else if (errno == EAGAIN) {
			return;
		}
	}
}

/*
 * What a pipe can hold: all that is left in it once its writers are dead. Reading no more than that
 * bounds the final drain even when a writer that escaped the kill (outside a pid namespace) goes on.
 */
static size_t pipe_capacity(int fd)
{
	int size = fd >= 0 ? fcntl(fd, F_GETPIPE_SZ) : 0;
	return size > 0 ? (size_t)size : 1u << 20;
}

/*
 * Ends the running invocation: the tree is killed (also after a normal exit, for what it left in the
 * background), then what its pipes still hold is sent, then X. The pipes are read without waiting for
 * their EOF: outside a pid namespace a process that left the group may still hold them open.
 */
static void finish(const char *kind, int code, const char *message)
{
	char num[16];
	kill_tree();
	forward(&running->out, 'O', pipe_capacity(running->out));
	forward(&running->err, 'E', pipe_capacity(running->err));
	if (running->out >= 0)
		close(running->out);
	if (running->err >= 0)
		close(running->err);
	if (!kind) {
		if (WIFSIGNALED(running->status)) {
			kind = "signaled";
			code = WTERMSIG(running->status);
		} else {
			kind = "exited";
			code = WEXITSTATUS(running->status);
		}
	}
	snprintf(num, sizeof num, "%d", code);
	send_fields('X', running->id, kind, num, message, (char *)NULL);
	free(running->argv);
	free(running->envp);
	free(running->payload);
	free(running);
	running = NULL;
}

/* In the child after fork: reports a failed step through the close-on-exec pipe and exits. */
static void child_fail(int errpipe, const char *what, const char *arg) __attribute__((noreturn));
static void child_fail(int errpipe, const char *what, const char *arg)
{
	char msg[600];
	int e = errno;
	/* errno first, as 4 big-endian bytes, then the message */
	msg[0] = (char)(e >> 24), msg[1] = (char)(e >> 16), msg[2] = (char)(e >> 8), msg[3] = (char)e;
	snprintf(msg + 4, sizeof msg - 4, "%s %s: %s", what, arg, strerror(e));
	while (write(errpipe, msg, 4 + strlen(msg + 4)) < 0 && errno == EINTR)
		;
	_exit(127);
}

/* The invocation's environment's PATH, or the default one. */
static const char *path_of(char **envp)
{
	for (; *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return DEFAULT_PATH;
}

/* execvpe's search, on the invocation's PATH rather than ours; EACCES wins over ENOENT, as in execvp. */
static void exec_search(char **argv, char **envp)
{
	const char *name = argv[0];
	if (strchr(name, '/')) {
		execve(name, argv, envp);
		return;
	}
	int saw_eacces = 0;
	char file[PATH_MAX];
	for (const char *dir = path_of(envp);;) {
		const char *end = strchrnul(dir, ':');
		size_t dlen = (size_t)(end - dir);
		/* an empty PATH element means the current folder; a name too long is skipped, never cut */
		int n = dlen == 0 ? snprintf(file, sizeof file, "%s", name)
				  : snprintf(file, sizeof file, "%.*s/%s", (int)dlen, dir, name);
		if (n < 0 || (size_t)n >= sizeof file)
			errno = ENAMETOOLONG;
		else
			execve(file, argv, envp);
		if (errno == EACCES)
			saw_eacces = 1;
		else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
			return;
		if (*end == '\0')
			break;
		dir = end + 1;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

static void start(struct invocation *inv)
{
	int outp[2], errp[2], execp[2];
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(execp, O_CLOEXEC) < 0) {
		diag("pipe: %s", strerror(errno));
		kill_all_and_exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		char msg[100];
		snprintf(msg, sizeof msg, "fork: %s", strerror(e));
		close(outp[0]), close(outp[1]), close(errp[0]), close(errp[1]), close(execp[0]), close(execp[1]);
		inv->out = inv->err = -1;
		inv->reaped = 1;
		running = inv;
		finish("exec-error", e, msg);
		return;
	}
	if (pid == 0) {
		/* our dispositions (SIGPIPE ignored) and blocked mask are ours, not the invocation's */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0)
			child_fail(execp[1], "open", "/dev/null");
		if (dup2(devnull, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
			child_fail(execp[1], "dup2", "stdio");
		/* whatever else the container's runtime left open is not the invocation's business */
		close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
		if (inv->cwd[0] && chdir(inv->cwd) < 0)
			child_fail(execp[1], "chdir", inv->cwd);
		exec_search(inv->argv, inv->envp);
		child_fail(execp[1], "exec", inv->argv[0]);
	}
	close(outp[1]);
	close(errp[1]);
	close(execp[1]);
	inv->pid = pid;
	inv->out = outp[0];
	inv->err = errp[0];
	fcntl(inv->out, F_SETFL, O_NONBLOCK);
	fcntl(inv->err, F_SETFL, O_NONBLOCK);
	running = inv;

	/* EOF (the exec closed it) or the child's errno + message. Blocking is fine: the child only
	 * runs our code until its exec, which cannot wait on us. */
	char msg[600];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(execp[0], msg + got, sizeof msg - 1 - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	close(execp[0]);
	if (got >= 4) {
		msg[got] = '\0';
		int e = (int)(((unsigned)(unsigned char)msg[0] << 24) | ((unsigned)(unsigned char)msg[1] << 16) |
			      ((unsigned)(unsigned char)msg[2] << 8) | (unsigned)(unsigned char)msg[3]);
		finish("exec-error", e, msg + 4);
		return;
	}
	char num[16];
	snprintf(num, sizeof num, "%d", (int)pid);
	send_fields('S', inv->id, num, (char *)NULL);
}

/* A strictly decimal, non-negative number that fits `max`; anything else is a protocol error. */
static unsigned long long decimal(const char *s, const char *field, unsigned long long max)
{
	unsigned long long v = 0;
	if (!*s)
		protocol_error("run: %s is empty", field);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			protocol_error("run: %s is not a decimal number: \"%.40s\"", field, s);
		if (v > (max - (unsigned long long)(*p - '0')) / 10)
			protocol_error("run: %s is too large: \"%.40s\"", field, s);
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	return v;
}

/* Cuts a payload into its NUL-terminated fields. */
struct fields {
	char *p, *end;
};

static char *next_field(struct fields *f, const char *what)
{
	char *nul = memchr(f->p, '\0', (size_t)(f->end - f->p));
	if (!nul)
		protocol_error("%s: missing or unterminated field", what);
	char *s = f->p;
	f->p = nul + 1;
	return s;
}

static void on_run(const unsigned char *payload, uint32_t len)
{
	if (running)
		protocol_error("run frame while invocation %s is running", running->id);
	struct invocation *inv = calloc(1, sizeof *inv);
	if (!inv || !(inv->payload = malloc(len ? len : 1))) {
		diag("out of memory");
		kill_all_and_exit(1);
	}
	memcpy(inv->payload, payload, len);
	struct fields f = {inv->payload, inv->payload + len};
	inv->id = next_field(&f, "run: id");
	if (!inv->id[0] || strlen(inv->id) > MAX_ID)
		protocol_error("run: the id must have 1 to %d bytes", MAX_ID);
	unsigned long long timeout = decimal(next_field(&f, "run: timeout_ms"), "timeout_ms", 1ull << 40);
	inv->cwd = next_field(&f, "run: cwd");
	/* every field takes at least its NUL, so a count beyond the payload's size is a lie */
	size_t argc = (size_t)decimal(next_field(&f, "run: argc"), "argc", len);
	if (argc == 0)
		protocol_error("run: argc is 0");
	inv->argv = calloc(argc + 1, sizeof *inv->argv);
	for (size_t i = 0; inv->argv && i < argc; i++)
		inv->argv[i] = next_field(&f, "run: argv");
	size_t envc = (size_t)decimal(next_field(&f, "run: envc"), "envc", len);
	inv->envp = calloc(envc + 1, sizeof *inv->envp);
	for (size_t i = 0; inv->envp && i < envc; i++)
		inv->envp[i] = next_field(&f, "run: env");
	if (!inv->argv || !inv->envp) {
		diag("out of memory");
		kill_all_and_exit(1);
	}
	if (f.p != f.end)
		protocol_error("run: %zu bytes after the last env entry", (size_t)(f.end - f.p));
	inv->deadline = timeout ? now_ms() + (int64_t)timeout : 0;
	start(inv);
}

static void on_kill(const unsigned char *payload, uint32_t len)
{
	struct fields f = {(char *)payload, (char *)payload + len};
	const char *id = next_field(&f, "kill: id");
	if (f.p != f.end)
		protocol_error("kill: %zu bytes after the id", (size_t)(f.end - f.p));
	if (running && strcmp(id, running->id) == 0)
		finish("killed", 0, "");
}

/* Acts on every whole frame in inbuf and keeps the rest (a frame may arrive in any number of reads). */
static void parse_frames(void)
{
	size_t off = 0;
	while (inlen - off >= HEADER) {
		unsigned char *h = inbuf + off;
		uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
		if (h[0] != 'R' && h[0] != 'K')
			protocol_error("unknown frame type 0x%02x", h[0]);
		if (len > MAX_PAYLOAD)
			protocol_error("frame of %u bytes is larger than %u", len, MAX_PAYLOAD);
		if (inlen - off - HEADER < len)
			break;
		off += HEADER + len;
		if (h[0] == 'R')
			on_run(h + HEADER, len);
		else
			on_kill(h + HEADER, len);
	}
	memmove(inbuf, inbuf + off, inlen - off);
	inlen -= off;
}

int main(void)
{
	is_init = getpid() == 1;
	if (!is_init && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		diag("cannot become a child subreaper (%s): orphans of an invocation are not waited for",
		     strerror(errno));

	/* SIGPIPE ignored: a write to a closed engine fails with EPIPE, which we handle */
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		diag("signalfd: %s", strerror(errno));
		return 1;
	}

	char pid[16];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	send_fields('H', "scar-agent", PROTOCOL_VERSION, pid, (char *)NULL);

	for (;;) {
		struct pollfd p[4] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = sigfd, .events = POLLIN},
			{.fd = running ? running->out : -1, .events = POLLIN},
			{.fd = running ? running->err : -1, .events = POLLIN},
		};
		int timeout = -1;
		if (running && running->deadline) {
			int64_t left = running->deadline - now_ms();
			timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
		}
		if (poll(p, 4, timeout) < 0 && errno != EINTR) {
			diag("poll: %s", strerror(errno));
			kill_all_and_exit(1);
		}
		if (p[1].revents) {
			drain_signals();
			reap();
		}
		if (stop_signal) {
			diag("stopping on signal %d", stop_signal);
			kill_all_and_exit(128 + stop_signal);
		}
		/* one read per stream per round, so a chatty stdout cannot starve stderr or a K frame */
		if (running && p[2].revents)
			forward(&running->out, 'O', 0);
		if (running && p[3].revents)
			forward(&running->err, 'E', 0);
		if (running && running->reaped) {
			finish(NULL, 0, "");
			continue; /* stdin is polled again before it is read: a K for this id is now moot */
		}
		if (running && running->deadline && now_ms() >= running->deadline) {
			finish("timeout", 0, "");
			continue;
		}
		if (p[0].revents) {
			ssize_t n = read(STDIN_FILENO, inbuf + inlen, sizeof inbuf - inlen);
			if (n == 0) {
				if (inlen)
					diag("stdin ended inside a frame (%zu bytes)", inlen);
				kill_all_and_exit(0);
			}
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				diag("read from the engine failed: %s", strerror(errno));
				kill_all_and_exit(1);
			}
			if (n > 0) {
				inlen += (size_t)n;
				parse_frames();
			}
		}
	}
}
