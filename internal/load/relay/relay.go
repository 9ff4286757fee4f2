// Package relay is the physical baseline of the side-by-side benchmark:
// a TLS relay that forwards frames between connections with no XML, no
// authentication and no routing rules, so that a load run against it
// says what this machine can move at all, and a run against an XMPP
// server what fraction of that the server reaches.
//
// The protocol, over TLS: a client first sends its id (4 bytes, big
// endian) and waits for the relay's one-byte acknowledgement; then each frame it sends is a destination id (4 bytes), a
// length (2 bytes) and the payload; the relay writes length and payload
// to the destination's connection, if it is connected, in one write.
// Each connection has one reader goroutine, which also writes what it
// reads to the destination under that connection's lock — the shape of
// Meerkat's own path without its buffering.
package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"
)

// Relay forwards frames between its connections.
type Relay struct {
	log   *slog.Logger
	mu    sync.RWMutex
	peers map[uint32]*peer
	wg    sync.WaitGroup
}

type peer struct {
	conn net.Conn
	wmu  sync.Mutex
}

// New returns a relay.
func New(log *slog.Logger) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{log: log, peers: map[uint32]*peer{}}
}

// Serve accepts TLS connections on ln until ctx is done, then closes
// every connection and returns.
func (r *Relay) Serve(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				r.closeAll()
				r.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("relay: accept: %w", err)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.handle(tls.Server(c, cfg)); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.log.Debug("relay: connection ended", "error", err)
			}
		}()
	}
}

func (r *Relay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.peers {
		p.conn.Close()
	}
}

func (r *Relay) handle(c *tls.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("relay: handshake: %w", err)
	}
	br := bufio.NewReaderSize(c, 4096)
	var hdr [6]byte
	if _, err := io.ReadFull(br, hdr[:4]); err != nil {
		return fmt.Errorf("relay: hello: %w", err)
	}
	c.SetDeadline(time.Time{})
	id := binary.BigEndian.Uint32(hdr[:4])
	// Registered, then acknowledged with one byte, under the connection's
	// write lock so that no frame for it can come before the
	// acknowledgement: once a client has it, frames to it are delivered.
	me := &peer{conn: c}
	me.wmu.Lock()
	r.mu.Lock()
	r.peers[id] = me
	r.mu.Unlock()
	_, err := c.Write([]byte{1})
	me.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("relay: hello: %w", err)
	}
	defer func() {
		r.mu.Lock()
		if r.peers[id] == me {
			delete(r.peers, id)
		}
		r.mu.Unlock()
	}()
	buf := make([]byte, 2, 2+1024)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		dest := binary.BigEndian.Uint32(hdr[:4])
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		buf = append(buf[:2], make([]byte, n)...)
		copy(buf[:2], hdr[4:])
		if _, err := io.ReadFull(br, buf[2:]); err != nil {
			return err
		}
		r.mu.RLock()
		to := r.peers[dest]
		r.mu.RUnlock()
		if to == nil {
			continue
		}
		to.wmu.Lock()
		to.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := to.conn.Write(buf)
		to.wmu.Unlock()
		if err != nil {
			to.conn.Close()
		}
	}
}

// SelfSigned returns a self-signed RSA 2048 certificate for localhost
// (the key type and size of bench/compare's shared certificate).
func SelfSigned() (tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// StartLocal serves a relay with a fresh self-signed certificate on a
// loopback port (as the tests need it) and returns its address and a
// stop function, which ends Serve and returns its error.
func StartLocal() (addr string, stop func() error, err error) {
	cert, err := SelfSigned()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("relay: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(nil).Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	return ln.Addr().String(), func() error { cancel(); return <-done }, nil
}
