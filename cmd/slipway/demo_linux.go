package main

import "syscall"

// demoServerAttr makes the kernel stop the demo's server (and so its apps) when the demo
// dies without stopping it, for example when it is killed.
func demoServerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
