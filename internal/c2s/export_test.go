package c2s

import "time"

// In this package's tests a connection is idle after 30 ms, so that the
// stories exercise the idle reads (readIdle) all the time.
func init() { idleProbe = 30 * time.Millisecond }

// SetOnIdle sets the hook run when a reader starts waiting idle; call it
// before the server starts.
func SetOnIdle(f func()) { onIdle = f }
