//go:build !unix

package c2s

import "net"

// waitReadable returns at once: the next read waits instead.
func waitReadable(net.Conn) error { return nil }
