# chart.gp - draws bench/results/latest.png from latest.dat (written by
# trove-bench).  Usage: gnuplot -e "in='latest.dat'; out='latest.png'" chart.gp
#
# Five panels of ops/s (log scale, one bar per engine, Trove in red), then
# Trove's ratio to the best peer on every workload (green: Trove leads).

if (!exists("in")) in = 'bench/results/latest.dat'
if (!exists("out")) out = 'bench/results/latest.png'

set terminal pngcairo size 1800,1900 font "DejaVu Sans,13" noenhanced
set output out
set datafile separator "\t"
set datafile missing "nan"
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set format y "%.0s%c"
set grid ytics lc rgb "#dddddd"
set xtics nomirror scale 0 rotate by 25 right font ",12"
set ytics nomirror
set border 3

# One colour per engine, in the driver's order: Trove first, in red.
array C[11] = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", \
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79"]
do for [i=1:11] { set linetype i lc rgb C[i] }

stats in index 0 using 2 nooutput
N = STATS_columns

array T[5] = ["Writes, no fsync", "Point reads", "Ordered reads", \
              "Durable writes: on stable storage before each acknowledgement", \
              "Larger than the cache"]

set multiplot layout 3,2 title "trove-bench: ops/s per engine and workload (higher is better; log scale)" font ",16"

do for [g=0:4] {
	set title T[g + 1] font ",14"
	set ylabel "ops/s"
	if (g == 0) {
		set key outside top left horizontal maxrows 2 Left reverse font ",12" samplen 1.5 width 1
	} else {
		unset key
	}
	plot in index g using 2:xtic(1) title columnhead(2), \
	     for [i=3:N] '' index g using i title columnhead(i)
}

# Trove / best peer: bars, green where Trove is at least the best peer.
unset key
set title "Trove ÷ best peer on each workload (1 = as fast as the fastest other engine)" font ",14"
set ylabel "ratio (log scale)"
set style fill solid 0.9 border -1
set boxwidth 0.7
set xtics rotate by 40 right font ",11"
set yrange [0.001<*:1.5<*]
set format y "%g"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
plot in index 5 using 0:2:($2 >= 1 ? 0x2ca02c : 0xd62728):xtic(1) with boxes lc rgb variable, \
     '' index 5 using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.6 font ",10"
unset arrow 1

unset multiplot
