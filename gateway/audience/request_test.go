package audience

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// perUserDataBody is a trigger body of about n bytes of per_user_data.
func perUserDataBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"dry_run": true, "per_user_data": [`)
	pad := strings.Repeat("x", 2500)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"p%d","data":{"pad":%q}}`, i, pad)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// BenchmarkParseTriggerRequest24MB measures what decoding a 24 MB
// per_user_data body allocates (B/op): the figure row 6 of the hardening
// issue asks for.
func BenchmarkParseTriggerRequest24MB(b *testing.B) {
	body := perUserDataBody(24 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseTriggerRequest(bytes.NewReader(body), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
