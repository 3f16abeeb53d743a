//go:build !linux

package main

import "syscall"

// demoServerAttr is nil where the kernel cannot stop a child when its parent dies: the demo
// stops its server itself.
func demoServerAttr() *syscall.SysProcAttr { return nil }
