package twiliofake

import "strings"

// gsm7 is the GSM 03.38 default alphabet; gsm7ext are the characters that
// take an escape plus one septet.
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7ext = "^{}\\[~]|€\f"
)

// Segments counts the SMS segments of body as Twilio bills them: GSM-7
// text takes 160 septets in one segment or 153 per segment when split;
// anything outside GSM-7 (an emoji, most accents) switches the whole message
// to UCS-2: 70 UTF-16 units, or 67 per segment.
func Segments(body string) int {
	septets, isGSM := 0, true
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7, r):
			septets++
		case strings.ContainsRune(gsm7ext, r):
			septets += 2
		default:
			isGSM = false
		}
	}
	single, multi, n := 160, 153, septets
	if !isGSM {
		single, multi, n = 70, 67, utf16Len(body)
	}
	switch {
	case n == 0:
		return 1 // a media-only message still counts one
	case n <= single:
		return 1
	default:
		return (n + multi - 1) / multi
	}
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}
