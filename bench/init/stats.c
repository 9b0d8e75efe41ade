/* The result tables (percentiles and cells: ../common/common.c). */
#include "bench.h"

#include <math.h>
#include <stdio.h>

static const char *target_text(enum target t)
{
	switch (t) {
	case T_LE_BEST: return "<= best";
	case T_LE_BEST_10: return "<= best/10";
	case T_LE_HALF_CATA: return "<= cata/2";
	default: return "-";
	}
}

int bench_table(const char *title, const struct init_cfg *cfg, const struct row *rows, int n,
		int *pass, int *miss)
{
	int misses = 0;
	printf("\n%s\n", title);
	printf("%-26s", "metric");
	for (int c = 0; c < NCFG; c++)
		printf(" %10s", cfg[c].name);
	printf(" %11s %9s %-11s %s\n", "best anchor", "ours/best", "target", "result");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		double best = NAN;
		for (int c = C_TINI; c < NCFG; c++)
			if (!isnan(r->v[c]) && (isnan(best) || r->v[c] < best))
				best = r->v[c];
		double ours = r->v[C_OURS];
		double ratio = (!isnan(ours) && !isnan(best) && best > 0) ? ours / best : NAN;
		printf("%-26s", r->label);
		for (int c = 0; c < NCFG; c++)
			bc_cell(r->v[c], r->decimals, 10);
		bc_cell(best, r->decimals, 11);
		bc_cell(ratio, 2, 9);
		printf(" %-11s ", target_text(r->target));
		if (r->target == T_NONE) {
			printf("\n");
			continue;
		}
		double limit = r->target == T_LE_BEST ? best
			     : r->target == T_LE_BEST_10 ? best / 10
			     : r->v[C_CATA] / 2;
		if (isnan(ours) || isnan(limit)) {
			printf("n/a\n");
			continue;
		}
		if (ours <= limit) {
			printf("PASS\n");
			(*pass)++;
		} else {
			printf("MISS\n");
			(*miss)++;
			misses++;
		}
	}
	return misses;
}
