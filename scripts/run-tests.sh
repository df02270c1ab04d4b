#!/bin/sh
# run-tests.sh BUILD TEST... - runs test suites and sums their results.
#
# Each TEST is a cmocka binary, or pytest:DIR for a pytest suite (run with
# TROVE_BUILD=BUILD in its environment).  Their output is shown as it
# comes; the closing line totals the individual tests of every suite as
# "N passed, N failed".  A suite that dies without a summary counts as one
# failure.
build=$1
shift
passed=0
failed=0
log="$build/test-output.log"
: >"$log"

# count WORD LINE - the number before WORD in a pytest summary line.
count() {
	echo "$2" | tr ',' '\n' | sed -n "s/^[^0-9]*\([0-9][0-9]*\) $1.*/\1/p" | head -n 1
}

for t in "$@"; do
	out=$(mktemp)
	case "$t" in
	pytest:*)
		TROVE_BUILD="$build" python3 -m pytest -q -p no:cacheprovider "${t#pytest:}" >"$out" 2>&1
		rc=$?
		summary=$(tail -n 1 "$out")
		p=$(count passed "$summary")
		f=$(count failed "$summary")
		e=$(count error "$summary")
		p=${p:-0}
		f=$((${f:-0} + ${e:-0}))
		;;
	*)
		"$t" >"$out" 2>&1
		rc=$?
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
		;;
	esac
	cat "$out"
	cat "$out" >>"$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run-tests: $t exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	rm -f "$out"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
