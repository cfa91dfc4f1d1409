package e2e

import (
	"flag"
	"fmt"
	"testing"
)

var clusterRecipients = flag.Int("cluster.recipients", 100_000, "recipients of the PostgreSQL fan-out benchmarks")

// BenchmarkFanoutPostgres fans one trigger out to -cluster.recipients
// people on SQLite, then on PostgreSQL with one gateway process and with
// three on one database, and reports each rate and the ratios PostgreSQL
// 1 node / SQLite and 3 nodes / 1 node measured in the same run. The
// PostgreSQL schemas are new, so their tables were never analyzed. Run:
//
//	SWITCHBOARD_TEST_POSTGRES_URL=… go test ./gateway/e2e -run '^$' -bench BenchmarkFanoutPostgres -benchtime 1x -timeout 30m
func BenchmarkFanoutPostgres(b *testing.B) {
	n := *clusterRecipients
	for range b.N {
		lite := runFanout(b, fanoutRun{n: n, nodes: 1})
		one := runFanout(b, fanoutRun{n: n, nodes: 1, database: freshPostgres(b)})
		three := runFanout(b, fanoutRun{n: n, nodes: 3, database: freshPostgres(b)})
		rate := func(r fanoutResult) float64 { return float64(n) / r.took.Seconds() }
		b.ReportMetric(rate(lite), "sqlite_deliveries/s")
		b.ReportMetric(rate(one), "pg1_deliveries/s")
		b.ReportMetric(rate(three), "pg3_deliveries/s")
		b.ReportMetric(rate(one)/rate(lite), "pg1_to_sqlite")
		b.ReportMetric(rate(three)/rate(one), "pg3_to_pg1")
		fmt.Printf("fan-out %d recipients: SQLite %s (%.0f/s); PostgreSQL 1 node %s (%.0f/s, %.2f× SQLite); "+
			"3 nodes %s (%.0f/s, %.2f× 1 node); sink requests %d / %d / %d\n",
			n, lite.took.Round(1e6), rate(lite), one.took.Round(1e6), rate(one), rate(one)/rate(lite),
			three.took.Round(1e6), rate(three), rate(three)/rate(one), lite.requests, one.requests, three.requests)
	}
}

// BenchmarkFanoutKillNode runs three gateway processes on one PostgreSQL
// database, SIGKILLs the one running the fan-out when a third of the
// recipients were reached, and reports the time from the kill to the last
// delivery and the re-sends (same idempotency key). A recipient never
// reached fails the benchmark.
func BenchmarkFanoutKillNode(b *testing.B) {
	n := *clusterRecipients
	for range b.N {
		r := runFanout(b, fanoutRun{n: n, nodes: 3, database: freshPostgres(b), killAt: 1.0 / 3})
		if r.killed == "" {
			b.Fatal("the fan-out ended before a node could be killed")
		}
		b.ReportMetric(r.afterKill.Seconds(), "s_kill_to_last_delivery")
		b.ReportMetric(float64(r.requests-int64(n)), "resent")
		fmt.Printf("kill -9 of %s (running the fan-out) at 1/3 of %d recipients: survivors reached the last one %s after the kill; "+
			"%d re-sent with the same key, none missing; whole fan-out %s\n",
			r.killed, n, r.afterKill.Round(1e6), r.requests-int64(n), r.took.Round(1e6))
	}
}
