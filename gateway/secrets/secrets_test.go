package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/secrets"
)

func keyring(t testing.TB, current string, previous ...string) *secrets.Keyring {
	t.Helper()
	r, err := secrets.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealRoundTrip(t *testing.T) {
	r := keyring(t, "key-a")
	for _, plain := range []string{"", "whsec_c2VjcmV0", strings.Repeat("x", 10_000)} {
		env, err := r.Seal([]byte(plain), "channel:c1")
		if err != nil {
			t.Fatal(err)
		}
		if !secrets.IsSealed(env) || !strings.HasPrefix(env, "sb1:"+r.CurrentID()+":") {
			t.Fatalf("envelope %q: not sb1 under key %s", env, r.CurrentID())
		}
		if plain != "" && strings.Contains(env, plain) {
			t.Fatalf("envelope contains the plaintext")
		}
		got, err := r.Open(env, "channel:c1")
		if err != nil || string(got) != plain {
			t.Fatalf("Open = %q, %v; want %q", got, err, plain)
		}
	}
	a, _ := r.Seal([]byte("same"), "ctx")
	b, _ := r.Seal([]byte("same"), "ctx")
	if a == b {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	r := keyring(t, "key-a")
	env, err := r.Seal([]byte("the secret"), "channel:c1")
	if err != nil {
		t.Fatal(err)
	}
	// Flip one character of the payload at several places, and truncate.
	payload := strings.LastIndex(env, ":") + 1
	tampered := []string{env[:len(env)-4], env + "AA", "sb1:" + r.CurrentID() + ":", "sb1:garbage"}
	for _, i := range []int{payload, payload + 20, len(env) - 2} {
		b := []byte(env)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tampered = append(tampered, string(b))
	}
	for _, bad := range tampered {
		if _, err := r.Open(bad, "channel:c1"); !errors.Is(err, secrets.ErrCorrupt) {
			t.Errorf("Open(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	// An envelope moved to another row does not open either.
	if _, err := r.Open(env, "channel:c2"); !errors.Is(err, secrets.ErrCorrupt) {
		t.Errorf("Open in another context = %v, want ErrCorrupt", err)
	}
}

func TestOpenWithWrongKey(t *testing.T) {
	a, b := keyring(t, "key-a"), keyring(t, "key-b")
	env, _ := a.Seal([]byte("s"), "ctx")
	_, err := b.Open(env, "ctx")
	if !errors.Is(err, secrets.ErrUnknownKey) {
		t.Fatalf("Open with another key = %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), a.CurrentID()) || !strings.Contains(err.Error(), "SWITCHBOARD_SECRET_KEY_PREVIOUS") {
		t.Fatalf("error %q does not name the missing key id and how to supply it", err)
	}
	// Relabelled with b's id, the envelope is refused as corrupt: the id
	// is part of the authenticated data.
	relabelled := strings.Replace(env, a.CurrentID(), b.CurrentID(), 1)
	if _, err := b.Open(relabelled, "ctx"); !errors.Is(err, secrets.ErrCorrupt) {
		t.Fatalf("relabelled envelope: %v, want ErrCorrupt", err)
	}
	var empty *secrets.Keyring
	if _, err := empty.Open(env, "ctx"); !errors.Is(err, secrets.ErrNoKey) {
		t.Fatalf("Open without keys = %v, want ErrNoKey", err)
	}
	if _, err := empty.Seal([]byte("s"), "ctx"); !errors.Is(err, secrets.ErrNoKey) {
		t.Fatalf("Seal without keys = %v, want ErrNoKey", err)
	}
}

// TestKeyIDRouting: after a rotation the keyring opens envelopes of the old
// and the new key, seals only under the new one, and tells them apart.
func TestKeyIDRouting(t *testing.T) {
	old := keyring(t, "key-old")
	oldEnv, _ := old.Seal([]byte("sealed long ago"), "ctx")
	rotated := keyring(t, "key-new", "key-old", "", "key-new")
	if rotated.CurrentID() == old.CurrentID() {
		t.Fatal("different keys have the same id")
	}
	newEnv, _ := rotated.Seal([]byte("sealed now"), "ctx")
	for env, want := range map[string]string{oldEnv: "sealed long ago", newEnv: "sealed now"} {
		got, err := rotated.Open(env, "ctx")
		if err != nil || string(got) != want {
			t.Fatalf("Open(%q) = %q, %v", env, got, err)
		}
	}
	if rotated.SealedUnderCurrent(oldEnv) || !rotated.SealedUnderCurrent(newEnv) {
		t.Fatal("SealedUnderCurrent does not tell the keys apart")
	}
	if keyring(t, "key-old").CurrentID() != old.CurrentID() {
		t.Fatal("a key's id is not stable")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.key")
	s1, created, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil || !created || len(s1) != 64 {
		t.Fatalf("first call: %q, created %v, %v", s1, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	s2, created, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil || created || s2 != s1 {
		t.Fatalf("second call: %q, created %v, %v; want the first secret", s2, created, err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secrets.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("an empty key file was accepted (a new key would orphan every sealed value)")
	}
}

func FuzzOpen(f *testing.F) {
	r := keyring(f, "fuzz-key")
	env, _ := r.Seal([]byte("whsec_abc"), "ctx")
	f.Add(env, "ctx")
	f.Add("sb1:"+r.CurrentID()+":AAAA", "ctx")
	f.Add("sb1::", "")
	f.Add("plain", "ctx")
	f.Fuzz(func(t *testing.T, envelope, context string) {
		plain, err := r.Open(envelope, context)
		if err != nil {
			return
		}
		// Whatever opens must have come from a seal under this key, and
		// the only one the fuzzer knows is the seed's (GCM: forging
		// another is infeasible).
		if context != "ctx" || string(plain) != "whsec_abc" {
			t.Fatalf("Open(%q, %q) = %q: a forged envelope opened", envelope, context, plain)
		}
	})
}
