// Package secrets seals values at rest: channel secrets and bot call
// secrets are stored as AES-256-GCM envelopes under a key derived from the
// gateway's secret_key.
//
// An envelope is "sb1:<kid>:<base64 of nonce and ciphertext>". The key id
// (kid) is a short hash of the key, so a Keyring holding the current key and
// the previous ones opens any envelope it has a key for and seals only under
// the current one: keys rotate without downtime (new key current on every
// node, old key kept as previous, `switchboard secrets rotate` re-seals, old
// key dropped). Every envelope is bound to a context string (e.g. the row it
// belongs to), so an envelope copied to another row does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors of Open; callers branch on them with errors.Is.
var (
	// ErrNoKey means the keyring is empty: nothing can be sealed or
	// opened.
	ErrNoKey = errors.New("no secret key configured (set SWITCHBOARD_SECRET_KEY or secret_key)")
	// ErrUnknownKey means the envelope was sealed under a key the keyring
	// does not hold.
	ErrUnknownKey = errors.New("sealed under an unknown key")
	// ErrCorrupt means the envelope is malformed or was altered, or is
	// bound to another context.
	ErrCorrupt = errors.New("sealed value is corrupt or was tampered with")
)

// prefix starts every envelope; a stored value without it is plaintext
// written before sealing existed.
const prefix = "sb1:"

// Key is one sealing key.
type Key struct {
	id   string
	aead cipher.AEAD
}

// ID is the key's id as it appears in envelopes: 8 hex digits of a hash of
// the key, which says which key sealed a value and nothing about the key.
func (k *Key) ID() string { return k.id }

// NewKey derives a sealing key from a configured secret (any string; 32
// random bytes, hex-encoded, are the recommended form). Deriving through
// HMAC with a fixed label keeps the sealing key apart from other keys the
// gateway derives from the same secret (web chat session keys).
func NewKey(secret string) (*Key, error) {
	if secret == "" {
		return nil, ErrNoKey
	}
	aesKey := derive(secret, "switchboard/seal/v1")
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Key{id: hex.EncodeToString(derive(secret, "switchboard/kid/v1")[:4]), aead: aead}, nil
}

func derive(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Keyring seals under its current key and opens under any of its keys. The
// zero value (and nil) holds no key. A Keyring is immutable and safe for
// concurrent use.
type Keyring struct {
	current *Key
	byID    map[string]*Key
}

// NewKeyring builds a keyring from the current secret and any previous ones
// (empty strings and repeats are ignored).
func NewKeyring(current string, previous ...string) (*Keyring, error) {
	cur, err := NewKey(current)
	if err != nil {
		return nil, err
	}
	r := &Keyring{current: cur, byID: map[string]*Key{cur.id: cur}}
	for _, p := range previous {
		if p == "" {
			continue
		}
		k, err := NewKey(p)
		if err != nil {
			return nil, err
		}
		if _, dup := r.byID[k.id]; !dup {
			r.byID[k.id] = k
		}
	}
	return r, nil
}

// CurrentID is the id of the key new envelopes are sealed under, "" for an
// empty keyring.
func (r *Keyring) CurrentID() string {
	if r == nil || r.current == nil {
		return ""
	}
	return r.current.id
}

// Seal encrypts plaintext under the current key, bound to context.
func (r *Keyring) Seal(plaintext []byte, context string) (string, error) {
	if r == nil || r.current == nil {
		return "", ErrNoKey
	}
	k := r.current
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	sealed := k.aead.Seal(nonce, nonce, plaintext, additional(k.id, context))
	return prefix + k.id + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts an envelope made by Seal with the same context, under
// whichever of the keyring's keys sealed it.
func (r *Keyring) Open(envelope, context string) ([]byte, error) {
	kid, data, ok := strings.Cut(strings.TrimPrefix(envelope, prefix), ":")
	if !IsSealed(envelope) || !ok {
		return nil, ErrCorrupt
	}
	if r == nil || r.current == nil {
		return nil, fmt.Errorf("open value sealed under key %s: %w", kid, ErrNoKey)
	}
	k, ok := r.byID[kid]
	if !ok {
		return nil, fmt.Errorf("key id %s (known: %s): %w; give the key it was sealed under in SWITCHBOARD_SECRET_KEY_PREVIOUS or secret_keys_previous",
			kid, strings.Join(r.ids(), ", "), ErrUnknownKey)
	}
	raw, err := base64.RawStdEncoding.Strict().DecodeString(data)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrCorrupt
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], additional(kid, context))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// SealedUnderCurrent reports whether envelope was sealed under the current
// key, i.e. whether a rotation would leave it as it is.
func (r *Keyring) SealedUnderCurrent(envelope string) bool {
	return r.CurrentID() != "" && strings.HasPrefix(envelope, prefix+r.current.id+":")
}

func (r *Keyring) ids() []string {
	ids := []string{r.current.id}
	for id := range r.byID {
		if id != r.current.id {
			ids = append(ids, id)
		}
	}
	return ids
}

// IsSealed reports whether a stored value is an envelope (as opposed to
// plaintext from before sealing).
func IsSealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// additional is the GCM additional data: the envelope's version and key id
// and the caller's context, so none of them can be changed unnoticed.
func additional(kid, context string) []byte {
	return []byte(prefix + kid + ":" + context)
}
