/*
 * The status page, compiled in: statusd/ui/ holds its three files and the
 * assembler copies them into the binary, so nothing is fetched at run time
 * and a page that works once works offline for good.
 */
#include <stdlib.h>
#include <string.h>

#include "statusd.h"

/* Each file, then a NUL: no file of the page contains one. */
__asm__(
    "	.section .rodata\n"
    "	.balign 16\n"
    "ui_index_html:\n"
    "	.incbin \"statusd/ui/index.html\"\n"
    "	.byte 0\n"
    "ui_js:\n"
    "	.incbin \"statusd/ui/ui.js\"\n"
    "	.byte 0\n"
    "ui_css:\n"
    "	.incbin \"statusd/ui/ui.css\"\n"
    "	.byte 0\n"
    "	.previous\n");

extern const char ui_index_html[] __asm__("ui_index_html");
extern const char ui_js[] __asm__("ui_js");
extern const char ui_css[] __asm__("ui_css");

static unsigned
copy(const char *s, char **body)
{
	*body = strdup(s);
	return 200;
}

unsigned ui_page(char **body) { return copy(ui_index_html, body); }
unsigned ui_script(char **body) { return copy(ui_js, body); }
unsigned ui_style(char **body) { return copy(ui_css, body); }
