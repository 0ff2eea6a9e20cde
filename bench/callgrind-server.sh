#!/bin/sh
# regie-load --server-bin bench/callgrind-server.sh: the bench server under callgrind. Not exec'd, so the
# load generator's SIGKILL hits this shell and the server lives on until sent SIGTERM (then
# callgrind writes its profile).
valgrind --tool=callgrind --callgrind-out-file="${CG_OUT:-/tmp/cg.out}" "${CG_BIN:-/work/target-perf/release/regie-bench-server}" "$@" &
echo $! > "${CG_OUT:-/tmp/cg.out}.pid"
wait
