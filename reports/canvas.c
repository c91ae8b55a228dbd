/* canvas.c - the report figures' drawing surface as SVG or TikZ (see canvas.h). */
#include <string.h>

#include "reports/canvas.h"

static const char *const palette[] = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
                                      "#999933", "#000000", "#777777", "#DDDDDD"};

const char *rp_colour_hex(int i)
{
    int n = (int)(sizeof palette / sizeof palette[0]);
    return palette[i >= 0 && i < n ? i : RP_BLACK];
}

/* TikZ colour names: hxc0..hxc10. */
static int tikz_colour(int i) { return i >= 0 && i < (int)(sizeof palette / sizeof palette[0]) ? i : RP_BLACK; }

void rp_xml_escape(hx_sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<') hx_sb_puts(b, "&lt;");
        else if (*s == '>') hx_sb_puts(b, "&gt;");
        else if (*s == '&') hx_sb_puts(b, "&amp;");
        else if (*s == '"') hx_sb_puts(b, "&quot;");
        else hx_sb_putc(b, *s);
    }
}

void rp_tex_escape(hx_sbuf *b, const char *s)
{
    static const struct { const char *utf8, *tex; } subst[] = {
        {"Δ", "$\\Delta$"}, {"−", "$-$"}, {"—", "--"}, {"–", "--"}, {"×", "$\\times$"}, {"≥", "$\\geq$"},
        {"≤", "$\\leq$"}, {"‡", "\\ddag{}"}, {"†", "\\dag{}"}, {"·", "$\\cdot$"}};
    for (; s && *s; s++) {
        int done = 0;
        for (size_t i = 0; i < sizeof subst / sizeof subst[0] && !done; i++) {
            size_t n = strlen(subst[i].utf8);
            if (!strncmp(s, subst[i].utf8, n)) hx_sb_puts(b, subst[i].tex), s += n - 1, done = 1;
        }
        if (done) continue;
        if (strchr("&%$#_{}", *s)) hx_sb_printf(b, "\\%c", *s);
        else if (*s == '~') hx_sb_puts(b, "\\textasciitilde{}");
        else if (*s == '^') hx_sb_puts(b, "\\textasciicircum{}");
        else if (*s == '\\') hx_sb_puts(b, "\\textbackslash{}");
        else if (*s == '<' || *s == '>') hx_sb_puts(b, *s == '<' ? "\\textless{}" : "\\textgreater{}");
        else hx_sb_putc(b, *s);
    }
}

void rp_cv_begin(rp_canvas *c, rp_canvas_fmt fmt, hx_sbuf *out, const char *name, double w, double h)
{
    c->fmt = fmt;
    c->out = out;
    c->w = w;
    c->h = h;
    if (fmt == RP_SVG) {
        hx_sb_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"fig-");
        rp_xml_escape(out, name);
        hx_sb_printf(out, "\" class=\"hx-figure\" width=\"%.1fpt\" height=\"%.1fpt\" viewBox=\"0 0 %.2f %.2f\" "
                          "font-family=\"Helvetica, Arial, sans-serif\">\n", w, h, w, h);
        hx_sb_printf(out, "<rect x=\"0\" y=\"0\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\"/>\n", w, h);
        return;
    }
    hx_sb_puts(out, "% figure ");
    hx_sb_puts(out, name);
    hx_sb_puts(out, "\n\\begin{tikzpicture}[x=1pt,y=-1pt,font=\\sffamily]\n");
    for (int i = 0; i < (int)(sizeof palette / sizeof palette[0]); i++)
        hx_sb_printf(out, "\\definecolor{hxc%d}{HTML}{%s}\n", i, palette[i] + 1);
    hx_sb_printf(out, "\\useasboundingbox (0,0) rectangle (%.2f,%.2f);\n", w, h);
}

void rp_cv_end(rp_canvas *c) { hx_sb_puts(c->out, c->fmt == RP_SVG ? "</svg>\n" : "\\end{tikzpicture}\n"); }

static const char *svg_dash(int dash) { return dash == 1 ? " stroke-dasharray=\"3,2\"" : dash == 2 ? " stroke-dasharray=\"1,1.5\"" : ""; }
static const char *tikz_dash(int dash) { return dash == 1 ? ",dashed" : dash == 2 ? ",dotted" : ""; }

static void meta_attr(rp_canvas *c, const char *meta)
{
    if (meta && *meta) hx_sb_printf(c->out, " %s", meta);
}

void rp_cv_line(rp_canvas *c, double x1, double y1, double x2, double y2, int colour, double width, int dash,
                const char *meta)
{
    if (c->fmt == RP_SVG) {
        hx_sb_printf(c->out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"%.2f\"%s",
                     x1, y1, x2, y2, rp_colour_hex(colour), width, svg_dash(dash));
        meta_attr(c, meta);
        hx_sb_puts(c->out, "/>\n");
    } else {
        hx_sb_printf(c->out, "\\draw[hxc%d,line width=%.2fpt%s] (%.2f,%.2f) -- (%.2f,%.2f);\n", tikz_colour(colour), width,
                     tikz_dash(dash), x1, y1, x2, y2);
    }
}

void rp_cv_rect(rp_canvas *c, double x, double y, double w, double h, int fill, int stroke, const char *meta)
{
    if (w < 0) x += w, w = -w;
    if (h < 0) y += h, h = -h;
    if (c->fmt == RP_SVG) {
        hx_sb_printf(c->out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"%s\""
                             " stroke-width=\"0.5\"", x, y, w, h, fill == RP_NONE ? "none" : rp_colour_hex(fill),
                     stroke == RP_NONE ? "none" : rp_colour_hex(stroke));
        meta_attr(c, meta);
        hx_sb_puts(c->out, "/>\n");
        return;
    }
    if (fill != RP_NONE && stroke != RP_NONE)
        hx_sb_printf(c->out, "\\filldraw[fill=hxc%d,draw=hxc%d,line width=0.5pt]", tikz_colour(fill), tikz_colour(stroke));
    else if (fill != RP_NONE) hx_sb_printf(c->out, "\\fill[hxc%d]", tikz_colour(fill));
    else if (stroke != RP_NONE) hx_sb_printf(c->out, "\\draw[hxc%d,line width=0.5pt]", tikz_colour(stroke));
    else return;
    hx_sb_printf(c->out, " (%.2f,%.2f) rectangle (%.2f,%.2f);\n", x, y, x + w, y + h);
}

void rp_cv_mark(rp_canvas *c, double x, double y, rp_shape shape, double size, int colour, const char *meta)
{
    double r = size / 2;
    /* the outline of each shape around (x, y): circle as itself, the others as polygons */
    double px[4], py[4];
    int n = 0;
    if (shape == RP_DIAMOND) {
        r *= 1.3;
        double dx[] = {0, r, 0, -r}, dy[] = {-r, 0, r, 0};
        for (n = 0; n < 4; n++) px[n] = x + dx[n], py[n] = y + dy[n];
    } else if (shape == RP_SQUARE) {
        double dx[] = {-r, r, r, -r}, dy[] = {-r, -r, r, r};
        for (n = 0; n < 4; n++) px[n] = x + dx[n], py[n] = y + dy[n];
    } else if (shape == RP_TRIANGLE) {
        r *= 1.2;
        double dx[] = {0, r, -r}, dy[] = {-r, 0.8 * r, 0.8 * r};
        for (n = 0; n < 3; n++) px[n] = x + dx[n], py[n] = y + dy[n];
    }
    if (c->fmt == RP_SVG) {
        if (!n) {
            hx_sb_printf(c->out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\" stroke=\"#000000\" stroke-width=\"0.4\"",
                         x, y, r, rp_colour_hex(colour));
        } else {
            hx_sb_puts(c->out, "<polygon points=\"");
            for (int i = 0; i < n; i++) hx_sb_printf(c->out, "%s%.2f,%.2f", i ? " " : "", px[i], py[i]);
            hx_sb_printf(c->out, "\" fill=\"%s\" stroke=\"#000000\" stroke-width=\"0.4\" data-cx=\"%.2f\" data-cy=\"%.2f\"",
                         rp_colour_hex(colour), x, y);
        }
        meta_attr(c, meta);
        hx_sb_puts(c->out, "/>\n");
        return;
    }
    hx_sb_printf(c->out, "\\filldraw[fill=hxc%d,draw=black,line width=0.4pt]", tikz_colour(colour));
    if (!n) {
        hx_sb_printf(c->out, " (%.2f,%.2f) circle[radius=%.2f];\n", x, y, r);
        return;
    }
    for (int i = 0; i < n; i++) hx_sb_printf(c->out, " (%.2f,%.2f) --", px[i], py[i]);
    hx_sb_puts(c->out, " cycle;\n");
}

void rp_cv_polyline(rp_canvas *c, const double *x, const double *y, int n, int colour, double width, int dash,
                    const char *meta)
{
    if (n < 1) return;
    if (c->fmt == RP_SVG) {
        hx_sb_puts(c->out, "<polyline points=\"");
        for (int i = 0; i < n; i++) hx_sb_printf(c->out, "%s%.2f,%.2f", i ? " " : "", x[i], y[i]);
        hx_sb_printf(c->out, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" stroke-linejoin=\"round\"%s",
                     rp_colour_hex(colour), width, svg_dash(dash));
        meta_attr(c, meta);
        hx_sb_puts(c->out, "/>\n");
        return;
    }
    hx_sb_printf(c->out, "\\draw[hxc%d,line width=%.2fpt,line join=round%s]", tikz_colour(colour), width, tikz_dash(dash));
    for (int i = 0; i < n; i++) hx_sb_printf(c->out, "%s (%.2f,%.2f)", i ? " --" : "", x[i], y[i]);
    hx_sb_puts(c->out, n == 1 ? " circle[radius=0.6];\n" : ";\n");
}

void rp_cv_text(rp_canvas *c, double x, double y, const char *s, double size, rp_anchor anchor, int rotate,
                const char *meta)
{
    if (c->fmt == RP_SVG) {
        static const char *const a[] = {"start", "middle", "end"};
        hx_sb_printf(c->out, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"%s\"", x, y, size, a[anchor]);
        if (rotate) hx_sb_printf(c->out, " transform=\"rotate(-90 %.2f %.2f)\"", x, y);
        meta_attr(c, meta);
        hx_sb_puts(c->out, ">");
        rp_xml_escape(c->out, s);
        hx_sb_puts(c->out, "</text>\n");
        return;
    }
    static const char *const a[] = {"base west", "base", "base east"};
    hx_sb_printf(c->out, "\\node[anchor=%s,inner sep=0pt,font=\\sffamily\\fontsize{%.1f}{%.1f}\\selectfont%s] at (%.2f,%.2f) {",
                 a[anchor], size, size * 1.2, rotate ? ",rotate=90" : "", x, y);
    rp_tex_escape(c->out, s);
    hx_sb_puts(c->out, "};\n");
}

void rp_cv_group(rp_canvas *c, const char *meta)
{
    if (c->fmt == RP_SVG) {
        hx_sb_puts(c->out, "<g");
        meta_attr(c, meta);
        hx_sb_puts(c->out, ">\n");
    } else {
        hx_sb_puts(c->out, "\\begin{scope}\n");
    }
}

void rp_cv_group_end(rp_canvas *c) { hx_sb_puts(c->out, c->fmt == RP_SVG ? "</g>\n" : "\\end{scope}\n"); }
