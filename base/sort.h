/* sort.h - the qsort/bsearch comparators every layer uses (one copy each instead of a static one per file). */
#ifndef HX_SORT_H
#define HX_SORT_H

/* Elements are `char *` (or `const char *`): byte order of the strings (strcmp). */
int hx_cmp_str(const void *a, const void *b);
/* The same, ASCII case folded (strcasecmp). */
int hx_cmp_str_case(const void *a, const void *b);
/* Elements are doubles, ascending (NaN compares equal to everything: keep NaN out of what you sort). */
int hx_cmp_double(const void *a, const void *b);

#endif
