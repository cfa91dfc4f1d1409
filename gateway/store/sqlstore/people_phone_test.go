package sqlstore

import (
	"context"
	"strings"
	"testing"
)

// TestSQLitePhoneLookupUsesItsIndex: the lookup behind a first message on
// a phone channel reads the people_phone index, not every person (the
// query's expression must match the index's exactly for SQLite to use
// it).
func TestSQLitePhoneLookupUsesItsIndex(t *testing.T) {
	s := OpenTest(t)
	rows, err := s.conns.write.QueryContext(context.Background(), `EXPLAIN QUERY PLAN SELECT `+personCols+
		` FROM people WHERE workspace_id = ? AND `+s.d.phoneAttr()+` = ? ORDER BY created_at, id`, "w", "+15550000001")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "; "), "USING INDEX people_phone") {
		t.Fatalf("plan %q does not use people_phone", plan)
	}
}
