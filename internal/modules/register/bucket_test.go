package register

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1700000000, 0)
	b := newBucket(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if !b.take() {
			t.Fatalf("token %d refused from a full bucket", i+1)
		}
	}
	if b.take() {
		t.Fatal("token from an empty bucket")
	}
	now = now.Add(19 * time.Second) // 0.95 token
	if b.take() {
		t.Fatal("token before one was refilled")
	}
	now = now.Add(2 * time.Second)
	if !b.take() || b.take() {
		t.Fatal("not exactly one token after 21 s at 3 per minute")
	}
	now = now.Add(time.Hour) // never more than the size
	for i := range 3 {
		if !b.take() {
			t.Fatalf("token %d refused after a long pause", i+1)
		}
	}
	if b.take() {
		t.Fatal("bucket holds more than its size")
	}
}
