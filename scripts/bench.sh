#!/usr/bin/env bash
# make bench: every benchmark, printing figures and, where a physical limit
# can be measured in the same run, the ratio to it.
#   scripts/bench.sh                      fan-out to 100,000 people
#   scripts/bench.sh -recipients=1000000  fan-out to 1,000,000
#   scripts/bench.sh -cluster-recipients=20000   smaller PostgreSQL runs
# PostgreSQL runs on $SWITCHBOARD_TEST_POSTGRES_URL (default: the local
# server, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

recipients=100000
cluster_recipients=100000
for arg in "$@"; do
	case $arg in
	-recipients=*) recipients=${arg#-recipients=} ;;
	-cluster-recipients=*) cluster_recipients=${arg#-cluster-recipients=} ;;
	*) echo "bench.sh: unknown flag $arg" >&2; exit 2 ;;
	esac
done

# Keep benchmark output: figures, ratios and the benchmarks' own log lines;
# drop per-package boilerplate and gateway INFO logs.
show() { grep -Ev '^(goos|goarch|pkg|cpu|PASS$)|level=(INFO|DEBUG)' || true; }

section() { printf '\n== %s\n' "$1"; }

section "Plugin round trip: Send through the gRPC plugin process vs the same channel in process"
go test -run '^$' -bench 'BenchmarkSend' -benchtime 2000x ./gateway/pluginhost/ | show

section "Latency on SQLite, real webhook plugin, local sink (1,000 sequential requests)"
go test -run '^$' -bench '^Benchmark(FlowTrigger|InboundReply)Latency$' -benchtime 1x ./gateway/e2e/ | show

section "Web chat: flow_trigger → connected client, and many concurrent connections (memory per connection, broadcast to all)"
go test -run '^$' -bench '^BenchmarkWebchat' -benchtime 1x -timeout 20m ./gateway/e2e/ | show

section "Retention under steady load on SQLite (100 flow_triggers/s + 20 inbound/s): database size and API p99 without and with the cleaner (10 s horizon)"
go test -run '^$' -bench '^BenchmarkRetentionSteadyLoad$' -benchtime 1x -timeout 5m ./gateway/e2e/ | show

section "Outbox on SQLite (and PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set): enqueue, claim, complete 1,000,000 rows"
go test -run '^$' -bench 'BenchmarkOutbox' -benchtime 1x ./gateway/store/sqlstore/ | show

section "Conversation engine: one reply turn committed on SQLite"
go test -run '^$' -bench 'BenchmarkHandle' ./gateway/conversation/ | show

section "Liquid rendering per message"
go test -run '^$' -bench 'BenchmarkRender' ./gateway/template/ | show

section "Group trigger fan-out to $recipients people through the webhook plugin to a local sink, vs a plain Go HTTP client to the same sink"
go test -run '^$' -bench 'BenchmarkFanout' -benchtime 1x -timeout 40m ./gateway/e2e/ -fanout.recipients "$recipients" | show

section "Fan-out to $cluster_recipients people: SQLite vs PostgreSQL with 1 node and with 3 gateway processes (never-analyzed tables)"
go test -run '^$' -bench 'BenchmarkFanoutPostgres' -benchtime 1x -timeout 40m ./gateway/e2e/ -cluster.recipients "$cluster_recipients" | show

section "kill -9 of the node running a fan-out to $cluster_recipients people, one of 3 on PostgreSQL: kill → last delivery, re-sends"
go test -run '^$' -bench 'BenchmarkFanoutKillNode' -benchtime 1x -timeout 40m ./gateway/e2e/ -cluster.recipients "$cluster_recipients" | show

section "PostgreSQL outage (3 s, every connection cut) while a fan-out is sent: longest stall at the sink, results lost"
go test -count=1 -run '^TestDatabaseOutageLosesNoResult$' -v -timeout 10m ./gateway/e2e/ | grep -E 'outage 3s|^(--- |ok|FAIL)' || true
