/* The runtime support's log lines: standard error, silenced by XPU_LOG=off; `debug` lines only with XPU_LOG=debug. */
#ifndef CXPU_RUNTIME_LOG_H
#define CXPU_RUNTIME_LOG_H

__attribute__((visibility("hidden"))) void xpu_runtime_log(int debug, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
