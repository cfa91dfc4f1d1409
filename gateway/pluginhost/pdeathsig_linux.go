package pluginhost

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel SIGTERM the plugin when the gateway dies,
// even by kill -9. Caveat (golang/go#27505): the signal follows the OS thread
// that forked, not the process; Go only retires threads of goroutines that
// exit while locked to one, which the host never does. The SDK's parent
// watchdog covers whatever slips through.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
