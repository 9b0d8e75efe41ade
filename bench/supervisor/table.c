/* The result tables: ours, each anchor, the best anchor, ours/best, target (percentiles and
 * cells: ../common/common.c). */
#include "supbench.h"

#include <math.h>
#include <stdio.h>

static void target_text(const struct sb_table *t, const struct sb_row *r, char *buf, size_t len)
{
	switch (r->target) {
	case T_LE_FRAC:
		if (r->frac_or_abs == 1)
			snprintf(buf, len, "<= %s", t->cols[r->col]);
		else
			snprintf(buf, len, "<= %s*%g", t->cols[r->col], r->frac_or_abs);
		break;
	case T_LT:
		snprintf(buf, len, "< %s", t->cols[r->col]);
		break;
	case T_LE_ABS:
		snprintf(buf, len, "<= %g", r->frac_or_abs);
		break;
	default:
		snprintf(buf, len, "-");
	}
}

void sb_table_print(const struct sb_table *t, int *pass, int *miss)
{
	printf("\n%s\n", t->title);
	printf("%-30s", "metric");
	for (int c = 0; c < t->ncol; c++)
		printf(" %11s", t->cols[c]);
	printf(" %11s %9s %-17s %s\n", "best anchor", "ours/best", "target", "result");
	for (int i = 0; i < t->nrows; i++) {
		const struct sb_row *r = &t->rows[i];
		double best = NAN;
		for (int c = t->nours; c < t->ncol; c++)
			if (!isnan(r->v[c]) && (isnan(best) || r->v[c] < best))
				best = r->v[c];
		double ours = r->v[r->judge];
		double ratio = (!isnan(ours) && !isnan(best) && best > 0) ? ours / best : NAN;
		char tt[64];
		target_text(t, r, tt, sizeof(tt));
		printf("%-30s", r->label);
		for (int c = 0; c < t->ncol; c++)
			bc_cell(r->v[c], r->decimals, 11);
		bc_cell(best, r->decimals, 11);
		bc_cell(ratio, 2, 9);
		printf(" %-17s ", tt);
		if (r->target == T_NONE) {
			printf("\n");
			continue;
		}
		double limit = r->target == T_LE_ABS ? r->frac_or_abs
			     : r->target == T_LE_FRAC ? r->v[r->col] * r->frac_or_abs
			     : r->v[r->col];
		if (isnan(ours) || isnan(limit)) {
			printf("n/a\n");
			continue;
		}
		bool ok = r->target == T_LT ? ours < limit : ours <= limit;
		printf("%s\n", ok ? "PASS" : "MISS");
		if (ok)
			(*pass)++;
		else
			(*miss)++;
	}
	fflush(stdout);
}
