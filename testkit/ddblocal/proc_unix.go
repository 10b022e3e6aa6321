//go:build unix

package ddblocal

import (
	"os/exec"
	"syscall"
)

// terminate asks the process group (the JVM and anything it started) to exit.
func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

// kill ends the process group at once.
func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
