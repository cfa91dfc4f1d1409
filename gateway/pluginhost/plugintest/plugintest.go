// Package plugintest installs built plugins into a plugins directory for
// tests of the gateway, the way `make plugins` lays them out:
//
//	func TestSomething(t *testing.T) {
//		dir := t.TempDir()
//		plugintest.Install(t, dir, "webhook", plugintest.Build(t, plugintest.Webhook))
//		host := pluginhost.New(pluginhost.Config{Dir: dir, ...})
//	}
//
// Build links a fresh binary (the go build cache keeps that to a second or
// two); a package with many such tests builds once in TestMain with
// channeltest.BuildPlugin and installs copies.
package plugintest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
)

// Webhook is the import path of the webhook plugin.
const Webhook = "github.com/switchboard-gw/switchboard/plugins/webhook"

// Build compiles the plugin main package pkg into tb.TempDir() and returns
// the binary's path.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	if err := channeltest.BuildPlugin(pkg, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Install copies binary to dir/name/name and writes a plugin.json for it
// (version "test", the SDK's protocol version, its sha256).
func Install(tb testing.TB, dir, name, binary string) pluginhost.Manifest {
	tb.Helper()
	pdir := filepath.Join(dir, name)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	sum, err := copyFile(binary, filepath.Join(pdir, name))
	if err != nil {
		tb.Fatal(err)
	}
	m := pluginhost.Manifest{
		Name:            name,
		Version:         "test",
		ProtocolVersion: sdk.ProtocolVersion,
		Executable:      name,
		SHA256:          sum,
	}
	if err := pluginhost.WriteManifest(pdir, m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// copyFile copies an executable and returns the hex SHA-256 of its bytes.
func copyFile(from, to string) (string, error) {
	in, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), out.Close()
}
