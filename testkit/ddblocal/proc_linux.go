package ddblocal

import "syscall"

// sysProcAttr puts the JVM in its own process group, so Stop can signal the
// whole group, and has the kernel kill it if the test binary dies without
// calling Stop (a panic, os.Exit, a timeout), so no emulator is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
