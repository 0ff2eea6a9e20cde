#!/bin/sh
# regie-load --server-bin bench/callgrind-server.sh: the bench server under callgrind (or the
# valgrind tool in CG_TOOL, e.g. massif for a heap profile). Not exec'd, so the load generator's
# SIGKILL hits this shell and the server lives on until sent SIGTERM (then valgrind writes its
# profile).
TOOL="${CG_TOOL:-callgrind}"
valgrind --tool="$TOOL" --"$TOOL"-out-file="${CG_OUT:-/tmp/cg.out}" "${CG_BIN:-/work/target-perf/release/regie-bench-server}" "$@" &
echo $! > "${CG_OUT:-/tmp/cg.out}.pid"
wait
