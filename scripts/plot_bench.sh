#!/usr/bin/env bash
# Renders benchmark chart data (the lines the bench programs append to $STACKLESS_BENCH_CSV; see
# bench::chart_bar in bench/bench_util.hpp) as one PNG per benchmark: horizontal bars of each
# contender's ratio to its same-run baseline, on a log scale (the baseline is the dashed line at
# 1). Needs gnuplot with the pngcairo terminal (Debian: gnuplot-nox; scripts/deps.sh gnuplot-nox).
#
# Usage: scripts/plot_bench.sh DATA.tsv [OUTDIR]   (OUTDIR defaults to docs/performance)
# scripts/bench.sh --plot runs the benchmarks and then this.
set -euo pipefail
data=${1:?usage: plot_bench.sh DATA.tsv [OUTDIR]}
out=${2:-docs/performance}
[ -s "$data" ] || { echo "plot_bench.sh: no chart data in $data" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot_bench.sh: gnuplot is not installed (scripts/deps.sh gnuplot-nox)" >&2; exit 1; }
gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo ||
  { echo "plot_bench.sh: this gnuplot has no pngcairo terminal" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap '[ -n "${PLOT_KEEP:-}" ] || rm -rf "$tmp"' EXIT

# The last run of a chart wins: keep only the lines of each chart's last block.
for chart in $(cut -f1 "$data" | awk '!seen[$0]++'); do
  case "$chart" in *[!A-Za-z0-9_-]*|'') echo "plot_bench.sh: bad chart name '$chart'" >&2; exit 1 ;; esac
  # Bars in the order the benchmark printed them; colour: baselines grey, stackless blue,
  # labelled variants light blue.
  awk -F'\t' -v c="$chart" '
    BEGIN { n = 0 }
    $1 == c { if ($3 in idx) { n = 0; delete idx }  # a repeated label starts a new run
              idx[$3] = n; lab[n] = $3; r[n] = $4; note[n] = $5; title = $2; n++ }
    END {
      for (i = 0; i < n; i++) {
        col = 8947848                                                  # #888888: peers
        if (lab[i] ~ /stackless/) col = (lab[i] ~ /variant/) ? 10406625 : 2191797  # #9ecae1, #2171b5
        if (r[i] == 1) col = 5592405                                   # #555555: the baseline
        printf "%s\t%.6g\t%s\t%d\n", lab[i], r[i], note[i], col
      }
      print title > "/dev/stderr"
    }' "$data" >"$tmp/$chart.dat" 2>"$tmp/$chart.title"
  n=$(wc -l <"$tmp/$chart.dat")
  [ "$n" -gt 0 ] || continue
  read -r lo hi < <(awk -F'\t' 'NR == 1 { lo = $2; hi = $2 }
    { if ($2 < lo) lo = $2; if ($2 > hi) hi = $2 }
    END { if (lo > 1) lo = 1; if (hi < 1) hi = 1; printf "%g %g\n", lo / 4, hi * 12 }' "$tmp/$chart.dat")
  # Two title lines: the benchmark, then what the ratio is.
  title=$(sed 's/"/\\"/g; s/: /:\\n/' "$tmp/$chart.title")
  height=$((140 + 42 * n))
  gnuplot <<EOF
set terminal pngcairo size 1100,$height font "DejaVu Sans,11" noenhanced
set output "$out/$chart.png"
set datafile separator "\t"
set title "$title"
set logscale x
set xrange [$lo:$hi]
set yrange [$n-0.4:-0.6]
set xlabel "ratio to the same-run baseline (log scale; 1 = baseline, dashed)"
set grid xtics
set key off
set border 3
set xtics nomirror
set ytics nomirror scale 0
set lmargin 52
set style fill solid 0.9 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lw 1.5 lc rgb "black"
plot "$tmp/$chart.dat" using ($lo):0:($lo):2:(\$0-0.34):(\$0+0.34):4:ytic(1) \
       with boxxyerror lc rgb variable, \
     "" using (\$2 > 1 ? \$2 : 1):0:(sprintf("  %.2fx  (%s)", \$2, strcol(3))) with labels left
EOF
  echo "plot_bench.sh: $out/$chart.png ($n bars)"
done
