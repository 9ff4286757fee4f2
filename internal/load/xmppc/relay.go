package xmppc

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Relay is the transport of the baseline relay (package relay): TLS,
// an id, then length-prefixed frames, no XMPP. The load tool sends the
// same stanza bytes as payload and parses what it receives as it parses
// stanzas, so that the client's work is the same as against a server.
const Relay = "relay"

func (c *Conn) relayHello(id uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	if _, err := c.conn.Write(b[:]); err != nil {
		return err
	}
	// The relay's acknowledgement: from now on frames reach us.
	_, err := io.ReadFull(c.conn, b[:1])
	return err
}

// SendTo sends b to the user with index dest: over the relay, as a frame
// for it; over XMPP (where b carries its own address), as Send does.
func (c *Conn) SendTo(dest int, b []byte) error {
	if !c.relay {
		return c.Send(b)
	}
	if len(b) > 0xffff {
		return fmt.Errorf("xmppc: relay frame of %d bytes", len(b))
	}
	f := make([]byte, 6, 6+len(b))
	binary.BigEndian.PutUint32(f, uint32(dest))
	binary.BigEndian.PutUint16(f[4:], uint16(len(b)))
	return c.Send(append(f, b...))
}

// runRelay is Run for the relay transport.
func (c *Conn) runRelay(fn func(el *xmlstream.Element, at time.Time)) error {
	br := bufio.NewReaderSize(c.conn, 4096)
	var hdr [2]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if c.closed.Load() {
				return nil
			}
			return fmt.Errorf("xmppc: relay read: %w", err)
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		buf = append(buf[:0], make([]byte, n)...)
		if _, err := io.ReadFull(br, buf); err != nil {
			if c.closed.Load() {
				return nil
			}
			return fmt.Errorf("xmppc: relay read: %w", err)
		}
		at := time.Now()
		el, err := xmlstream.Parse(buf)
		if err != nil {
			return fmt.Errorf("xmppc: relay frame: %w", err)
		}
		fn(el, at)
	}
}
