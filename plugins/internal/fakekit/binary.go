package fakekit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/sdk/channeltest"
)

// BuildAndRun is a TestMain body for a plugin's conformance tests: it builds
// the plugin's main package pkg once into a temporary directory, stores the
// executable's path in *binary, runs the tests and cleans up. It returns the
// exit code for os.Exit.
func BuildAndRun(m *testing.M, pkg string, binary *string) int {
	dir, err := os.MkdirTemp("", "switchboard-plugin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*binary = filepath.Join(dir, filepath.Base(pkg))
	if err := channeltest.BuildPlugin(pkg, *binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
