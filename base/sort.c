/* sort.c - the qsort/bsearch comparators of base/sort.h. */
#include "base/sort.h"

#include <string.h>
#include <strings.h>

int hx_cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int hx_cmp_str_case(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

int hx_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
