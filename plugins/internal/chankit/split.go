package chankit

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Len measures s the way the platforms count characters: in UTF-16 code
// units, so an emoji outside the BMP counts twice. Counting runes would let a
// message through that the platform then refuses as too long.
func Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// Truncate returns the longest prefix of s whose Len is at most max.
func Truncate(s string, max int) string {
	n := 0
	for i, r := range s {
		n += utf16.RuneLen(r)
		if n > max {
			return s[:i]
		}
	}
	return s
}

// Split cuts text into parts of at most max (by Len). It cuts at the last
// line break that fits, else at the last space, else inside a word (never
// inside a rune). Whitespace at a cut is dropped; an empty text gives no
// parts. max must be positive.
func Split(text string, max int) []string {
	var parts []string
	for text = strings.TrimSpace(text); text != ""; {
		if Len(text) <= max {
			return append(parts, text)
		}
		head := Truncate(text, max)
		if head == "" { // max is smaller than the first rune: take the rune anyway
			_, size := utf8.DecodeRuneInString(text)
			head = text[:size]
		}
		cut := len(head)
		if i := strings.LastIndexByte(head, '\n'); i > 0 {
			cut = i
		} else if i := strings.LastIndexByte(head, ' '); i > 0 {
			cut = i
		}
		parts = append(parts, strings.TrimSpace(text[:cut]))
		text = strings.TrimSpace(text[cut:])
	}
	return parts
}
