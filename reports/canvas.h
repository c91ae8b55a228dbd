/* canvas.h - a drawing surface for report figures, written as SVG or as TikZ: lines, rectangles, marks, polylines
 * and text in points (1/72 in) with y growing downwards; colours from one colour-blind-safe palette. */
#ifndef RP_CANVAS_H
#define RP_CANVAS_H

#include "base/base.h"

typedef enum { RP_SVG, RP_TIKZ } rp_canvas_fmt;

/* Colours: 0..7 the Okabe-Ito palette (distinguishable under the common colour-vision deficiencies), then black,
 * grey and light grey; RP_NONE: no fill / no stroke. */
enum { RP_PALETTE = 8, RP_BLACK = 8, RP_GREY = 9, RP_LIGHT = 10, RP_NONE = -1 };

typedef enum { RP_LEFT, RP_MIDDLE, RP_RIGHT } rp_anchor;
typedef enum { RP_CIRCLE, RP_DIAMOND, RP_SQUARE, RP_TRIANGLE } rp_shape;

typedef struct rp_canvas {
    rp_canvas_fmt fmt;
    hx_sbuf *out;
    double w, h; /* points */
} rp_canvas;

/* Opens a figure of w x h points named NAME (SVG: an <svg> element 'id="fig-NAME"'; TikZ: a tikzpicture with the
 * palette defined inside it, so it can be pasted alone). */
void rp_cv_begin(rp_canvas *c, rp_canvas_fmt fmt, hx_sbuf *out, const char *name, double w, double h);
void rp_cv_end(rp_canvas *c);

/* META: extra SVG attributes of the element (e.g. `class="point" data-x="0.5"`), for tests and scripts; ignored
 * by TikZ. May be NULL. dash: 0 solid, 1 dashed, 2 dotted. */
void rp_cv_line(rp_canvas *c, double x1, double y1, double x2, double y2, int colour, double width, int dash,
                const char *meta);
void rp_cv_rect(rp_canvas *c, double x, double y, double w, double h, int fill, int stroke, const char *meta);
void rp_cv_mark(rp_canvas *c, double x, double y, rp_shape shape, double size, int colour, const char *meta);
void rp_cv_polyline(rp_canvas *c, const double *x, const double *y, int n, int colour, double width, int dash,
                    const char *meta);
/* Text of size pt with its baseline at y; rotate: 0, or 90 (reading upwards, for a y-axis label). */
void rp_cv_text(rp_canvas *c, double x, double y, const char *s, double size, rp_anchor anchor, int rotate,
                const char *meta);
/* A group carrying META (SVG <g>; TikZ: a scope), closed by rp_cv_group_end. */
void rp_cv_group(rp_canvas *c, const char *meta);
void rp_cv_group_end(rp_canvas *c);

/* The palette's colour I as "#rrggbb". */
const char *rp_colour_hex(int i);
/* Text escaped for XML attributes and content / for LaTeX (Δ, −, — as math or dashes; specials escaped). */
void rp_xml_escape(hx_sbuf *b, const char *s);
void rp_tex_escape(hx_sbuf *b, const char *s);

#endif
