/*
 * One escaped line for every message (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <slurm/spank.h>

#include "common.h"
#include "log.h"

char *pyxis_escape(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char piece[9];
	size_t n = 0, len;

	if (outlen == 0)
		return out;
	for (; *p != '\0'; ++p) {
		len = 0;
		if (*p == '\\') {
			piece[len++] = '\\';
			piece[len++] = '\\';
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			piece[len++] = '\\';
			piece[len++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
		} else if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
			/* C0, DEL, and C1 as UTF-8 (U+0080 to U+009F: NEL ends a line for some readers). */
			piece[len++] = '\\';
			piece[len++] = 'x';
			piece[len++] = hex[*p >> 4];
			piece[len++] = hex[*p & 0xf];
			if (*p == 0xc2) {
				++p;
				piece[len++] = '\\';
				piece[len++] = 'x';
				piece[len++] = hex[*p >> 4];
				piece[len++] = hex[*p & 0xf];
			}
		} else {
			piece[len++] = (char)*p;
		}
		if (n + len >= outlen)
			break;
		memcpy(out + n, piece, len);
		n += len;
	}
	out[n] = '\0';
	return out;
}

/* Room for a message (an err buffer, or a line with a path in it), and for most of it escaped. */
#define LOG_MAX 8192

#define ESCAPED_LINE(fmt, out)                                \
	char raw_[LOG_MAX], out[2 * LOG_MAX];                 \
	do {                                                  \
		va_list ap_;                                  \
		va_start(ap_, fmt);                           \
		vsnprintf(raw_, sizeof(raw_), fmt, ap_);      \
		va_end(ap_);                                  \
		pyxis_escape(raw_, out, sizeof(out));         \
	} while (0)

void pyxis_error(const char *fmt, ...)
{
	ESCAPED_LINE(fmt, line);
	slurm_error("%s", line);
}

void pyxis_info(const char *fmt, ...)
{
	ESCAPED_LINE(fmt, line);
	slurm_info("%s", line);
}

void pyxis_debug(const char *fmt, ...)
{
	ESCAPED_LINE(fmt, line);
	slurm_debug("%s", line);
}

void pyxis_stamp(const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	slurm_debug(PLUGIN_NAME ": at %s %lld.%06ld", what, (long long)ts.tv_sec, ts.tv_nsec / 1000);
}

void pyxis_print(FILE *f, const char *fmt, ...)
{
	ESCAPED_LINE(fmt, line);
	fprintf(f, "%s\n", line);
}

void pyxis_print_lines(FILE *f, const char *text)
{
	const char *end;

	for (; *text != '\0'; text = *end == '\0' ? end : end + 1) {
		end = strchrnul(text, '\n');
		pyxis_print(f, "%.*s", (int)(end - text), text);
	}
}
