//go:build !unix

package ddblocal

import (
	"os/exec"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate ends the process; without process groups, Kill is all there is.
func terminate(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// kill ends the process.
func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
