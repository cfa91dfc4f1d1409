package assistant

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// sessionIssuer is the iss claim of session tokens. Identity tokens must use
// another (or none): iss selects the key a token is checked with.
const sessionIssuer = "switchboard"

// anonPrefix starts the user id of anonymous sessions.
const anonPrefix = "anon-"

// maxUserID bounds a user id (sub claim).
const maxUserID = 128

// errToken is wrapped by every token refusal; the client is told why.
var errToken = errors.New("invalid token")

// claims are the claims of both token kinds. Name and Email are optional
// profile claims of identity tokens; Anonymous marks anonymous sessions.
type claims struct {
	jwt.RegisteredClaims
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Anonymous bool   `json:"anon,omitempty"`
}

// session is who a verified token names.
type session struct {
	userID    string
	anonymous bool
	profile   map[string]string
}

// issue signs a session token for s, valid for the instance's session TTL.
func (in *instance) issue(s session, now time.Time) (string, time.Time, error) {
	exp := now.Add(in.sessionTTL).Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    sessionIssuer,
			Subject:   s.userID,
			Audience:  jwt.ClaimStrings{in.id},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Anonymous: s.anonymous,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(in.sessionKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign session token: %w", err)
	}
	return tok, exp, nil
}

// verify checks a session token (iss "switchboard", signed with the
// gateway-derived session key) or an identity token (any other iss, signed
// with the channel's identity_secret). Both must be HS256, unexpired, carry
// exp and sub, and, when they name an audience, name this channel; session
// tokens must name it.
func (in *instance) verify(raw string, now time.Time) (session, error) {
	var unverified claims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &unverified); err != nil {
		return session{}, fmt.Errorf("%w: %w", errToken, err)
	}
	isSession := unverified.Issuer == sessionIssuer
	key := in.sessionKey
	if !isSession {
		if in.identityKey == nil {
			return session{}, fmt.Errorf("%w: identity tokens are not enabled on this channel", errToken)
		}
		key = in.identityKey
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(30 * time.Second),
	}
	if isSession {
		opts = append(opts, jwt.WithAudience(in.id))
	}
	var c claims
	if _, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil }, opts...); err != nil {
		return session{}, fmt.Errorf("%w: %w", errToken, err)
	}
	if len(c.Audience) > 0 && !isSession && !slices.Contains(c.Audience, in.id) {
		return session{}, fmt.Errorf("%w: token is for another channel", errToken)
	}
	if err := checkUserID(c.Subject); err != nil {
		return session{}, fmt.Errorf("%w: sub %w", errToken, err)
	}
	if !isSession && strings.HasPrefix(c.Subject, anonPrefix) {
		return session{}, fmt.Errorf("%w: sub must not start with %q, which marks anonymous users", errToken, anonPrefix)
	}
	s := session{userID: c.Subject, anonymous: isSession && c.Anonymous}
	for k, v := range map[string]string{"name": c.Name, "email": c.Email} {
		if v != "" {
			if s.profile == nil {
				s.profile = map[string]string{}
			}
			s.profile[k] = v
		}
	}
	return s, nil
}

// newAnonymous makes a fresh anonymous user.
func newAnonymous() session {
	return session{userID: anonPrefix + randomID(), anonymous: true}
}

// randomID returns 128 random bits in hex.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func checkUserID(id string) error {
	if id == "" || len(id) > maxUserID {
		return fmt.Errorf("must be 1 to %d bytes", maxUserID)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errors.New("must not contain spaces or control characters")
		}
	}
	return nil
}
