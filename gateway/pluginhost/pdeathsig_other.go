//go:build !linux

package pluginhost

import "os/exec"

// setPdeathsig is Linux-only; elsewhere the SDK's parent watchdog stops
// orphaned plugins.
func setPdeathsig(*exec.Cmd) {}
