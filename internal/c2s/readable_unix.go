//go:build unix

package c2s

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable blocks until conn has bytes to read (or its end, or an
// error), or until its read deadline, without reading them: it peeks.
func waitReadable(conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil // the next read waits instead
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(err, syscall.EAGAIN) // data, end or error: the read sees it
	})
}
