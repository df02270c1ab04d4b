#!/bin/sh
# run-tests.sh BUILD BIN... - runs test binaries and sums their results.
#
# Each binary is a cmocka suite (or a crash test reporting in cmocka's
# form).  Their output is shown as it comes; the closing line totals the
# individual tests of every suite as "N passed, N failed".  A binary that
# dies without a summary counts as one failure.
build=$1
shift
passed=0
failed=0
log="$build/test-output.log"
: >"$log"
for bin in "$@"; do
	out=$(mktemp)
	"$bin" >"$out" 2>&1
	rc=$?
	cat "$out"
	cat "$out" >>"$log"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run-tests: $bin exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	rm -f "$out"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
