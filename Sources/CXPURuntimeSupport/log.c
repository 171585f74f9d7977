#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"

void xpu_runtime_log(int debug, const char *format, ...) {
    const char *level = getenv("XPU_LOG");
    if (level != NULL && (strcmp(level, "off") == 0 || strcmp(level, "none") == 0 || strcmp(level, "0") == 0)) return;
    if (debug && (level == NULL || (strcmp(level, "debug") != 0 && strcmp(level, "trace") != 0))) return;
    char line[512];
    int prefix = snprintf(line, sizeof line, "xpu-runtime[%d]: ", (int)getpid());
    va_list arguments;
    va_start(arguments, format);
    int body = vsnprintf(line + prefix, sizeof line - (size_t)prefix - 1, format, arguments);
    va_end(arguments);
    size_t length = (size_t)prefix + (body < 0 ? 0 : (size_t)body);
    if (length > sizeof line - 2) length = sizeof line - 2;
    line[length++] = '\n';
    ssize_t ignored = write(2, line, length);
    (void)ignored;
}
