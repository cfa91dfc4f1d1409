package twiliofake

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{"", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("a", 306), 2},
		{strings.Repeat("a", 307), 3},
		{strings.Repeat("€", 80), 1},  // extension characters count two septets
		{strings.Repeat("€", 81), 2},  // 162 septets
		{strings.Repeat("é", 160), 1}, // é is in GSM-7
		{strings.Repeat("a", 70) + "😀", 2},
		{strings.Repeat("ü", 69) + "ł", 1}, // ł forces UCS-2: 70 units
	} {
		if got := Segments(tc.body); got != tc.want {
			t.Errorf("Segments(%d chars %q…) = %d, want %d", len([]rune(tc.body)), tc.body[:min(len(tc.body), 6)], got, tc.want)
		}
	}
}
